// Small helpers shared by the procfs and sysfs parsers: whitespace trimming, line splitting,
// strict whole-string unsigned integers, and the one hwmon/thermal millidegree parser used by the
// cpu and amd backends. Header-only so the fuzz harnesses need no extra sources.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace deviceops::devices::text {

inline constexpr std::string_view kWhitespace = " \t\n\r\f\v";

inline std::string_view trim(std::string_view text) {
  const auto begin = text.find_first_not_of(kWhitespace);
  if (begin == std::string_view::npos) return {};
  const auto end = text.find_last_not_of(kWhitespace);
  return text.substr(begin, end - begin + 1);
}

// Splits off the next line (without its '\n') and advances `text` past it.
inline std::string_view nextLine(std::string_view& text) {
  const auto newline = text.find('\n');
  const std::string_view line = text.substr(0, newline);
  text = newline == std::string_view::npos ? std::string_view{} : text.substr(newline + 1);
  return line;
}

// Whole-string unsigned integer in `base`: no sign, no whitespace, no overflow.
template <class Integer>
std::optional<Integer> toUnsigned(std::string_view text, int base = 10) {
  Integer value = 0;
  const char* end = text.data() + text.size();
  const auto [pointer, error] = std::from_chars(text.data(), end, value, base);
  if (text.empty() || text.front() == '-' || error != std::errc{} || pointer != end) {
    return std::nullopt;
  }
  return value;
}

// thermal_zone*/temp, hwmon temp*_input, temp*_crit and temp*_emergency (millidegrees Celsius,
// may be negative, surrounding whitespace allowed) -> degrees Celsius. nullopt for malformed
// text or values outside -273.15 .. 1000 °C, which sensors report when they are broken.
inline std::optional<double> parseMillidegreesCelsius(std::string_view text) {
  text = trim(text);
  std::int64_t millidegrees = 0;
  const char* end = text.data() + text.size();
  const auto [pointer, error] = std::from_chars(text.data(), end, millidegrees);
  if (text.empty() || error != std::errc{} || pointer != end) return std::nullopt;
  if (millidegrees < -273150 || millidegrees > 1000000) return std::nullopt;
  return static_cast<double>(millidegrees) / 1000.0;
}

}  // namespace deviceops::devices::text
