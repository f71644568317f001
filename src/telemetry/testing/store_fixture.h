// Test fixtures shared by the telemetry tests: one real PostgreSQL 15 server per test process
// (started on first use, stopped at exit), a fresh database per test, and a series builder.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "common/testing/temp_dir.h"
#include "store/testing/shared_postgres.h"
#include "telemetry/store.h"

namespace deviceops::telemetry::testing {

// The process-wide server (store/testing/shared_postgres.h).
using deviceops::testing::sharedPostgres;

inline std::string uniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
}

// A temporary directory removed at destruction.
using TempDir = deviceops::testing::TempDir;

// A sample with the metrics the statistics use; everything else default.
inline DeviceSample makeSample(const std::string& node, const std::string& device,
                               std::int64_t timeMs, double temperature, double power,
                               const std::string& health = "healthy", bool throttled = false) {
  DeviceSample s;
  s.node = node;
  s.deviceId = device;
  s.time = fromMillis(timeMs);
  s.intervalSeconds = 1.0;
  s.temperatureCelsius = temperature;
  s.utilizationRatio = temperature / 100.0;
  s.memoryUsedBytes = static_cast<std::uint64_t>(temperature) * 1000;
  s.memoryTotalBytes = 1'000'000;
  s.powerWatts = power;
  s.health = health;
  s.throttled = throttled;
  if (throttled) s.throttleReasons = {"thermal"};
  return s;
}

}  // namespace deviceops::telemetry::testing
