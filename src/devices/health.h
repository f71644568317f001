// Health evaluation: a pure function from one device's readings to a status and the reasons that
// led to it. Thresholds are configurable ([health] in the config file) and documented in
// docs/ARCHITECTURE.md.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "devices/device.h"

namespace deviceops::devices {

struct HealthThresholds {
  // Degraded when the temperature is within this many °C of the slowdown threshold; critical
  // at or above the slowdown threshold or within this margin of the shutdown threshold.
  double temperatureMarginCelsius = 5.0;
  // Used when the backend knows no slowdown threshold (CPUs, most Vulkan devices).
  double fallbackSlowdownCelsius = 95.0;
  // Degraded when driver-reported used / total memory exceeds this ratio.
  double memoryUsedRatio = 0.95;
  // Active thermal or power throttling makes a device degraded.
  bool throttlingDegrades = true;
};

struct HealthReason {
  std::string code;  // stable camelCase identifier, e.g. "temperatureNearSlowdown"
  HealthStatus severity = HealthStatus::kDegraded;
  std::string message;  // human-readable, with the numbers
};

struct Health {
  HealthStatus status = HealthStatus::kHealthy;
  std::vector<HealthReason> reasons;
};

// Worst-of over every rule. `backendStale` means the backend stopped answering; such a device is
// lost whatever its last readings said.
Health evaluateHealth(const DeviceRecord& record, const HealthThresholds& thresholds,
                      bool backendStale);

}  // namespace deviceops::devices
