#include "devices/health.h"

#include <gtest/gtest.h>

namespace deviceops::devices {
namespace {

DeviceRecord gpuWith(double temperature, double slowdown) {
  DeviceRecord record;
  record.backend = "nvidia";
  record.readings.temperatureCelsius = temperature;
  record.readings.slowdownTemperatureCelsius = slowdown;
  record.memory.totalBytes = 100;
  record.memory.usedBytes = 10;
  return record;
}

TEST(HealthTest, TemperatureRules) {
  struct Case {
    double temperature;
    double slowdown;
    HealthStatus expected;
    std::string code;
  };
  const Case cases[] = {
      {60, 90, HealthStatus::kHealthy, ""},
      {84.9, 90, HealthStatus::kHealthy, ""},
      {85, 90, HealthStatus::kDegraded, "temperatureNearSlowdown"},
      {89.9, 90, HealthStatus::kDegraded, "temperatureNearSlowdown"},
      {90, 90, HealthStatus::kCritical, "temperatureAtSlowdown"},
      {101, 90, HealthStatus::kCritical, "temperatureAtSlowdown"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << c.temperature << " vs " << c.slowdown);
    Health health = evaluateHealth(gpuWith(c.temperature, c.slowdown), {}, false);
    EXPECT_EQ(health.status, c.expected);
    if (c.code.empty()) {
      EXPECT_TRUE(health.reasons.empty());
    } else {
      ASSERT_EQ(health.reasons.size(), 1u);
      EXPECT_EQ(health.reasons[0].code, c.code);
    }
  }
}

TEST(HealthTest, FallbackSlowdownWhenBackendKnowsNone) {
  DeviceRecord record = gpuWith(93, 0);
  record.readings.slowdownTemperatureCelsius.reset();
  HealthThresholds thresholds;
  thresholds.fallbackSlowdownCelsius = 95;
  EXPECT_EQ(evaluateHealth(record, thresholds, false).status, HealthStatus::kDegraded);
  thresholds.fallbackSlowdownCelsius = 120;
  EXPECT_EQ(evaluateHealth(record, thresholds, false).status, HealthStatus::kHealthy);
}

TEST(HealthTest, ShutdownMarginIsCritical) {
  DeviceRecord record = gpuWith(50, 90);
  record.readings.shutdownTemperatureCelsius = 52;
  Health health = evaluateHealth(record, {}, false);
  EXPECT_EQ(health.status, HealthStatus::kCritical);
  EXPECT_EQ(health.reasons.at(0).code, "temperatureNearShutdown");
}

TEST(HealthTest, ThrottlingEccAndMemoryAccumulateWorstOf) {
  DeviceRecord record = gpuWith(40, 90);
  record.readings.thermalThrottling = true;
  record.readings.powerThrottling = true;
  record.memory.usedBytes = 96;
  Health health = evaluateHealth(record, {}, false);
  EXPECT_EQ(health.status, HealthStatus::kDegraded);
  EXPECT_EQ(health.reasons.size(), 3u);

  record.readings.eccVolatileDoubleBit = 2;
  health = evaluateHealth(record, {}, false);
  EXPECT_EQ(health.status, HealthStatus::kCritical);
  EXPECT_EQ(health.reasons.size(), 4u);

  HealthThresholds lenient;
  lenient.throttlingDegrades = false;
  lenient.memoryUsedRatio = 0.99;
  record.readings.eccVolatileDoubleBit = 0;
  EXPECT_EQ(evaluateHealth(record, lenient, false).status, HealthStatus::kHealthy);
}

TEST(HealthTest, LostWinsOverEverything) {
  DeviceRecord record = gpuWith(40, 90);
  record.queryError = "GPU is lost";
  Health health = evaluateHealth(record, {}, false);
  EXPECT_EQ(health.status, HealthStatus::kLost);
  EXPECT_EQ(health.reasons.at(0).code, "queryFailed");
  EXPECT_EQ(evaluateHealth(gpuWith(40, 90), {}, true).reasons.at(0).code, "backendNotResponding");
}

}  // namespace
}  // namespace deviceops::devices
