#include "api/telemetry_codec.h"

#include <fmt/format.h>

#include <charconv>
#include <ctime>

#include "common/time_format.h"

namespace deviceops::api {
namespace {

using nlohmann::json;
using telemetry::SystemTime;

template <class T>
json optional(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

json metric(const telemetry::MetricStatistics& m) {
  return {{"min", optional(m.min)}, {"avg", optional(m.avg)},   {"max", optional(m.max)},
          {"p95", optional(m.p95)}, {"last", optional(m.last)}, {"count", m.count}};
}

}  // namespace

Result<std::chrono::seconds> parseDurationText(std::string_view text) {
  const auto bad = [&] {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("'{}' is not a duration such as 1h, 24h, 7d or 30d", text));
  };
  if (text.size() < 2) return bad();
  std::int64_t count = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size() - 1, count);
  if (error != std::errc() || end != text.data() + text.size() - 1 || count <= 0) return bad();
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return bad();
  }
  if (count > 400 * 86400 / unit) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("duration '{}' is longer than 400 days", text));
  }
  return std::chrono::seconds(count * unit);
}

Result<SystemTime> parseSince(std::string_view text, SystemTime now) {
  if (!text.empty() && text.back() >= 'a' && text.back() <= 'z' && text.size() < 12) {
    Result<std::chrono::seconds> duration = parseDurationText(text);
    if (!duration.ok()) return duration.error();
    return now - *duration;
  }
  return parseRfc3339(text);
}

json encodeLatestSample(const telemetry::DeviceSample& s, const std::string& name,
                        const std::string& vendor, SystemTime now, bool stale) {
  return {{"deviceId", s.deviceId},
          {"name", name},
          {"vendor", vendor},
          {"node", s.node},
          {"time", formatIso8601(s.time)},
          {"ageSeconds", std::chrono::duration<double>(now - s.time).count()},
          {"stale", stale},
          {"health", {{"status", s.health}, {"reasons", s.healthReasons}}},
          {"temperatureCelsius", optional(s.temperatureCelsius)},
          {"utilizationRatio", optional(s.utilizationRatio)},
          {"memoryUsedBytes", optional(s.memoryUsedBytes)},
          {"memoryFreeBytes", optional(s.memoryFreeBytes)},
          {"memoryTotalBytes", s.memoryTotalBytes},
          {"powerWatts", optional(s.powerWatts)},
          {"clockMhz", optional(s.clockMhz)},
          {"throttled", s.throttled},
          {"throttleReasons", s.throttleReasons},
          {"eccSingleBitErrors", optional(s.eccSingleBitErrors)},
          {"eccDoubleBitErrors", optional(s.eccDoubleBitErrors)},
          {"readingAgeSeconds", s.readingAgeSeconds},
          {"heldBytes", s.heldBytes},
          {"heldBytesByKind", s.heldBytesByKind}};
}

namespace {

template <class T>
json orNull(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

json emptySeries(std::string_view resolution) {
  return {{"resolution", resolution},
          {"time", json::array()},
          {"utilizationRatio", json::array()},
          {"memoryUsedBytes", json::array()},
          {"temperatureCelsius", json::array()},
          {"powerWatts", json::array()},
          {"throttled", json::array()},
          {"health", json::array()}};
}

}  // namespace

json encodeSeries(const std::vector<telemetry::DeviceSample>& samples) {
  json series = emptySeries("raw");
  for (const telemetry::DeviceSample& sample : samples) {
    series["time"].push_back(std::chrono::duration<double>(sample.time.time_since_epoch()).count());
    series["utilizationRatio"].push_back(orNull(sample.utilizationRatio));
    series["memoryUsedBytes"].push_back(orNull(sample.memoryUsedBytes));
    series["temperatureCelsius"].push_back(orNull(sample.temperatureCelsius));
    series["powerWatts"].push_back(orNull(sample.powerWatts));
    series["throttled"].push_back(sample.throttled ? 1 : 0);
    series["health"].push_back(sample.health);
  }
  return series;
}

json encodeSeries(const std::vector<telemetry::Rollup>& rollups, telemetry::Resolution resolution) {
  json series = emptySeries(resolution == telemetry::Resolution::kHour ? "1h" : "1m");
  const auto average = [](const telemetry::MetricAggregate& metric) {
    return metric.count > 0 ? json(metric.avg) : json(nullptr);
  };
  for (const telemetry::Rollup& rollup : rollups) {
    series["time"].push_back(static_cast<double>(rollup.bucketStartMs) / 1000.0);
    series["utilizationRatio"].push_back(average(rollup.metrics[telemetry::kUtilization]));
    series["memoryUsedBytes"].push_back(average(rollup.metrics[telemetry::kMemoryUsed]));
    series["temperatureCelsius"].push_back(average(rollup.metrics[telemetry::kTemperature]));
    series["powerWatts"].push_back(average(rollup.metrics[telemetry::kPower]));
    series["throttled"].push_back(rollup.throttledSeconds > 0 ? 1 : 0);
    std::size_t worst = 0;
    for (std::size_t state = 0; state < rollup.healthSeconds.size(); ++state) {
      if (rollup.healthSeconds[state] > 0) worst = state;
    }
    series["health"].push_back(telemetry::kHealthStates[worst]);
  }
  return series;
}

json encodeStatistics(const telemetry::Statistics& s) {
  json health = json::object();
  for (const auto& [state, seconds] : s.healthSeconds) health[state] = seconds;
  json energy = nullptr;
  if (s.energyJoules) {
    energy = {{"joules", *s.energyJoules}, {"wattHours", *s.energyJoules / 3600.0}};
  }
  return {{"node", s.node},
          {"deviceId", s.deviceId},
          {"from", formatIso8601(s.from)},
          {"to", formatIso8601(s.to)},
          {"windowSeconds", s.windowSeconds()},
          {"resolution", telemetry::resolutionName(s.resolution)},
          {"p95Method", s.p95Method},
          {"sampleCount", s.sampleCount},
          {"coveredSeconds", s.coveredSeconds},
          {"coverageRatio", s.coverageRatio()},
          {"temperatureCelsius", metric(s.temperatureCelsius)},
          {"utilizationRatio", metric(s.utilizationRatio)},
          {"memoryUsedBytes", metric(s.memoryUsedBytes)},
          {"powerWatts", metric(s.powerWatts)},
          {"energy", energy},
          {"throttledSeconds", s.throttledSeconds},
          {"healthSeconds", health}};
}

json encodeStoredEvent(const telemetry::StoredEvent& e) {
  return {{"id", e.id},
          {"node", e.node},
          {"time", formatIso8601(e.event.time)},
          {"type", e.event.type},
          {"deviceId", e.event.deviceId.empty() ? json(nullptr) : json(e.event.deviceId)},
          {"severity", e.event.severity},
          {"message", e.event.message},
          {"details", e.event.details}};
}

json encodeAvailability(const telemetry::DeviceAvailability& a) {
  json reasons = json::array();
  for (const auto& reason : a.reasons) {
    reasons.push_back({{"code", reason.code}, {"message", reason.message}});
  }
  return {{"deviceId", a.deviceId},
          {"name", a.name},
          {"vendor", a.vendor},
          {"type", a.type},
          {"health", a.health},
          {"available", a.available},
          {"reasons", reasons},
          {"availableBytes", optional(a.availableBytes)},
          {"ledgerAvailableBytes", optional(a.ledgerAvailableBytes)},
          {"driverFreeBytes", optional(a.driverFreeBytes)},
          {"heldBytes", a.heldBytes},
          {"utilizationRatio", optional(a.utilizationRatio)},
          {"temperatureCelsius", optional(a.temperatureCelsius)}};
}

}  // namespace deviceops::api
