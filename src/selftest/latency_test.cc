#include "selftest/latency.h"

#include <gtest/gtest.h>

#include <vector>

namespace deviceops::selftest {
namespace {

TEST(LatencyTest, EmptyInputIsAllZero) {
  const LatencySummary summary = summarize({});
  EXPECT_EQ(summary.count, 0U);
  EXPECT_EQ(summary.mean, 0);
  EXPECT_EQ(summary.min, 0);
  EXPECT_EQ(summary.p50, 0);
  EXPECT_EQ(summary.p90, 0);
  EXPECT_EQ(summary.p99, 0);
  EXPECT_EQ(summary.max, 0);
}

TEST(LatencyTest, NearestRankOnOneToTenInAnyOrder) {
  const LatencySummary summary = summarize({7, 3, 10, 1, 9, 2, 8, 4, 6, 5});
  EXPECT_EQ(summary.count, 10U);
  EXPECT_DOUBLE_EQ(summary.mean, 5.5);
  EXPECT_EQ(summary.min, 1);
  EXPECT_EQ(summary.p50, 5);  // rank ceil(5) = 5, not the interpolated 5.5
  EXPECT_EQ(summary.p90, 9);
  EXPECT_EQ(summary.p99, 10);
  EXPECT_EQ(summary.max, 10);
}

TEST(LatencyTest, HundredValues) {
  std::vector<double> values;
  for (int i = 100; i >= 1; --i) values.push_back(i * 0.001);
  const LatencySummary summary = summarize(values);
  EXPECT_EQ(summary.count, 100U);
  EXPECT_DOUBLE_EQ(summary.p50, 0.050);
  EXPECT_DOUBLE_EQ(summary.p90, 0.090);
  EXPECT_DOUBLE_EQ(summary.p99, 0.099);
  EXPECT_DOUBLE_EQ(summary.min, 0.001);
  EXPECT_DOUBLE_EQ(summary.max, 0.100);
}

TEST(LatencyTest, OneValueIsEveryPercentile) {
  const LatencySummary summary = summarize({0.25});
  EXPECT_EQ(summary.count, 1U);
  EXPECT_EQ(summary.mean, 0.25);
  EXPECT_EQ(summary.min, 0.25);
  EXPECT_EQ(summary.p50, 0.25);
  EXPECT_EQ(summary.p99, 0.25);
  EXPECT_EQ(summary.max, 0.25);
}

TEST(LatencyTest, SmallSamplesRoundRanksUp) {
  // 3 values: p50 -> rank ceil(1.5) = 2; p90 -> ceil(2.7) = 3.
  const LatencySummary summary = summarize({30, 10, 20});
  EXPECT_EQ(summary.p50, 20);
  EXPECT_EQ(summary.p90, 30);
  EXPECT_EQ(nearestRankPercentile({10, 20, 30}, 1), 10);
  EXPECT_EQ(nearestRankPercentile({10, 20, 30}, 100), 30);
}

}  // namespace
}  // namespace deviceops::selftest
