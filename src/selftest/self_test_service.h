// SelfTestService: runs self-tests and benchmarks as background jobs, one run per device at a
// time, keeps their history, judges figures against it, and answers device-health checks.
//
//   submit() ─► validate, resolve devices, claim them (409 if another run holds one) ─► thread
//      └─ one worker thread per device: the level's tests (device_tests.h), results as they
//         finish (SSE events), figures compared with the median of the device's previous runs
//         (more than `regressionThreshold` worse: regression, warn) ─► finished: persisted
//
// Levels (end-to-end), time bounds are per run, all devices in parallel:
//   quick     <= 10 s   health, 16 MiB address-in-address through the ledger, the built-in
//                       model on the device vs the C++ reference, telemetry write/read
//   standard  <= 2 min  + the five pattern tests over up to 256 MiB (memoryBytes), bandwidth
//                       in three directions
//   long      <= 15 min + the pattern tests over most of the free memory (all passes, 10 min),
//                       and a 2-minute sustained load watching temperature, clocks, throttling;
//                       refused with 409 on a busy device (held memory above busyHeldRatio of
//                       the budget, or training memory held) unless `force`.
// Every allocation is charged to the memory ledger (owner "selftest:<runId>") and released
// when its test ends, whatever happens.
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/events.h"
#include "devices/inventory.h"
#include "inference/registry.h"
#include "memory/memory_service.h"
#include "selftest/device_health.h"
#include "selftest/run.h"
#include "selftest/selftest_store.h"
#include "telemetry/telemetry_service.h"

namespace deviceops::selftest {

struct SelfTestOptions {
  std::filesystem::path modelDirectory;   // built-in models (a registry managed root)
  std::chrono::seconds maxDuration{600};  // durationSeconds above this: 400
  double busyHeldRatio = 0.5;             // long refused above this held/budget (unless force)
  double regressionThreshold = 0.10;      // worse than the median by more: regression
  std::size_t baselineRuns = 10;          // previous runs the median is taken over
  std::size_t retainRuns = 1000;          // finished runs kept (figures are kept longer)
  std::size_t eventBacklog = 4096;        // live events kept per run for SSE replay
  std::uint64_t quickMemoryBytes = 16ull << 20;
  std::uint64_t standardMemoryBytes = 256ull << 20;
  double longMemoryFraction = 0.9;  // of what the ledger admits
  std::chrono::milliseconds standardPatternBudget{40000};
  std::chrono::milliseconds longPatternBudget{600000};
  std::chrono::milliseconds longLoadDuration{120000};
  std::chrono::milliseconds bandwidthBudget{1500};  // per direction at the standard level
  HealthCheckOptions health;
  // Where "selftest.finished" events go (the daemon's live feed and event log); null: nowhere.
  EventSink* events = nullptr;
};

struct RunEvent {
  std::uint64_t sequence = 0;
  std::string type;  // "state" | "progress" | "result"
  nlohmann::json data;
};

struct RunEventBatch {
  std::vector<RunEvent> events;
  bool ended = false;
};

class SelfTestService {
 public:
  // `registry` and `telemetry` may be null (those components disabled: their tests skip).
  SelfTestService(const devices::Inventory& inventory, memory::MemoryService& memory,
                  inference::ModelRegistry* registry, telemetry::TelemetryService* telemetry,
                  std::unique_ptr<SelfTestStore> store, SelfTestOptions options);
  ~SelfTestService();  // stop()
  SelfTestService(const SelfTestService&) = delete;
  SelfTestService& operator=(const SelfTestService&) = delete;

  // Runs a crashed predecessor left unfinished become failed.
  Status start();
  // Cancels every run and waits for their threads.
  void stop();

  // kInvalidArgument: unknown device, test, duration out of 1..maxDuration; kConflict: a device
  // already in a run (details.runId), long on a busy device without force; kUnavailable after
  // stop().
  Result<RunRecord> submit(RunRequest request);
  Result<RunRecord> find(const std::string& runId);
  Result<std::vector<RunRecord>> list(const RunFilter& filter);
  // kConflict for a finished run.
  Result<RunRecord> cancel(const std::string& runId);
  // Events after `after`, waiting up to `wait` for one; nullopt for an unknown run. A run that
  // is not live (finished before this process, or pruned from memory) answers ended at once.
  std::optional<RunEventBatch> events(const std::string& runId, std::uint64_t after,
                                      std::chrono::milliseconds wait);

  DeviceHealthReport deviceHealth();
  // deviceops_selftest_* families (Prometheus text).
  void writeMetrics(std::string& out);

 private:
  struct LiveRun;
  void execute(const std::shared_ptr<LiveRun>& run);
  void runDevice(LiveRun& run, const std::string& deviceId);
  void judge(const LiveRun& run, TestResult& result);
  void addResult(LiveRun& run, TestResult result);
  void publish(LiveRun& run, std::string type, nlohmann::json data);  // run.mutex held
  void finish(const std::shared_ptr<LiveRun>& run);
  Status checkNotBusy(const std::string& deviceId);

  const devices::Inventory& inventory_;
  memory::MemoryService& memory_;
  inference::ModelRegistry* registry_;
  telemetry::TelemetryService* telemetry_;
  std::unique_ptr<SelfTestStore> store_;
  SelfTestOptions options_;

  std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  std::map<std::string, std::shared_ptr<LiveRun>> runs_;  // live and recent runs
  std::map<std::string, std::string> deviceRuns_;         // device id -> run holding it
  std::vector<std::thread> threads_;
  bool stopping_ = false;
  // Last result per (device, test), for /metrics.
  std::map<std::pair<std::string, std::string>, TestResult> lastResults_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> finishedRuns_;  // kind, status
};

}  // namespace deviceops::selftest
