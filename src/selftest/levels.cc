#include "selftest/levels.h"

#include <array>
#include <utility>

namespace deviceops::selftest {
namespace {

template <class Enum, std::size_t N>
std::optional<Enum> parseName(const std::array<std::pair<Enum, std::string_view>, N>& names,
                              std::string_view text) {
  for (const auto& [value, name] : names) {
    if (name == text) return value;
  }
  return std::nullopt;
}

template <class Enum, std::size_t N>
std::string_view nameOf(const std::array<std::pair<Enum, std::string_view>, N>& names, Enum value) {
  for (const auto& [candidate, name] : names) {
    if (candidate == value) return name;
  }
  return "unknown";
}

constexpr std::array<std::pair<Level, std::string_view>, 3> kLevels{
    {{Level::kQuick, "quick"}, {Level::kStandard, "standard"}, {Level::kLong, "long"}}};
constexpr std::array<std::pair<Outcome, std::string_view>, 4> kOutcomes{{{Outcome::kPass, "pass"},
                                                                         {Outcome::kSkip, "skip"},
                                                                         {Outcome::kWarn, "warn"},
                                                                         {Outcome::kFail, "fail"}}};
constexpr std::array<std::pair<RunKind, std::string_view>, 2> kKinds{
    {{RunKind::kEndToEnd, "end-to-end"}, {RunKind::kBenchmark, "performance-benchmark"}}};
constexpr std::array<std::pair<RunState, std::string_view>, 5> kStates{
    {{RunState::kQueued, "queued"},
     {RunState::kRunning, "running"},
     {RunState::kCompleted, "completed"},
     {RunState::kFailed, "failed"},
     {RunState::kCancelled, "cancelled"}}};

}  // namespace

std::string_view levelName(Level level) { return nameOf(kLevels, level); }
std::optional<Level> parseLevel(std::string_view text) { return parseName(kLevels, text); }
std::string_view outcomeName(Outcome outcome) { return nameOf(kOutcomes, outcome); }
std::optional<Outcome> parseOutcome(std::string_view text) { return parseName(kOutcomes, text); }
Outcome worse(Outcome a, Outcome b) { return static_cast<int>(a) >= static_cast<int>(b) ? a : b; }
std::string_view runKindName(RunKind kind) { return nameOf(kKinds, kind); }
std::optional<RunKind> parseRunKind(std::string_view text) { return parseName(kKinds, text); }
std::string_view runStateName(RunState state) { return nameOf(kStates, state); }
std::optional<RunState> parseRunState(std::string_view text) { return parseName(kStates, text); }
bool isFinished(RunState state) {
  return state == RunState::kCompleted || state == RunState::kFailed ||
         state == RunState::kCancelled;
}

}  // namespace deviceops::selftest
