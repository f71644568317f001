#include "telemetry/availability.h"

#include <fmt/format.h>

#include <algorithm>

namespace deviceops::telemetry {

std::vector<DeviceAvailability> evaluateAvailability(const devices::InventorySnapshot& snapshot,
                                                     memory::MemoryService* memory,
                                                     const AvailabilityRequirements& requirements) {
  std::vector<DeviceAvailability> result;
  for (const devices::DeviceView& view : snapshot.devices) {
    DeviceAvailability a;
    a.deviceId = view.id;
    a.name = view.record.name;
    a.vendor = view.record.vendor;
    a.type = std::string(devices::deviceTypeName(view.record.type));
    a.health = std::string(devices::healthStatusName(view.health.status));
    a.utilizationRatio = view.record.readings.utilizationRatio;
    a.temperatureCelsius = view.record.readings.temperatureCelsius;
    a.driverFreeBytes = view.record.memory.freeBytes;
    if (memory != nullptr) {
      Result<memory::DeviceMemoryStatus> status = memory->status(view.id);
      if (status.ok()) {
        a.ledgerAvailableBytes = status->availableBytes;
        a.heldBytes = status->heldBytes;
        if (status->driverFreeBytes) a.driverFreeBytes = status->driverFreeBytes;
      }
    }
    if (a.ledgerAvailableBytes && a.driverFreeBytes) {
      a.availableBytes = std::min(*a.ledgerAvailableBytes, *a.driverFreeBytes);
    } else if (a.ledgerAvailableBytes) {
      a.availableBytes = a.ledgerAvailableBytes;
    } else {
      a.availableBytes = a.driverFreeBytes;
    }
    const auto refuse = [&](std::string code, std::string message) {
      a.available = false;
      a.reasons.push_back({std::move(code), std::move(message)});
    };
    if (requirements.type && *requirements.type != a.type) {
      refuse("typeMismatch", fmt::format("device is a {}, not a {}", a.type, *requirements.type));
    }
    if (view.health.status == devices::HealthStatus::kLost) {
      const bool stale =
          std::any_of(view.health.reasons.begin(), view.health.reasons.end(),
                      [](const auto& r) { return r.code == "backendNotResponding"; });
      if (stale) {
        refuse("staleReadings", "its backend is not responding; readings are stale");
      } else {
        refuse("deviceLost", "device is lost");
      }
    } else if (view.health.status == devices::HealthStatus::kCritical) {
      std::string why;
      for (const auto& reason : view.health.reasons) {
        if (reason.severity == devices::HealthStatus::kCritical) {
          why += (why.empty() ? "" : "; ") + reason.message;
        }
      }
      refuse("healthCritical", "health is critical" + (why.empty() ? "" : ": " + why));
    }
    if (requirements.minFreeBytes) {
      if (!a.availableBytes) {
        refuse("insufficientMemory", "free memory is unknown on this device");
      } else if (*a.availableBytes < *requirements.minFreeBytes) {
        refuse("insufficientMemory", fmt::format("{} bytes available, {} required",
                                                 *a.availableBytes, *requirements.minFreeBytes));
      }
    }
    if (requirements.maxUtilization) {
      if (!a.utilizationRatio) {
        refuse("utilizationTooHigh", "utilization is unknown on this device");
      } else if (*a.utilizationRatio > *requirements.maxUtilization) {
        refuse("utilizationTooHigh",
               fmt::format("utilization {:.2f} above {:.2f}", *a.utilizationRatio,
                           *requirements.maxUtilization));
      }
    }
    result.push_back(std::move(a));
  }
  return result;
}

}  // namespace deviceops::telemetry
