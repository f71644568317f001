// Summaries of repeated timings (transfer iterations, inference runs) for self-test reports.
#pragma once

#include <cstddef>
#include <vector>

namespace deviceops::selftest {

// All values in the unit of the input (self-tests use seconds).
struct LatencySummary {
  std::size_t count = 0;
  double mean = 0;
  double min = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
};

// Percentiles are nearest-rank: the p-th percentile of n sorted values is the value at 1-based
// rank ceil(p / 100 * n) (at least 1), so it is always one of the inputs (no interpolation). For
// 10 values 1..10: p50 = 5, p90 = 9, p99 = 10. Empty input: count 0 and every other field 0.
// Pure; thread-safe.
LatencySummary summarize(std::vector<double> seconds);

// The nearest-rank percentile (0 < percentile <= 100) of `sorted` (ascending, not empty).
double nearestRankPercentile(const std::vector<double>& sorted, double percentile);

}  // namespace deviceops::selftest
