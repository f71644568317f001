#include "common/time_format.h"

#include <fmt/format.h>

#include <charconv>
#include <ctime>

namespace deviceops {
namespace {

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

}  // namespace

std::string formatIso8601(std::chrono::system_clock::time_point time) {
  const auto milliseconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(milliseconds / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     static_cast<int>(milliseconds % 1000));
}

Result<std::chrono::system_clock::time_point> parseRfc3339(std::string_view text) {
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
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(time);
}

}  // namespace deviceops
