// A self-test run as the API shows it and the store keeps it: what was asked, its state, and a
// result per device and test with figures (a measured value, the device's theoretical peak where
// it can be known, and the median of this device's previous runs).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "selftest/levels.h"

namespace deviceops::selftest {

using SystemTime = std::chrono::system_clock::time_point;

// One measured number of a test.
struct Figure {
  std::string name;  // "bandwidth", "gflops", "p50", "p99", "requestsPerSecond", ...
  double value = 0;
  std::string unit;  // "B/s", "FLOP/s", "s", "1/s"
  bool higherIsBetter = true;
  std::optional<double> peak;            // the device's theoretical figure, when it can be known
  std::optional<double> ratio;           // value / peak (for a copy: bytes read + written / peak)
  std::optional<double> baselineMedian;  // median of this device's previous runs of the test
  int baselineRuns = 0;                  // how many previous runs that median is over
  bool regression = false;               // > the regression threshold worse than the median
};

struct TestResult {
  std::string deviceId;
  std::string test;  // dotted: "memory.movingInversions", "bandwidth.deviceToDevice", ...
  Outcome status = Outcome::kPass;
  std::string reason;  // why (for warn/fail/skip); a short summary for pass
  double durationMs = 0;
  std::vector<Figure> figures;
  nlohmann::json details = nlohmann::json::object();
};

struct Progress {
  double fraction = 0;  // of the whole run, 0..1
  std::string deviceId;
  std::string step;
};

// What a client asked for.
struct RunRequest {
  RunKind kind = RunKind::kEndToEnd;
  Level level = Level::kQuick;       // end-to-end only
  std::vector<std::string> devices;  // ids as given; resolved at submit; empty: every device
  bool force = false;                // long on a busy device
  std::optional<std::uint64_t> memoryBytes;          // cap on pattern-test memory per device
  std::string suite;                                 // end-to-end: the suite of the generation step
  std::optional<std::chrono::seconds> loadDuration;  // long: the sustained load (default 120 s)
  std::vector<std::string> tests;                    // benchmark: which; empty: all
  std::chrono::seconds duration{5};                  // benchmark: per test per device
  std::string owner = "anonymous";
};

struct RunRecord {
  std::string id;  // "run-" + 16 hex digits
  RunRequest request;
  std::vector<std::string> devices;  // resolved ids
  RunState state = RunState::kQueued;
  std::optional<Outcome> status;  // worst result, once finished
  std::string error;              // why a run failed or was cancelled
  SystemTime createdAt;
  std::optional<SystemTime> startedAt, finishedAt;
  Progress progress;
  std::vector<TestResult> results;
};

// The benchmark tests, in the order they run.
const std::vector<std::string>& benchmarkTestNames();

// JSON as in docs/openapi.yaml (Run, TestResult, Figure). fromJson reads what toJson wrote (the
// store keeps runs as JSON); kInternal for a document it cannot read.
nlohmann::json toJson(const Figure& figure);
nlohmann::json toJson(const TestResult& result);
nlohmann::json toJson(const RunRecord& run);
Result<RunRecord> runFromJson(const nlohmann::json& json);

// Counts of results per outcome: {"pass": n, "warn": n, "fail": n, "skip": n}.
nlohmann::json summarize(const std::vector<TestResult>& results);

}  // namespace deviceops::selftest
