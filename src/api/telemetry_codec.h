// JSON for the telemetry endpoints (/api/integration/*, /api/events) and the parsing of their
// query parameters: RFC 3339 times, durations ("90s", "15m", "24h", "7d"), byte sizes, ratios.
// Shapes are documented in docs/openapi.yaml (IntegrationHealth, DeviceStatistics, ...).
#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "common/time_format.h"
#include "telemetry/availability.h"
#include "telemetry/rollup.h"
#include "telemetry/sample.h"

namespace deviceops::api {

using deviceops::parseRfc3339;  // common/time_format.h
// "<positive integer><s|m|h|d>", at most 400 days.
Result<std::chrono::seconds> parseDurationText(std::string_view text);
// An RFC 3339 time, or a duration meaning that long before `now`.
Result<telemetry::SystemTime> parseSince(std::string_view text, telemetry::SystemTime now);

// One device's latest sample for /api/integration/health. `stale` as decided by the caller.
nlohmann::json encodeLatestSample(const telemetry::DeviceSample& sample, const std::string& name,
                                  const std::string& vendor, telemetry::SystemTime now, bool stale);
nlohmann::json encodeStatistics(const telemetry::Statistics& statistics);
// The `series` of /api/integration/statistics?series=1, for charts: parallel arrays (time in Unix
// seconds; null where a point lacks the reading; throttled 0/1; health the state's name), from
// raw samples or from rollup buckets (their averages; throttled when any second was; health the
// worst state with any seconds).
nlohmann::json encodeSeries(const std::vector<telemetry::DeviceSample>& samples);
nlohmann::json encodeSeries(const std::vector<telemetry::Rollup>& rollups,
                            telemetry::Resolution resolution);
nlohmann::json encodeStoredEvent(const telemetry::StoredEvent& event);
nlohmann::json encodeAvailability(const telemetry::DeviceAvailability& availability);

}  // namespace deviceops::api
