#include "selftest/self_test_service.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <random>
#include <set>

#include "common/prometheus.h"
#include "selftest/device_tests.h"

namespace deviceops::selftest {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kLiveRunsKept = 64;  // finished runs answered from memory (then the store)
constexpr auto kProgressEvery = std::chrono::milliseconds(250);

std::string newRunId() {
  static std::mutex mutex;
  static std::mt19937_64 generator{std::random_device{}()};
  std::lock_guard lock(mutex);
  return fmt::format("run-{:016x}", generator());
}

bool isBandwidthTest(const std::string& test) {
  return test == "hostToDevice" || test == "deviceToHost" || test == "deviceToDevice";
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// The run's verdict: the worst result that is not a skip; skip when everything was skipped.
std::optional<Outcome> verdict(const std::vector<TestResult>& results) {
  std::optional<Outcome> worst;
  for (const TestResult& result : results) {
    if (result.status == Outcome::kSkip) continue;
    worst = worst ? worse(*worst, result.status) : result.status;
  }
  if (!worst && !results.empty()) return Outcome::kSkip;
  return worst;
}

}  // namespace

struct SelfTestService::LiveRun {
  std::mutex mutex;  // guards record, events, fractions
  std::condition_variable changed;
  RunRecord record;
  std::atomic<bool> cancelled{false};
  std::deque<RunEvent> events;
  std::uint64_t nextSequence = 1;
  bool ended = false;
  std::map<std::string, double> fractions;  // per device
  std::map<std::string, Clock::time_point> lastProgress;
};

SelfTestService::SelfTestService(const devices::Inventory& inventory, memory::MemoryService& memory,
                                 inference::ModelRegistry* registry,
                                 telemetry::TelemetryService* telemetry,
                                 std::unique_ptr<SelfTestStore> store, SelfTestOptions options)
    : inventory_(inventory),
      memory_(memory),
      registry_(registry),
      telemetry_(telemetry),
      store_(std::move(store)),
      options_(std::move(options)) {}

SelfTestService::~SelfTestService() { stop(); }

Status SelfTestService::start() {
  ASSIGN_OR_RETURN(const std::size_t failed,
                   store_->failUnfinished(std::chrono::system_clock::now()));
  if (failed > 0)
    spdlog::warn("self-tests: {} run(s) interrupted by a restart marked failed", failed);
  return Status::success();
}

void SelfTestService::stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    for (auto& [id, run] : runs_) run->cancelled.store(true, std::memory_order_release);
    threads.swap(threads_);
  }
  for (std::thread& thread : threads) {
    if (thread.joinable()) thread.join();
  }
}

Status SelfTestService::checkNotBusy(const std::string& deviceId) {
  ASSIGN_OR_RETURN(const memory::DeviceMemoryStatus status, memory_.status(deviceId));
  const auto training = status.heldBytesByKind.find("training");
  if (training != status.heldBytesByKind.end() && training->second > 0) {
    return makeError(ErrorCode::kConflict,
                     fmt::format("device {} is busy: a training job holds {} bytes; the long "
                                 "level would compete with it (force: true runs it anyway)",
                                 deviceId, training->second),
                     {{"deviceId", deviceId}, {"trainingBytes", training->second}});
  }
  if (status.budgetBytes > 0 &&
      static_cast<double>(status.heldBytes) >
          options_.busyHeldRatio * static_cast<double>(status.budgetBytes)) {
    return makeError(
        ErrorCode::kConflict,
        fmt::format("device {} is busy: {} of its {} budget bytes are held (above "
                    "{:.0f}%); force: true runs the long level anyway",
                    deviceId, status.heldBytes, status.budgetBytes, options_.busyHeldRatio * 100),
        {{"deviceId", deviceId},
         {"heldBytes", status.heldBytes},
         {"budgetBytes", status.budgetBytes}});
  }
  return Status::success();
}

Result<RunRecord> SelfTestService::submit(RunRequest request) {
  // Validation first: nothing is claimed or stored for a bad request.
  if (request.kind == RunKind::kBenchmark) {
    if (request.duration.count() < 1 || request.duration > options_.maxDuration) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("durationSeconds must be 1..{}, got {}",
                                   options_.maxDuration.count(), request.duration.count()),
                       {{"field", "durationSeconds"}});
    }
    const auto& known = benchmarkTestNames();
    for (const std::string& test : request.tests) {
      if (std::find(known.begin(), known.end(), test) == known.end()) {
        return makeError(ErrorCode::kInvalidArgument,
                         fmt::format("unknown benchmark test '{}'; expected one of {}", test,
                                     fmt::join(known, ", ")),
                         {{"field", "tests"}, {"test", test}});
      }
    }
    if (request.tests.empty()) request.tests = known;
  }
  if (request.memoryBytes && *request.memoryBytes < 4096) {
    return makeError(ErrorCode::kInvalidArgument, "memoryBytes must be at least 4096",
                     {{"field", "memoryBytes"}});
  }
  const auto snapshot = inventory_.snapshot();
  std::vector<std::string> devices;
  if (request.devices.empty()) {
    for (const devices::DeviceView& view : snapshot->devices) devices.push_back(view.id);
  } else {
    for (const std::string& asked : request.devices) {
      const devices::DeviceView* view = snapshot->find(asked);
      if (view == nullptr) {
        return makeError(ErrorCode::kInvalidArgument, "unknown device '" + asked + "'",
                         {{"field", "devices"}, {"deviceId", asked}});
      }
      if (std::find(devices.begin(), devices.end(), view->id) == devices.end()) {
        devices.push_back(view->id);
      }
    }
  }
  if (devices.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "there is no device to test");
  }
  if (request.kind == RunKind::kEndToEnd && request.level == Level::kLong && !request.force) {
    for (const std::string& deviceId : devices) RETURN_IF_ERROR(checkNotBusy(deviceId));
  }

  auto run = std::make_shared<LiveRun>();
  run->record.id = newRunId();
  run->record.request = std::move(request);
  run->record.devices = devices;
  run->record.createdAt = std::chrono::system_clock::now();
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return makeError(ErrorCode::kUnavailable, "the daemon is stopping");
    for (const std::string& deviceId : devices) {
      const auto held = deviceRuns_.find(deviceId);
      if (held != deviceRuns_.end()) {
        return makeError(ErrorCode::kConflict,
                         fmt::format("device {} is already being tested by run {}; one run per "
                                     "device at a time",
                                     deviceId, held->second),
                         {{"deviceId", deviceId}, {"runId", held->second}});
      }
    }
    for (const std::string& deviceId : devices) deviceRuns_[deviceId] = run->record.id;
    runs_[run->record.id] = run;
  }
  if (Status saved = store_->save(run->record); !saved.ok()) {
    std::lock_guard lock(mutex_);
    for (const std::string& deviceId : devices) deviceRuns_.erase(deviceId);
    runs_.erase(run->record.id);
    return saved.error();
  }
  RunRecord snapshotRecord = run->record;
  {
    std::lock_guard lock(mutex_);
    threads_.emplace_back([this, run] { execute(run); });
  }
  return snapshotRecord;
}

void SelfTestService::publish(LiveRun& run, std::string type, Json data) {
  run.events.push_back({run.nextSequence++, std::move(type), std::move(data)});
  while (run.events.size() > options_.eventBacklog) run.events.pop_front();
  run.changed.notify_all();
}

void SelfTestService::execute(const std::shared_ptr<LiveRun>& run) {
  std::vector<std::string> devices;
  {
    std::lock_guard lock(run->mutex);
    run->record.state = RunState::kRunning;
    run->record.startedAt = std::chrono::system_clock::now();
    publish(*run, "state", {{"state", "running"}});
    devices = run->record.devices;
  }
  (void)store_->save(run->record);
  std::vector<std::thread> workers;
  for (const std::string& deviceId : devices) {
    workers.emplace_back([this, run, deviceId] { runDevice(*run, deviceId); });
  }
  for (std::thread& worker : workers) worker.join();
  finish(run);
}

void SelfTestService::judge(const LiveRun& run, TestResult& result) {
  std::vector<std::string> regressions;
  for (Figure& figure : result.figures) {
    Result<std::vector<double>> previous = store_->previousValues(
        result.deviceId, result.test, figure.name, options_.baselineRuns, run.record.id);
    if (!previous.ok() || previous->empty()) continue;
    figure.baselineRuns = static_cast<int>(previous->size());
    figure.baselineMedian = median(*previous);
    const double base = *figure.baselineMedian;
    if (base <= 0) continue;
    const double change = (figure.value - base) / base;  // positive: larger than before
    const bool worseBy = figure.higherIsBetter ? change < -options_.regressionThreshold
                                               : change > options_.regressionThreshold;
    if (worseBy) {
      figure.regression = true;
      regressions.push_back(fmt::format("{} {:+.0f}% vs the median of {} previous run(s)",
                                        figure.name, change * 100, previous->size()));
    }
  }
  if (!regressions.empty()) {
    result.status = worse(result.status, Outcome::kWarn);
    result.reason = fmt::format("regression: {}{}", fmt::join(regressions, "; "),
                                result.reason.empty() ? "" : " (" + result.reason + ")");
  }
}

void SelfTestService::addResult(LiveRun& run, TestResult result) {
  judge(run, result);
  std::lock_guard lock(run.mutex);
  publish(run, "result", toJson(result));
  run.record.results.push_back(std::move(result));
}

void SelfTestService::runDevice(LiveRun& run, const std::string& deviceId) {
  const RunRequest request = [&] {
    std::lock_guard lock(run.mutex);
    return run.record.request;
  }();
  // The steps and their weights in the device's progress.
  using Step = std::function<void(TestContext&)>;
  std::vector<std::pair<double, Step>> steps;
  const auto add = [&](TestResult result) { addResult(run, std::move(result)); };
  const auto addAll = [&](std::vector<TestResult> results) {
    for (TestResult& result : results) addResult(run, std::move(result));
  };
  // Everything the steps use outlives them (they run below, in this function).
  const std::chrono::milliseconds each = request.duration;
  if (request.kind == RunKind::kEndToEnd) {
    const Level level = request.level;
    steps.push_back({1, [&](TestContext& c) { add(checkDeviceHealth(c, deviceId)); }});
    if (level == Level::kQuick) {
      steps.push_back({3, [&](TestContext& c) {
                         addAll(memoryPatterns(
                             c, deviceId, request.memoryBytes.value_or(options_.quickMemoryBytes),
                             std::chrono::seconds(3), 1, false));
                       }});
    } else {
      const bool isLong = level == Level::kLong;
      steps.push_back({isLong ? 40.0 : 10.0, [&, isLong](TestContext& c) {
                         std::uint64_t bytes = options_.standardMemoryBytes;
                         if (isLong) {
                           Result<memory::DeviceMemoryStatus> status = memory_.status(deviceId);
                           bytes = status.ok() ? static_cast<std::uint64_t>(
                                                     options_.longMemoryFraction *
                                                     static_cast<double>(status->availableBytes))
                                               : bytes;
                         }
                         if (request.memoryBytes) bytes = std::min(bytes, *request.memoryBytes);
                         addAll(memoryPatterns(
                             c, deviceId, bytes,
                             isLong ? options_.longPatternBudget : options_.standardPatternBudget,
                             isLong ? 64 : 0, true));
                       }});
      steps.push_back(
          {3, [&](TestContext& c) {
             addAll(bandwidthTests(c, deviceId, {"hostToDevice", "deviceToHost", "deviceToDevice"},
                                   request.memoryBytes.value_or(options_.standardMemoryBytes),
                                   options_.bandwidthBudget));
           }});
      if (isLong) {
        steps.push_back({15, [&](TestContext& c) {
                           add(sustainedLoad(c, deviceId,
                                             request.loadDuration.value_or(
                                                 std::chrono::duration_cast<std::chrono::seconds>(
                                                     options_.longLoadDuration))));
                         }});
      }
    }
    steps.push_back({2, [&](TestContext& c) { add(inferenceCompare(c, deviceId)); }});
    steps.push_back({1, [&](TestContext& c) { add(telemetryRoundTrip(c, deviceId)); }});
    if (!request.suite.empty()) {
      steps.push_back({0.1, [&](TestContext&) {
                         TestResult result;
                         result.deviceId = deviceId;
                         result.test = "generation";
                         result.status = Outcome::kSkip;
                         result.reason =
                             "an image generation step is not part of the self-test yet "
                             "(docs/SELFTEST.md)";
                         add(std::move(result));
                       }});
    }
  } else {
    std::vector<std::string> directions;
    for (const std::string& test : request.tests) {
      if (isBandwidthTest(test)) directions.push_back(test);
    }
    if (!directions.empty()) {
      steps.push_back({static_cast<double>(directions.size()), [&, directions](TestContext& c) {
                         addAll(bandwidthTests(
                             c, deviceId, directions,
                             request.memoryBytes.value_or(options_.standardMemoryBytes), each));
                       }});
    }
    for (const std::string& test : request.tests) {
      if (test == "matmul") {
        steps.push_back({1, [&](TestContext& c) { add(matmulThroughput(c, deviceId, each)); }});
      } else if (test == "allocation") {
        steps.push_back({1, [&](TestContext& c) { add(allocationLatency(c, deviceId, each)); }});
      } else if (test == "inference") {
        steps.push_back({1, [&](TestContext& c) { add(inferenceThroughput(c, deviceId, each)); }});
      }
    }
  }
  double total = 0;
  for (const auto& step : steps) total += step.first;
  double done = 0;
  TestContext context{inventory_, memory_};
  context.registry = registry_;
  context.telemetry = telemetry_;
  context.modelDirectory = options_.modelDirectory;
  context.runId = run.record.id;
  context.ledgerOwner = "selftest:" + run.record.id;
  context.stop.cancelled = &run.cancelled;
  double weight = 0;
  context.progress = [&](double fraction, const std::string& step) {
    const double deviceFraction =
        total > 0 ? (done + std::clamp(fraction, 0.0, 1.0) * weight) / total : 1;
    std::lock_guard lock(run.mutex);
    run.fractions[deviceId] = deviceFraction;
    double sum = 0;
    for (const auto& [id, value] : run.fractions) sum += value;
    run.record.progress = {sum / static_cast<double>(run.record.devices.size()), deviceId, step};
    const auto now = Clock::now();
    auto& last = run.lastProgress[deviceId];
    if (now - last >= kProgressEvery) {
      last = now;
      publish(run, "progress",
              {{"fraction", run.record.progress.fraction}, {"deviceId", deviceId}, {"step", step}});
    }
  };
  for (auto& [stepWeight, step] : steps) {
    if (run.cancelled.load(std::memory_order_acquire)) break;
    weight = stepWeight;
    step(context);
    done += stepWeight;
    context.progress(0, "");
  }
}

void SelfTestService::finish(const std::shared_ptr<LiveRun>& run) {
  RunRecord record;
  {
    std::lock_guard lock(run->mutex);
    run->record.finishedAt = std::chrono::system_clock::now();
    if (run->cancelled.load(std::memory_order_acquire)) {
      run->record.state = RunState::kCancelled;
      if (run->record.error.empty()) run->record.error = "cancelled";
    } else {
      run->record.state = RunState::kCompleted;
      run->record.progress.fraction = 1;
    }
    run->record.status = verdict(run->record.results);
    record = run->record;
  }
  if (Status saved = store_->save(record); !saved.ok()) {
    spdlog::error("self-test {}: not stored: {}", record.id, saved.error().message);
  }
  if (record.state == RunState::kCompleted) {
    if (Status saved = store_->saveFigures(record); !saved.ok()) {
      spdlog::error("self-test {}: figures not stored: {}", record.id, saved.error().message);
    }
  }
  (void)store_->prune(options_.retainRuns);
  {
    std::lock_guard lock(mutex_);
    for (const std::string& deviceId : record.devices) {
      const auto held = deviceRuns_.find(deviceId);
      if (held != deviceRuns_.end() && held->second == record.id) deviceRuns_.erase(held);
    }
    for (const TestResult& result : record.results) {
      lastResults_[{result.deviceId, result.test}] = result;
    }
    finishedRuns_[{std::string(runKindName(record.request.kind)),
                   record.status ? std::string(outcomeName(*record.status))
                                 : std::string(runStateName(record.state))}]++;
    // Forget the oldest finished runs beyond what is kept live (the store has them).
    std::vector<std::pair<SystemTime, std::string>> finished;
    for (const auto& [id, live] : runs_) {
      std::lock_guard runLock(live->mutex);
      if (isFinished(live->record.state) || live == run) {
        finished.push_back({live->record.createdAt, id});
      }
    }
    std::sort(finished.begin(), finished.end());
    for (std::size_t i = 0; i + kLiveRunsKept < finished.size(); ++i) {
      runs_.erase(finished[i].second);
    }
  }
  {
    std::lock_guard lock(run->mutex);
    publish(*run, "state",
            {{"state", runStateName(record.state)},
             {"status", record.status ? Json(outcomeName(*record.status)) : Json(nullptr)}});
    run->ended = true;
    run->changed.notify_all();
  }
  if (options_.events) {
    const std::string status =
        record.status ? std::string(outcomeName(*record.status)) : std::string("none");
    Event event;
    event.type = "selftest.finished";
    event.deviceId = record.devices.size() == 1 ? record.devices.front() : "";
    event.severity = status == "fail" ? "error" : status == "warn" ? "warning" : "info";
    event.message =
        fmt::format("self-test {} ({}) on {}: {}, {}", record.id, runKindName(record.request.kind),
                    fmt::join(record.devices, ", "), runStateName(record.state), status);
    event.details = {{"runId", record.id},
                     {"kind", runKindName(record.request.kind)},
                     {"state", runStateName(record.state)},
                     {"status", status},
                     {"devices", record.devices}};
    options_.events->publish(std::move(event));
  }
  spdlog::info("self-test {} ({}): {}, {}", record.id, runKindName(record.request.kind),
               runStateName(record.state),
               record.status ? outcomeName(*record.status) : std::string_view("no results"));
}

Result<RunRecord> SelfTestService::find(const std::string& runId) {
  {
    std::lock_guard lock(mutex_);
    const auto live = runs_.find(runId);
    if (live != runs_.end()) {
      std::lock_guard runLock(live->second->mutex);
      return live->second->record;
    }
  }
  ASSIGN_OR_RETURN(std::optional<RunRecord> stored, store_->find(runId));
  if (!stored) {
    return makeError(ErrorCode::kNotFound, "no self-test run '" + runId + "'", {{"runId", runId}});
  }
  return std::move(*stored);
}

Result<std::vector<RunRecord>> SelfTestService::list(const RunFilter& filter) {
  ASSIGN_OR_RETURN(std::vector<RunRecord> runs, store_->list(filter));
  // Live runs carry results the store gets only when they finish.
  std::lock_guard lock(mutex_);
  for (RunRecord& run : runs) {
    const auto live = runs_.find(run.id);
    if (live == runs_.end()) continue;
    std::lock_guard runLock(live->second->mutex);
    run = live->second->record;
  }
  return runs;
}

Result<RunRecord> SelfTestService::cancel(const std::string& runId) {
  std::shared_ptr<LiveRun> run;
  {
    std::lock_guard lock(mutex_);
    const auto live = runs_.find(runId);
    if (live != runs_.end()) run = live->second;
  }
  if (!run) {
    ASSIGN_OR_RETURN(const RunRecord stored, find(runId));
    return makeError(
        ErrorCode::kConflict,
        fmt::format("run {} has already finished ({})", runId, runStateName(stored.state)),
        {{"runId", runId}, {"state", runStateName(stored.state)}});
  }
  std::lock_guard runLock(run->mutex);
  if (isFinished(run->record.state)) {
    return makeError(
        ErrorCode::kConflict,
        fmt::format("run {} has already finished ({})", runId, runStateName(run->record.state)),
        {{"runId", runId}, {"state", runStateName(run->record.state)}});
  }
  run->cancelled.store(true, std::memory_order_release);
  run->record.error = "cancelled by a client";
  return run->record;
}

std::optional<RunEventBatch> SelfTestService::events(const std::string& runId, std::uint64_t after,
                                                     std::chrono::milliseconds wait) {
  std::shared_ptr<LiveRun> run;
  {
    std::lock_guard lock(mutex_);
    const auto live = runs_.find(runId);
    if (live != runs_.end()) run = live->second;
  }
  if (!run) {
    Result<RunRecord> stored = find(runId);
    if (!stored.ok()) return std::nullopt;
    return RunEventBatch{.events = {}, .ended = true};
  }
  std::unique_lock lock(run->mutex);
  const auto hasNews = [&] {
    return run->ended || (!run->events.empty() && run->events.back().sequence > after);
  };
  run->changed.wait_for(lock, wait, hasNews);
  RunEventBatch batch;
  for (const RunEvent& event : run->events) {
    if (event.sequence > after) batch.events.push_back(event);
  }
  batch.ended = run->ended;
  return batch;
}

DeviceHealthReport SelfTestService::deviceHealth() {
  return checkDeviceHealth(inventory_, memory_, telemetry_, options_.health);
}

void SelfTestService::writeMetrics(std::string& out) {
  std::lock_guard lock(mutex_);
  prometheus::TextWriter writer(out);
  writer.family("deviceops_selftest_result", "gauge",
                "The last self-test result per device and test: 1 on the line of its status");
  for (const auto& [key, result] : lastResults_) {
    writer.sample("deviceops_selftest_result",
                  {{"device", key.first},
                   {"test", key.second},
                   {"status", std::string(outcomeName(result.status))}},
                  1);
  }
  writer.family("deviceops_selftest_figure", "gauge",
                "The last self-test figures per device, test and figure (unit in the label)");
  for (const auto& [key, result] : lastResults_) {
    for (const Figure& figure : result.figures) {
      writer.sample("deviceops_selftest_figure",
                    {{"device", key.first},
                     {"test", key.second},
                     {"figure", figure.name},
                     {"unit", figure.unit}},
                    figure.value);
    }
  }
  writer.family("deviceops_selftest_regression", "gauge",
                "1 when the last figure was more than the threshold worse than its baseline");
  for (const auto& [key, result] : lastResults_) {
    for (const Figure& figure : result.figures) {
      writer.sample("deviceops_selftest_regression",
                    {{"device", key.first}, {"test", key.second}, {"figure", figure.name}},
                    figure.regression ? 1 : 0);
    }
  }
  writer.family("deviceops_selftest_runs_total", "counter",
                "Self-test runs finished by this process, by kind and status");
  for (const auto& [key, count] : finishedRuns_) {
    writer.sample("deviceops_selftest_runs_total", {{"kind", key.first}, {"status", key.second}},
                  static_cast<double>(count));
  }
}

}  // namespace deviceops::selftest
