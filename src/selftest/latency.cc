#include "selftest/latency.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace deviceops::selftest {

double nearestRankPercentile(const std::vector<double>& sorted, double percentile) {
  const double count = static_cast<double>(sorted.size());
  // The small epsilon keeps 90 / 100 * 10 at rank 9 despite floating-point rounding.
  auto rank = static_cast<std::size_t>(std::ceil(percentile / 100.0 * count - 1e-9));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

LatencySummary summarize(std::vector<double> seconds) {
  LatencySummary summary;
  if (seconds.empty()) return summary;
  std::sort(seconds.begin(), seconds.end());
  summary.count = seconds.size();
  summary.mean =
      std::accumulate(seconds.begin(), seconds.end(), 0.0) / static_cast<double>(seconds.size());
  summary.min = seconds.front();
  summary.max = seconds.back();
  summary.p50 = nearestRankPercentile(seconds, 50);
  summary.p90 = nearestRankPercentile(seconds, 90);
  summary.p99 = nearestRankPercentile(seconds, 99);
  return summary;
}

}  // namespace deviceops::selftest
