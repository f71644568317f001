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

Error badTime(std::string_view text) {
  return makeError(ErrorCode::kInvalidArgument,
                   fmt::format("'{}' is not an RFC 3339 time such as 2026-11-27T10:00:00Z", text));
}

bool readInt(std::string_view text, std::size_t at, std::size_t digits, int& out) {
  if (at + digits > text.size()) return false;
  const char* begin = text.data() + at;
  auto [end, error] = std::from_chars(begin, begin + digits, out);
  return error == std::errc() && end == begin + digits;
}

json metric(const telemetry::MetricStatistics& m) {
  return {{"min", optional(m.min)}, {"avg", optional(m.avg)},   {"max", optional(m.max)},
          {"p95", optional(m.p95)}, {"last", optional(m.last)}, {"count", m.count}};
}

}  // namespace

Result<SystemTime> parseRfc3339(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (text.size() < 20 || !readInt(text, 0, 4, year) || text[4] != '-' ||
      !readInt(text, 5, 2, month) || text[7] != '-' || !readInt(text, 8, 2, day) ||
      (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || !readInt(text, 11, 2, hour) ||
      text[13] != ':' || !readInt(text, 14, 2, minute) || text[16] != ':' ||
      !readInt(text, 17, 2, second)) {
    return badTime(text);
  }
  std::size_t at = 19;
  std::int64_t nanos = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    std::int64_t scale = 100'000'000;
    const std::size_t start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      nanos += (text[at] - '0') * scale;
      scale /= 10;
      ++at;
    }
    if (at == start) return badTime(text);
  }
  int offsetMinutes = 0;
  if (at < text.size() && (text[at] == 'Z' || text[at] == 'z')) {
    ++at;
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    int offsetHour = 0, offsetMinute = 0;
    if (!readInt(text, at + 1, 2, offsetHour) || at + 3 >= text.size() || text[at + 3] != ':' ||
        !readInt(text, at + 4, 2, offsetMinute) || offsetHour > 23 || offsetMinute > 59) {
      return badTime(text);
    }
    offsetMinutes = (offsetHour * 60 + offsetMinute) * (text[at] == '-' ? -1 : 1);
    at += 6;
  } else {
    return badTime(text);
  }
  if (at != text.size() || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
      minute > 59 || second > 60) {
    return badTime(text);
  }
  // system_clock counts nanoseconds in 64 bits: about 1677..2262.
  if (year < 1970 || year > 2200) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("'{}' is out of range (years 1970 to 2200)", text));
  }
  const std::chrono::year_month_day date{std::chrono::year(year), std::chrono::month(month),
                                         std::chrono::day(day)};
  if (!date.ok()) return badTime(text);
  const auto time = std::chrono::sys_days(date) + std::chrono::hours(hour) +
                    std::chrono::minutes(minute - offsetMinutes) + std::chrono::seconds(second) +
                    std::chrono::nanoseconds(nanos);
  return std::chrono::time_point_cast<SystemTime::duration>(time);
}

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
