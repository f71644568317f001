#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/result.h"

namespace deviceops {

// "2026-11-27T10:00:00.123Z" (UTC, milliseconds).
std::string formatIso8601(std::chrono::system_clock::time_point time);
// The inverse, and more: "2026-11-27T10:00:00Z", "2026-11-27T10:00:00.250+01:00" (RFC 3339;
// 'T' or ' ', Z or an offset; years 1970 to 2200). kInvalidArgument naming the text otherwise.
Result<std::chrono::system_clock::time_point> parseRfc3339(std::string_view text);

}  // namespace deviceops
