// Rollups: per device, per 1-minute and 1-hour bucket, min/avg/max/last of each metric plus the
// additive sums that statistics need (samples, covered seconds, energy, throttled seconds,
// seconds per health state). Pure values: the stores persist them, merging a partial rollup of
// new samples into the stored row with the same rules as Rollup::merge (see sql_store.cc).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "telemetry/sample.h"

namespace deviceops::telemetry {

inline constexpr std::int64_t kMinuteMs = 60'000;
inline constexpr std::int64_t kHourMs = 3'600'000;

// min/avg/max over the samples that had the reading; `last` is the newest sample's value
// (nullopt when the newest sample lacked it).
struct MetricAggregate {
  std::optional<double> min;
  std::optional<double> max;
  double avg = 0;
  std::uint64_t count = 0;
  std::optional<double> last;

  void add(std::optional<double> value);
  // Folds `other` in; `otherIsNewer` decides whose `last` survives.
  void merge(const MetricAggregate& other, bool otherIsNewer);
};

// The metrics kept in rollups, in column order (see kRollupMetricColumns).
enum RollupMetric { kTemperature = 0, kUtilization, kMemoryUsed, kPower, kRollupMetricCount };
// Column stems: temperature_celsius, utilization_ratio, memory_used_bytes, power_watts.
extern const std::array<const char*, kRollupMetricCount> kRollupMetricColumns;

struct Rollup {
  std::string node;
  std::string deviceId;
  std::int64_t bucketStartMs = 0;
  std::uint64_t sampleCount = 0;
  double coveredSeconds = 0;
  double energyJoules = 0;  // power x interval over samples with a power reading
  double throttledSeconds = 0;
  std::array<double, 4> healthSeconds{};  // indexed like kHealthStates
  std::int64_t lastSampleMs = 0;          // time of the newest sample folded in
  std::array<MetricAggregate, kRollupMetricCount> metrics{};

  void add(const DeviceSample& sample);
  void merge(const Rollup& other);
};

// The sample's rollup metric values, in RollupMetric order.
std::array<std::optional<double>, kRollupMetricCount> rollupValues(const DeviceSample& sample);

// Groups samples by (node, device, bucket of `bucketMs`) and aggregates each group. Samples may
// come in any order; the result is ordered by node, device, bucket.
std::vector<Rollup> aggregate(const std::vector<DeviceSample>& samples, std::int64_t bucketMs);

}  // namespace deviceops::telemetry
