// The vocabulary of self-tests: levels (like `dcgmi diag -r 1|2|3`), outcomes, run kinds and
// states, with their stable JSON names.
#pragma once

#include <optional>
#include <string_view>

namespace deviceops::selftest {

// quick: deployment checks (<= 10 s); standard: + memory patterns, bandwidth, training (<= 2 min);
// long: memory patterns over most of the free memory and a sustained load (<= 15 min).
enum class Level { kQuick, kStandard, kLong };
std::string_view levelName(Level level);  // "quick" | "standard" | "long"
std::optional<Level> parseLevel(std::string_view text);

// Worst wins when combined: pass < skip < warn < fail (a skip never hides a warn or a fail).
enum class Outcome { kPass, kSkip, kWarn, kFail };
std::string_view outcomeName(Outcome outcome);  // "pass" | "skip" | "warn" | "fail"
std::optional<Outcome> parseOutcome(std::string_view text);
Outcome worse(Outcome a, Outcome b);

enum class RunKind { kEndToEnd, kBenchmark };
std::string_view runKindName(RunKind kind);  // "end-to-end" | "performance-benchmark"
std::optional<RunKind> parseRunKind(std::string_view text);

enum class RunState { kQueued, kRunning, kCompleted, kFailed, kCancelled };
std::string_view runStateName(RunState state);  // "queued" | "running" | "completed" | ...
std::optional<RunState> parseRunState(std::string_view text);
bool isFinished(RunState state);

}  // namespace deviceops::selftest
