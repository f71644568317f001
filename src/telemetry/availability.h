// "Which device can take this job now?": each device checked against optional requirements,
// from the live inventory snapshot and the memory ledger (never a driver call).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "devices/inventory.h"
#include "memory/memory_service.h"

namespace deviceops::telemetry {

struct AvailabilityRequirements {
  std::optional<std::uint64_t> minFreeBytes;  // what a new allocation would get, in bytes
  std::optional<std::string> type;            // gpu | cpu
  std::optional<double> maxUtilization;       // 0..1
};

struct AvailabilityReason {
  std::string code;  // typeMismatch | healthCritical | deviceLost | staleReadings |
                     // insufficientMemory | utilizationTooHigh
  std::string message;
};

struct DeviceAvailability {
  std::string deviceId;
  std::string name;
  std::string vendor;
  std::string type;
  std::string health;
  bool available = true;
  std::vector<AvailabilityReason> reasons;  // why not; empty when available
  // For new work: min(ledger availableBytes, driver-reported free); nullopt if unknown.
  std::optional<std::uint64_t> availableBytes;
  std::optional<std::uint64_t> ledgerAvailableBytes;
  std::optional<std::uint64_t> driverFreeBytes;
  std::uint64_t heldBytes = 0;
  std::optional<double> utilizationRatio;
  std::optional<double> temperatureCelsius;
};

// `memory` may be null (then only driver-reported free memory counts).
std::vector<DeviceAvailability> evaluateAvailability(const devices::InventorySnapshot& snapshot,
                                                     memory::MemoryService* memory,
                                                     const AvailabilityRequirements& requirements);

}  // namespace deviceops::telemetry
