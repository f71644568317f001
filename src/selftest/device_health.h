// GET /api/testing/device-health: a non-intrusive check of every device in seconds. Nothing is
// allocated or run; it reads what the daemon already keeps and checks that it agrees:
//   backendResponding  the device's backend read it within devices.staleAfterMs
//   health             the health rules' verdict (degraded: warn; critical, lost: fail)
//   telemetry          the telemetry store's newest sample of the device is recent
//   readings           that sample agrees with the live readings (temperature, memory used)
//   ledger             the memory ledger, its pool and the allocator agree byte for byte, and
//                      the driver reports at least the bytes the ledger holds as used
// and per backend: available, and answering within its deadline.
//
// Thread-safety: checkDeviceHealth may be called from any thread.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "devices/inventory.h"
#include "memory/memory_service.h"
#include "selftest/levels.h"
#include "telemetry/telemetry_service.h"

namespace deviceops::selftest {

struct HealthCheckOptions {
  std::chrono::milliseconds staleAfter{10000};        // devices.staleAfterMs
  std::chrono::milliseconds telemetryInterval{5000};  // telemetry.intervalSeconds
  double temperatureToleranceCelsius = 10;            // sample vs live
  double memoryToleranceRatio = 0.10;                 // of total, sample vs live
};

struct HealthCheck {
  std::string name;
  Outcome status = Outcome::kPass;
  std::string reason;
  nlohmann::json values = nlohmann::json::object();
};

struct DeviceHealthEntry {
  std::string deviceId;
  std::string name;
  bool simulated = false;
  Outcome status = Outcome::kPass;  // worst of its checks
  std::vector<HealthCheck> checks;
};

struct BackendHealth {
  std::string name;
  bool available = false;
  Outcome status = Outcome::kPass;
  std::string reason;
  std::optional<double> lastPollAgeMs;  // age of the oldest reading among its devices
};

struct DeviceHealthReport {
  Outcome status = Outcome::kPass;
  std::chrono::system_clock::time_point checkedAt;
  double durationMs = 0;
  std::vector<BackendHealth> backends;
  std::vector<DeviceHealthEntry> devices;
};

// `telemetry` may be null (disabled: the telemetry checks are skipped).
DeviceHealthReport checkDeviceHealth(const devices::Inventory& inventory,
                                     memory::MemoryService& memory,
                                     telemetry::TelemetryService* telemetry,
                                     const HealthCheckOptions& options);

nlohmann::json toJson(const DeviceHealthReport& report);

}  // namespace deviceops::selftest
