// Statistics over a window, computed from raw samples (exact) or from rollups (min/max/avg/
// sums exact, p95 from per-bucket averages). Pure functions; the stores fetch the rows.
#pragma once

#include <vector>

#include "telemetry/rollup.h"
#include "telemetry/sample.h"

namespace deviceops::telemetry {

// 95th percentile by nearest rank: the smallest value with at least 95% of values at or below
// it. nullopt for no values. `values` is reordered.
std::optional<double> percentile95(std::vector<double>& values);

// `samples` are one device's samples inside [from, to), in any order.
Statistics statisticsFromSamples(const std::vector<DeviceSample>& samples, SystemTime from,
                                 SystemTime to);

// `rollups` are one device's buckets inside [from, to) at `resolution` (kMinute or kHour).
Statistics statisticsFromRollups(const std::vector<Rollup>& rollups, SystemTime from, SystemTime to,
                                 Resolution resolution);

}  // namespace deviceops::telemetry
