#include "telemetry/sample.h"

#include <algorithm>

namespace deviceops::telemetry {

std::int64_t toMillis(SystemTime time) {
  return std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

SystemTime fromMillis(std::int64_t millis) {
  return SystemTime(
      std::chrono::duration_cast<SystemTime::duration>(std::chrono::milliseconds(millis)));
}

int healthStateIndex(std::string_view state) {
  for (int i = 0; i < 4; ++i) {
    if (state == kHealthStates[i]) return i;
  }
  return -1;
}

std::string_view resolutionName(Resolution resolution) {
  switch (resolution) {
    case Resolution::kAuto:
      return "auto";
    case Resolution::kRaw:
      return "raw";
    case Resolution::kMinute:
      return "1m";
    case Resolution::kHour:
      return "1h";
  }
  return "auto";
}

Resolution chooseResolution(std::chrono::milliseconds window) {
  if (window <= std::chrono::hours(3)) return Resolution::kRaw;
  if (window <= std::chrono::hours(72)) return Resolution::kMinute;
  return Resolution::kHour;
}

double Statistics::windowSeconds() const {
  return std::chrono::duration<double>(to - from).count();
}

double Statistics::coverageRatio() const {
  const double window = windowSeconds();
  if (window <= 0) return 0;
  return std::min(1.0, coveredSeconds / window);
}

}  // namespace deviceops::telemetry
