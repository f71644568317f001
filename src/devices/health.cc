#include "devices/health.h"

#include <fmt/format.h>

#include <algorithm>

namespace deviceops::devices {
namespace {

void add(Health& health, std::string code, HealthStatus severity, std::string message) {
  health.status = std::max(health.status, severity);
  health.reasons.push_back({std::move(code), severity, std::move(message)});
}

void checkTemperature(const Readings& readings, const HealthThresholds& thresholds,
                      Health& health) {
  if (!readings.temperatureCelsius) return;
  const double temperature = *readings.temperatureCelsius;
  const double margin = thresholds.temperatureMarginCelsius;
  if (readings.shutdownTemperatureCelsius &&
      temperature >= *readings.shutdownTemperatureCelsius - margin) {
    add(health, "temperatureNearShutdown", HealthStatus::kCritical,
        fmt::format("temperature {:.0f} °C is within {:.0f} °C of the shutdown threshold {:.0f} °C",
                    temperature, margin, *readings.shutdownTemperatureCelsius));
    return;
  }
  const bool known = readings.slowdownTemperatureCelsius.has_value();
  const double slowdown =
      known ? *readings.slowdownTemperatureCelsius : thresholds.fallbackSlowdownCelsius;
  const char* which = known ? "slowdown threshold" : "configured fallback slowdown threshold";
  if (temperature >= slowdown) {
    add(health, "temperatureAtSlowdown", HealthStatus::kCritical,
        fmt::format("temperature {:.0f} °C is at or above the {} {:.0f} °C", temperature, which,
                    slowdown));
  } else if (temperature >= slowdown - margin) {
    add(health, "temperatureNearSlowdown", HealthStatus::kDegraded,
        fmt::format("temperature {:.0f} °C is within {:.0f} °C of the {} {:.0f} °C", temperature,
                    margin, which, slowdown));
  }
}

void checkThrottling(const Readings& readings, const HealthThresholds& thresholds, Health& health) {
  if (!thresholds.throttlingDegrades) return;
  if (readings.thermalThrottling) {
    add(health, "thermalThrottling", HealthStatus::kDegraded,
        "the device is throttling its clocks for temperature");
  }
  if (readings.powerThrottling) {
    add(health, "powerThrottling", HealthStatus::kDegraded,
        "the device is throttling its clocks for power");
  }
}

void checkEcc(const Readings& readings, Health& health) {
  if (readings.eccVolatileDoubleBit && *readings.eccVolatileDoubleBit > 0) {
    add(health, "eccDoubleBitErrors", HealthStatus::kCritical,
        fmt::format("{} uncorrectable (double-bit) ECC errors since the last driver load",
                    *readings.eccVolatileDoubleBit));
  }
}

void checkMemory(const MemoryInfo& memory, const HealthThresholds& thresholds, Health& health) {
  if (!memory.usedBytes || memory.totalBytes == 0) return;
  const double ratio = static_cast<double>(*memory.usedBytes) / memory.totalBytes;
  if (ratio > thresholds.memoryUsedRatio) {
    add(health, "memoryPressure", HealthStatus::kDegraded,
        fmt::format("memory use {:.1f}% is above {:.0f}%", ratio * 100,
                    thresholds.memoryUsedRatio * 100));
  }
}

}  // namespace

Health evaluateHealth(const DeviceRecord& record, const HealthThresholds& thresholds,
                      bool backendStale) {
  Health health;
  if (backendStale) {
    add(health, "backendNotResponding", HealthStatus::kLost,
        fmt::format("the {} backend has stopped answering; readings are stale", record.backend));
    return health;
  }
  if (record.queryError) {
    add(health, "queryFailed", HealthStatus::kLost,
        fmt::format("the device stopped answering: {}", *record.queryError));
    return health;
  }
  checkTemperature(record.readings, thresholds, health);
  checkThrottling(record.readings, thresholds, health);
  checkEcc(record.readings, health);
  checkMemory(record.memory, thresholds, health);
  return health;
}

}  // namespace deviceops::devices
