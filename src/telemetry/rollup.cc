#include "telemetry/rollup.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace deviceops::telemetry {

const std::array<const char*, kRollupMetricCount> kRollupMetricColumns = {
    "temperature_celsius", "utilization_ratio", "memory_used_bytes", "power_watts"};

void MetricAggregate::add(std::optional<double> value) {
  MetricAggregate one;
  if (value) {
    one.min = one.max = one.last = *value;
    one.avg = *value;
    one.count = 1;
  }
  merge(one, true);
}

void MetricAggregate::merge(const MetricAggregate& other, bool otherIsNewer) {
  if (other.count > 0) {
    min = min ? std::min(*min, *other.min) : other.min;
    max = max ? std::max(*max, *other.max) : other.max;
    // The same formula as the stores' SQL merge (sql_store.cc), so both round alike.
    avg = (avg * static_cast<double>(count) + other.avg * static_cast<double>(other.count)) /
          static_cast<double>(count + other.count);
    count += other.count;
  }
  if (otherIsNewer) last = other.last;
}

std::array<std::optional<double>, kRollupMetricCount> rollupValues(const DeviceSample& sample) {
  std::array<std::optional<double>, kRollupMetricCount> values;
  values[kTemperature] = sample.temperatureCelsius;
  values[kUtilization] = sample.utilizationRatio;
  if (sample.memoryUsedBytes) values[kMemoryUsed] = static_cast<double>(*sample.memoryUsedBytes);
  values[kPower] = sample.powerWatts;
  return values;
}

void Rollup::add(const DeviceSample& sample) {
  Rollup one;
  one.sampleCount = 1;
  one.coveredSeconds = sample.intervalSeconds;
  if (sample.powerWatts) one.energyJoules = *sample.powerWatts * sample.intervalSeconds;
  if (sample.throttled) one.throttledSeconds = sample.intervalSeconds;
  const int state = healthStateIndex(sample.health);
  if (state >= 0) one.healthSeconds[static_cast<std::size_t>(state)] = sample.intervalSeconds;
  one.lastSampleMs = toMillis(sample.time);
  const auto values = rollupValues(sample);
  for (std::size_t i = 0; i < values.size(); ++i) one.metrics[i].add(values[i]);
  merge(one);
}

void Rollup::merge(const Rollup& other) {
  const bool otherIsNewer = sampleCount == 0 || other.lastSampleMs >= lastSampleMs;
  sampleCount += other.sampleCount;
  coveredSeconds += other.coveredSeconds;
  energyJoules += other.energyJoules;
  throttledSeconds += other.throttledSeconds;
  for (std::size_t i = 0; i < healthSeconds.size(); ++i) healthSeconds[i] += other.healthSeconds[i];
  for (std::size_t i = 0; i < metrics.size(); ++i) metrics[i].merge(other.metrics[i], otherIsNewer);
  if (otherIsNewer) lastSampleMs = other.lastSampleMs;
}

std::vector<Rollup> aggregate(const std::vector<DeviceSample>& samples, std::int64_t bucketMs) {
  std::map<std::tuple<std::string, std::string, std::int64_t>, Rollup> groups;
  for (const DeviceSample& sample : samples) {
    const std::int64_t time = toMillis(sample.time);
    const std::int64_t bucket = time - ((time % bucketMs) + bucketMs) % bucketMs;
    Rollup& rollup = groups[{sample.node, sample.deviceId, bucket}];
    if (rollup.sampleCount == 0) {
      rollup.node = sample.node;
      rollup.deviceId = sample.deviceId;
      rollup.bucketStartMs = bucket;
    }
    rollup.add(sample);
  }
  std::vector<Rollup> result;
  result.reserve(groups.size());
  for (auto& [key, rollup] : groups) result.push_back(std::move(rollup));
  return result;
}

}  // namespace deviceops::telemetry
