#include "telemetry/statistics.h"

#include <gtest/gtest.h>

#include "telemetry/testing/store_fixture.h"

namespace deviceops::telemetry {
namespace {

using testing::makeSample;

// Ten 1 s samples at t = 0..9 s: temperature 50..59, power 100 W for the first five and 200 W
// for the rest, degraded (and throttled) for the last three.
std::vector<DeviceSample> knownSeries(std::int64_t startMs) {
  std::vector<DeviceSample> samples;
  for (int i = 0; i < 10; ++i) {
    samples.push_back(makeSample("n", "sim-0", startMs + i * 1000, 50 + i, i < 5 ? 100 : 200,
                                 i >= 7 ? "degraded" : "healthy", i >= 7));
  }
  return samples;
}

TEST(StatisticsTest, RawSeriesMatchesHandComputedValues) {
  const auto samples = knownSeries(0);
  Statistics s = statisticsFromSamples(samples, fromMillis(0), fromMillis(20'000));
  EXPECT_EQ(s.sampleCount, 10u);
  EXPECT_DOUBLE_EQ(*s.temperatureCelsius.min, 50);
  EXPECT_DOUBLE_EQ(*s.temperatureCelsius.max, 59);
  EXPECT_DOUBLE_EQ(*s.temperatureCelsius.avg, 54.5);
  EXPECT_DOUBLE_EQ(*s.temperatureCelsius.p95, 59);  // nearest rank: ceil(0.95 x 10) = 10th
  EXPECT_DOUBLE_EQ(*s.temperatureCelsius.last, 59);
  EXPECT_DOUBLE_EQ(*s.utilizationRatio.avg, 0.545);
  EXPECT_DOUBLE_EQ(*s.memoryUsedBytes.max, 59'000);
  EXPECT_DOUBLE_EQ(*s.powerWatts.avg, 150);
  EXPECT_DOUBLE_EQ(*s.energyJoules, 5 * 100 + 5 * 200);  // W x 1 s each
  EXPECT_DOUBLE_EQ(s.throttledSeconds, 3);
  EXPECT_DOUBLE_EQ(s.healthSeconds["healthy"], 7);
  EXPECT_DOUBLE_EQ(s.healthSeconds["degraded"], 3);
  EXPECT_DOUBLE_EQ(s.healthSeconds["critical"], 0);
  EXPECT_DOUBLE_EQ(s.coveredSeconds, 10);
  EXPECT_DOUBLE_EQ(s.coverageRatio(), 0.5);  // 10 s of a 20 s window
}

TEST(StatisticsTest, Percentile95ByNearestRank) {
  std::vector<double> values;
  for (int i = 1; i <= 100; ++i) values.push_back(101 - i);  // 100..1, unsorted
  EXPECT_DOUBLE_EQ(*percentile95(values), 95);
  std::vector<double> one = {7};
  EXPECT_DOUBLE_EQ(*percentile95(one), 7);
  std::vector<double> none;
  EXPECT_FALSE(percentile95(none).has_value());
}

TEST(StatisticsTest, RollupsGiveTheSameMinMaxAvgAndSumsAsRaw) {
  // 3 minutes of 1 s samples with a sawtooth temperature.
  std::vector<DeviceSample> samples;
  for (int i = 0; i < 180; ++i) {
    samples.push_back(makeSample("n", "sim-0", 60'000 + i * 1000, 40 + (i % 17), 100 + i,
                                 i % 50 == 0 ? "critical" : "healthy", i % 3 == 0));
  }
  const Statistics raw = statisticsFromSamples(samples, fromMillis(60'000), fromMillis(240'000));
  const Statistics rolled = statisticsFromRollups(aggregate(samples, kMinuteMs), fromMillis(60'000),
                                                  fromMillis(240'000), Resolution::kMinute);
  EXPECT_EQ(rolled.sampleCount, raw.sampleCount);
  EXPECT_DOUBLE_EQ(*rolled.temperatureCelsius.min, *raw.temperatureCelsius.min);
  EXPECT_DOUBLE_EQ(*rolled.temperatureCelsius.max, *raw.temperatureCelsius.max);
  EXPECT_NEAR(*rolled.temperatureCelsius.avg, *raw.temperatureCelsius.avg, 1e-9);
  EXPECT_DOUBLE_EQ(*rolled.temperatureCelsius.last, *raw.temperatureCelsius.last);
  EXPECT_NEAR(*rolled.energyJoules, *raw.energyJoules, 1e-6);
  EXPECT_DOUBLE_EQ(rolled.throttledSeconds, raw.throttledSeconds);
  EXPECT_DOUBLE_EQ(rolled.healthSeconds.at("critical"), 4);  // i = 0, 50, 100, 150
  EXPECT_EQ(rolled.p95Method, "bucketAverages");
}

TEST(StatisticsTest, RollupMergeIsOrderIndependent) {
  std::vector<DeviceSample> samples;
  for (int i = 0; i < 60; ++i) samples.push_back(makeSample("n", "d", i * 1000, i, 10));
  Rollup forward;
  for (const auto& s : samples) forward.add(s);
  Rollup halves;
  Rollup second;
  for (int i = 30; i < 60; ++i) second.add(samples[static_cast<std::size_t>(i)]);
  Rollup first;
  for (int i = 0; i < 30; ++i) first.add(samples[static_cast<std::size_t>(i)]);
  halves.merge(second);
  halves.merge(first);  // older half merged last: `last` must still be the newest sample's
  EXPECT_EQ(halves.sampleCount, forward.sampleCount);
  EXPECT_DOUBLE_EQ(*halves.metrics[kTemperature].last, 59);
  EXPECT_DOUBLE_EQ(halves.metrics[kTemperature].avg, forward.metrics[kTemperature].avg);
  EXPECT_EQ(halves.lastSampleMs, 59'000);
}

TEST(StatisticsTest, AutomaticResolutionByWindow) {
  using std::chrono::hours;
  EXPECT_EQ(chooseResolution(hours(1)), Resolution::kRaw);
  EXPECT_EQ(chooseResolution(hours(24)), Resolution::kMinute);
  EXPECT_EQ(chooseResolution(hours(24 * 7)), Resolution::kHour);
  EXPECT_EQ(chooseResolution(hours(24 * 30)), Resolution::kHour);
}

}  // namespace
}  // namespace deviceops::telemetry
