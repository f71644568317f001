#pragma once

#include <chrono>
#include <string>

namespace deviceops {

// "2026-11-27T10:00:00.123Z" (UTC, milliseconds).
std::string formatIso8601(std::chrono::system_clock::time_point time);

}  // namespace deviceops
