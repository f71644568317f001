#include "telemetry/statistics.h"

#include <algorithm>
#include <cmath>

namespace deviceops::telemetry {
namespace {

void initHealth(Statistics& statistics) {
  for (const char* state : kHealthStates) statistics.healthSeconds[state] = 0;
}

MetricStatistics fromAggregate(const MetricAggregate& aggregate) {
  MetricStatistics metric;
  metric.count = aggregate.count;
  metric.last = aggregate.last;
  if (aggregate.count > 0) {
    metric.min = aggregate.min;
    metric.max = aggregate.max;
    metric.avg = aggregate.avg;
  }
  return metric;
}

MetricStatistics& metricOf(Statistics& statistics, std::size_t index) {
  switch (index) {
    case kTemperature:
      return statistics.temperatureCelsius;
    case kUtilization:
      return statistics.utilizationRatio;
    case kMemoryUsed:
      return statistics.memoryUsedBytes;
    default:
      return statistics.powerWatts;
  }
}

}  // namespace

std::optional<double> percentile95(std::vector<double>& values) {
  if (values.empty()) return std::nullopt;
  const auto rank = static_cast<std::size_t>(std::ceil(0.95 * static_cast<double>(values.size())));
  const std::size_t index = rank == 0 ? 0 : rank - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index),
                   values.end());
  return values[index];
}

Statistics statisticsFromSamples(const std::vector<DeviceSample>& samples, SystemTime from,
                                 SystemTime to) {
  Statistics statistics;
  statistics.from = from;
  statistics.to = to;
  statistics.resolution = Resolution::kRaw;
  statistics.p95Method = "exact";
  initHealth(statistics);
  if (!samples.empty()) {
    statistics.node = samples.front().node;
    statistics.deviceId = samples.front().deviceId;
  }
  Rollup total;
  std::array<std::vector<double>, kRollupMetricCount> values;
  for (auto& list : values) list.reserve(samples.size());
  for (const DeviceSample& sample : samples) {
    total.add(sample);
    const auto sampleValues = rollupValues(sample);
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (sampleValues[i]) values[i].push_back(*sampleValues[i]);
    }
  }
  statistics.sampleCount = total.sampleCount;
  statistics.coveredSeconds = total.coveredSeconds;
  statistics.throttledSeconds = total.throttledSeconds;
  for (std::size_t i = 0; i < 4; ++i)
    statistics.healthSeconds[kHealthStates[i]] = total.healthSeconds[i];
  for (std::size_t i = 0; i < values.size(); ++i) {
    MetricStatistics& metric = metricOf(statistics, i);
    metric = fromAggregate(total.metrics[i]);
    metric.p95 = percentile95(values[i]);
  }
  if (total.metrics[kPower].count > 0) statistics.energyJoules = total.energyJoules;
  return statistics;
}

Statistics statisticsFromRollups(const std::vector<Rollup>& rollups, SystemTime from, SystemTime to,
                                 Resolution resolution) {
  Statistics statistics;
  statistics.from = from;
  statistics.to = to;
  statistics.resolution = resolution;
  statistics.p95Method = "bucketAverages";
  initHealth(statistics);
  if (!rollups.empty()) {
    statistics.node = rollups.front().node;
    statistics.deviceId = rollups.front().deviceId;
  }
  Rollup total;
  // (bucket average, samples) per metric, for the weighted percentile.
  std::array<std::vector<std::pair<double, std::uint64_t>>, kRollupMetricCount> averages;
  for (const Rollup& rollup : rollups) {
    total.merge(rollup);
    for (std::size_t i = 0; i < averages.size(); ++i) {
      if (rollup.metrics[i].count > 0) {
        averages[i].emplace_back(rollup.metrics[i].avg, rollup.metrics[i].count);
      }
    }
  }
  statistics.sampleCount = total.sampleCount;
  statistics.coveredSeconds = total.coveredSeconds;
  statistics.throttledSeconds = total.throttledSeconds;
  for (std::size_t i = 0; i < 4; ++i)
    statistics.healthSeconds[kHealthStates[i]] = total.healthSeconds[i];
  for (std::size_t i = 0; i < averages.size(); ++i) {
    MetricStatistics& metric = metricOf(statistics, i);
    metric = fromAggregate(total.metrics[i]);
    auto& list = averages[i];
    if (list.empty()) continue;
    std::sort(list.begin(), list.end());
    const double threshold = 0.95 * static_cast<double>(total.metrics[i].count);
    double cumulative = 0;
    for (const auto& [average, count] : list) {
      cumulative += static_cast<double>(count);
      if (cumulative >= threshold) {
        metric.p95 = average;
        break;
      }
    }
    if (!metric.p95) metric.p95 = list.back().first;
  }
  if (total.metrics[kPower].count > 0) statistics.energyJoules = total.energyJoules;
  return statistics;
}

}  // namespace deviceops::telemetry
