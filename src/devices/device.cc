#include "devices/device.h"

namespace deviceops::devices {

std::string_view deviceTypeName(DeviceType type) {
  return type == DeviceType::kCpu ? "cpu" : "gpu";
}

std::string_view healthStatusName(HealthStatus status) {
  switch (status) {
    case HealthStatus::kHealthy:
      return "healthy";
    case HealthStatus::kDegraded:
      return "degraded";
    case HealthStatus::kCritical:
      return "critical";
    case HealthStatus::kLost:
      return "lost";
  }
  return "lost";
}

}  // namespace deviceops::devices
