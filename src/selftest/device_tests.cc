#include "selftest/device_tests.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/atomic_file.h"
#include "common/sha256.h"
#include "selftest/bandwidth.h"
#include "selftest/builtin_models.h"
#include "selftest/device_window.h"
#include "selftest/latency.h"
#include "selftest/memtest.h"
#include "selftest/peaks.h"

namespace deviceops::selftest {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

// A device-to-device copy moving less memory traffic than this fraction of the theoretical peak
// warns: real GPUs reach 0.7-0.9 (a copy is the best case for the memory system).
constexpr double kMinPeakRatio = 0.25;

double millisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

Figure makeFigure(std::string name, double value, std::string unit, bool higherIsBetter) {
  Figure figure;
  figure.name = std::move(name);
  figure.value = value;
  figure.unit = std::move(unit);
  figure.higherIsBetter = higherIsBetter;
  return figure;
}

TestResult makeResult(const std::string& deviceId, std::string test) {
  TestResult result;
  result.deviceId = deviceId;
  result.test = std::move(test);
  return result;
}

TestResult failed(TestResult result, const Error& error, Clock::time_point start) {
  result.status = Outcome::kFail;
  result.reason = error.message;
  result.details["errorCode"] = errorCodeName(error.code);
  result.durationMs = millisSince(start);
  return result;
}

TestResult skipped(TestResult result, std::string reason) {
  result.status = Outcome::kSkip;
  result.reason = std::move(reason);
  return result;
}

const devices::DeviceView* findDevice(const devices::InventorySnapshot& snapshot,
                                      const std::string& deviceId) {
  return snapshot.find(deviceId);
}

// Bytes a self-test may take on the device now: half of what the ledger would admit.
std::uint64_t affordableBytes(memory::MemoryService& memory, const std::string& deviceId) {
  Result<memory::DeviceMemoryStatus> status = memory.status(deviceId);
  if (!status.ok()) return 0;
  return status->availableBytes / 2;
}

// `wanted` cut to half of what the ledger admits now and to what the device's allocator can
// transfer through (found with a 4 KiB probe allocation). The probe's error when even that fails.
Result<std::uint64_t> usableBytes(const TestContext& context, const std::string& deviceId,
                                  std::uint64_t wanted) {
  std::uint64_t bytes = std::min(wanted, affordableBytes(context.memory, deviceId));
  ASSIGN_OR_RETURN(const std::unique_ptr<DeviceWindow> probe,
                   DeviceWindow::open(context.memory, deviceId, 4096, context.ledgerOwner,
                                      "self-test probe " + context.runId));
  if (const auto limit = probe->transferLimit()) bytes = std::min(bytes, *limit);
  return bytes;
}

// The built-in model file (deterministic bytes), written once under the model directory.
Result<std::filesystem::path> builtinModelFile(const TestContext& context, const std::string& stem,
                                               const std::string& bytes) {
  std::error_code ignored;
  std::filesystem::create_directories(context.modelDirectory, ignored);
  const std::filesystem::path file =
      context.modelDirectory / fmt::format("{}-{}.onnx", stem, sha256Hex(bytes).substr(0, 16));
  if (std::filesystem::exists(file)) return file;
  RETURN_IF_ERROR(writeFileAtomically(file, bytes));
  return file;
}

// A built-in model loaded on one device for the duration of a test; unloaded when it goes.
class LoadedModel {
 public:
  static Result<std::unique_ptr<LoadedModel>> load(const TestContext& context,
                                                   const std::string& deviceId,
                                                   const std::string& stem,
                                                   const std::string& bytes) {
    if (context.registry == nullptr) {
      return makeError(ErrorCode::kUnavailable, "inference is disabled ([inference] enabled)");
    }
    ASSIGN_OR_RETURN(const std::filesystem::path file, builtinModelFile(context, stem, bytes));
    inference::LoadRequest request;
    request.name = fmt::format("selftest-{}-{}-{}", stem, context.runId, deviceId);
    request.path = file;
    request.managed = true;
    request.devices = {deviceId};
    request.owner = context.ledgerOwner;
    ASSIGN_OR_RETURN(const inference::ModelInfo info, context.registry->load(request));
    return std::unique_ptr<LoadedModel>(new LoadedModel(*context.registry, info.id));
  }
  ~LoadedModel() {
    Result<inference::UnloadResult> unloaded = registry_.unload(id_);
    if (!unloaded.ok()) {
      spdlog::warn("self-test: unloading {} failed: {}", id_, unloaded.error().message);
    }
  }
  const std::string& id() const { return id_; }
  // One inference through the registry with `input` as the model's only input.
  Result<inference::InferResult> run(const inference::Tensor& input) const {
    inference::InferRequest request;
    request.model = id_;
    request.inputs.push_back(input);
    return registry_.infer(std::move(request));
  }

 private:
  LoadedModel(inference::ModelRegistry& registry, std::string id)
      : registry_(registry), id_(std::move(id)) {}
  inference::ModelRegistry& registry_;
  std::string id_;
};

inference::Tensor floatTensor(std::string name, std::vector<std::int64_t> shape,
                              const std::vector<float>& values) {
  inference::Tensor tensor;
  tensor.name = std::move(name);
  tensor.type = inference::DataType::kFp32;
  tensor.shape = std::move(shape);
  tensor.data.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  return tensor;
}

std::vector<float> floatsOf(const inference::Tensor& tensor) {
  std::vector<float> values(tensor.data.size() / sizeof(float));
  std::memcpy(values.data(), tensor.data.data(), values.size() * sizeof(float));
  return values;
}

// Whether the registry cannot place models on this device at all (no provider): a skip, not a
// failure of the device.
bool isPlacementRefusal(const Error& error) {
  return error.code == ErrorCode::kInvalidArgument || error.code == ErrorCode::kUnavailable;
}

// A built-in model that did not load: a skip where the registry cannot place models on the
// device at all (no provider, inference disabled), else a failure.
TestResult notLoaded(const TestContext& context, TestResult result, const Error& error,
                     Clock::time_point start) {
  if (context.registry == nullptr || isPlacementRefusal(error)) {
    return skipped(std::move(result), error.message);
  }
  return failed(std::move(result), error, start);
}

int matmulSize(const devices::DeviceView* view) {
  if (view != nullptr && view->record.type == devices::DeviceType::kGpu &&
      !view->record.simulated) {
    return 4096;
  }
  return 512;
}

}  // namespace

TestResult checkDeviceHealth(const TestContext& context, const std::string& deviceId) {
  const auto start = Clock::now();
  TestResult result = makeResult(deviceId, "device.health");
  const auto snapshot = context.inventory.snapshot();
  const devices::DeviceView* view = findDevice(*snapshot, deviceId);
  if (view == nullptr) {
    result.status = Outcome::kFail;
    result.reason = "the device is no longer in the inventory (it vanished from its backend)";
    result.durationMs = millisSince(start);
    return result;
  }
  Json reasons = Json::array();
  for (const devices::HealthReason& reason : view->health.reasons) {
    reasons.push_back({{"code", reason.code}, {"message", reason.message}});
  }
  result.details = {{"health", devices::healthStatusName(view->health.status)},
                    {"reasons", reasons}};
  switch (view->health.status) {
    case devices::HealthStatus::kHealthy:
      result.reason = "healthy";
      break;
    case devices::HealthStatus::kDegraded:
      result.status = Outcome::kWarn;
      break;
    default:
      result.status = Outcome::kFail;
  }
  if (result.status != Outcome::kPass) {
    std::string text = std::string(devices::healthStatusName(view->health.status));
    for (const devices::HealthReason& reason : view->health.reasons) {
      text += fmt::format("; {}: {}", reason.code, reason.message);
    }
    result.reason = text;
  }
  result.durationMs = millisSince(start);
  return result;
}

std::vector<TestResult> memoryPatterns(const TestContext& context, const std::string& deviceId,
                                       std::uint64_t bytes, std::chrono::milliseconds budget,
                                       int passes, bool allPatterns) {
  const auto start = Clock::now();
  std::vector<TestResult> results;
  Result<std::uint64_t> usable = usableBytes(context, deviceId, bytes);
  if (!usable.ok()) {
    results.push_back(failed(makeResult(deviceId, "memory.allocate"), usable.error(), start));
    return results;
  }
  bytes = *usable & ~std::uint64_t{7};
  if (bytes < 4096) {
    results.push_back(skipped(makeResult(deviceId, "memory.allocate"),
                              "the ledger admits no memory for a pattern test on this device"));
    return results;
  }
  Result<std::unique_ptr<DeviceWindow>> window = DeviceWindow::open(
      context.memory, deviceId, bytes, context.ledgerOwner, "self-test " + context.runId);
  if (!window.ok()) {
    results.push_back(failed(makeResult(deviceId, "memory.allocate"), window.error(), start));
    return results;
  }
  std::vector<PatternTest> tests;
  if (allPatterns) {
    tests.assign(kAllPatternTests.begin(), kAllPatternTests.end());
  } else {
    tests = {PatternTest::kAddressInAddress};
  }
  const auto share = budget / static_cast<int>(tests.size());
  for (std::size_t index = 0; index < tests.size(); ++index) {
    const PatternTest test = tests[index];
    const std::string name = fmt::format("memory.{}", patternTestName(test));
    TestResult result = makeResult(deviceId, name);
    const auto testStart = Clock::now();
    MemtestOptions options;
    options.stop = context.stop;
    options.stop.deadline = std::min(context.stop.deadline, testStart + share);
    options.maxPasses = passes;
    options.seed = std::hash<std::string>{}(context.runId + deviceId) + index;
    options.progress = [&](double fraction) {
      if (context.progress) context.progress(fraction, name);
    };
    Result<MemtestResult> ran = runPatternTest(**window, test, options);
    if (!ran.ok()) {
      results.push_back(failed(std::move(result), ran.error(), testStart));
      continue;
    }
    result.durationMs = millisSince(testStart);
    result.details = {{"bytes", (*window)->size()},
                      {"allocationId", (*window)->allocationId()},
                      {"allocator", std::string((*window)->allocatorKind())},
                      {"plannedPasses", ran->plannedPasses},
                      {"completedPasses", ran->completedPasses},
                      {"bytesTested", ran->bytesTested},
                      {"errors", ran->errors},
                      {"partial", ran->partial}};
    if (ran->errors > 0) {
      result.status = Outcome::kFail;
      result.reason = failureReason(*ran);
      result.details["firstErrorOffset"] = ran->firstErrorOffset;
      result.details["firstExpected"] = fmt::format("{:#018x}", ran->firstExpected);
      result.details["firstActual"] = fmt::format("{:#018x}", ran->firstActual);
      result.details["badBits"] = fmt::format("{:#018x}", ran->badBits);
    } else if (ran->cancelled) {
      result.status = Outcome::kSkip;
      result.reason = "cancelled";
    } else if (ran->partial) {
      result.status = Outcome::kWarn;
      result.reason = fmt::format("time ran out before one full pass ({} of {} bytes checked)",
                                  ran->bytesTested, (*window)->size());
    } else {
      result.reason = fmt::format("{} of {} passes over {} bytes, no errors", ran->completedPasses,
                                  ran->plannedPasses, (*window)->size());
    }
    results.push_back(std::move(result));
  }
  return results;
}

std::vector<TestResult> bandwidthTests(const TestContext& context, const std::string& deviceId,
                                       const std::vector<std::string>& directions,
                                       std::uint64_t bytes, std::chrono::milliseconds budgetEach) {
  const auto start = Clock::now();
  std::vector<TestResult> results;
  Result<std::uint64_t> usable = usableBytes(context, deviceId, bytes);
  if (!usable.ok()) {
    for (const std::string& direction : directions) {
      results.push_back(
          failed(makeResult(deviceId, "bandwidth." + direction), usable.error(), start));
    }
    return results;
  }
  bytes = *usable & ~std::uint64_t{4095};
  Result<std::unique_ptr<DeviceWindow>> window =
      bytes == 0 ? Result<std::unique_ptr<DeviceWindow>>(makeError(
                       ErrorCode::kConflict, "the ledger admits no memory for a bandwidth test"))
                 : DeviceWindow::open(context.memory, deviceId, bytes, context.ledgerOwner,
                                      "self-test " + context.runId);
  const auto snapshot = context.inventory.snapshot();
  const devices::DeviceView* view = findDevice(*snapshot, deviceId);
  const std::optional<double> peak =
      view != nullptr ? view->record.memory.peakBandwidthBytesPerSecond : std::nullopt;
  const std::optional<double> linkPeak =
      view != nullptr ? hostLinkPeak(view->record.readings) : std::nullopt;
  for (const std::string& name : directions) {
    TestResult result = makeResult(deviceId, "bandwidth." + name);
    if (!window.ok()) {
      results.push_back(failed(std::move(result), window.error(), start));
      continue;
    }
    const std::optional<Direction> direction = parseDirection(name);
    if (!direction) {
      results.push_back(skipped(std::move(result), "unknown direction " + name));
      continue;
    }
    const auto testStart = Clock::now();
    BandwidthOptions options;
    options.budget = budgetEach;
    options.stop = context.stop;
    if (context.progress) context.progress(0, result.test);
    Result<BandwidthResult> measured = measureBandwidth(**window, *direction, options);
    if (!measured.ok()) {
      results.push_back(failed(std::move(result), measured.error(), testStart));
      continue;
    }
    Figure figure = makeFigure("bandwidth", measured->bytesPerSecond, "B/s", true);
    if (*direction == Direction::kDeviceToDevice) {
      if (peak && *peak > 0) {
        figure.peak = peak;
        // A copy reads and writes every byte: the memory moved twice what was copied.
        figure.ratio = 2 * measured->bytesPerSecond / *peak;
      }
    } else if (linkPeak && *linkPeak > 0) {
      // Reported, never judged: a pageable host buffer reaches well below the link's peak.
      figure.peak = linkPeak;
      figure.ratio = measured->bytesPerSecond / *linkPeak;
    }
    result.figures.push_back(figure);
    result.durationMs = millisSince(testStart);
    result.details = {{"bytesMoved", measured->bytesMoved},
                      {"iterations", measured->iterations},
                      {"seconds", measured->seconds},
                      {"windowBytes", (*window)->size()},
                      {"allocator", std::string((*window)->allocatorKind())}};
    if (*direction == Direction::kDeviceToDevice && !figure.peak) {
      result.details["peakUnknown"] =
          "the device's theoretical memory bandwidth is not known here (NVML reports bus width "
          "and memory clock; CPUs and Vulkan devices do not)";
    } else if (*direction != Direction::kDeviceToDevice && !figure.peak) {
      result.details["peakUnknown"] =
          "the host link's PCIe generation and width are not reported for this device";
    }
    result.reason = fmt::format("{:.2f} GB/s", measured->bytesPerSecond / 1e9);
    if (figure.ratio && *figure.ratio < kMinPeakRatio) {
      result.status = Outcome::kWarn;
      result.reason = fmt::format(
          "{:.2f} GB/s copied: memory traffic at {:.1f}% of the device's theoretical {:.1f} GB/s "
          "(below {:.0f}%)",
          measured->bytesPerSecond / 1e9, *figure.ratio * 100, *figure.peak / 1e9,
          kMinPeakRatio * 100);
    }
    results.push_back(std::move(result));
  }
  return results;
}

TestResult inferenceCompare(const TestContext& context, const std::string& deviceId) {
  const auto start = Clock::now();
  TestResult result = makeResult(deviceId, "inference.compare");
  if (context.progress) context.progress(0, result.test);
  Result<std::unique_ptr<LoadedModel>> model =
      LoadedModel::load(context, deviceId, "mlp", mlpModel());
  if (!model.ok()) return notLoaded(context, std::move(result), model.error(), start);
  constexpr std::size_t kBatch = 8;
  const std::vector<float> input = mlpInput(kBatch, 7);
  Result<inference::InferResult> inferred =
      (*model)->run(floatTensor("x", {static_cast<std::int64_t>(kBatch), 64}, input));
  if (!inferred.ok()) return failed(std::move(result), inferred.error(), start);
  const std::vector<float> expected = mlpReference(input, kBatch);
  const std::vector<float> actual = floatsOf(inferred->outputs.at(0));
  if (actual.size() != expected.size()) {
    result.status = Outcome::kFail;
    result.reason = fmt::format("the device returned {} values, the reference {}", actual.size(),
                                expected.size());
    result.durationMs = millisSince(start);
    return result;
  }
  double worst = 0;
  std::size_t worstIndex = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double error = std::abs(double{actual[i]} - double{expected[i]}) /
                         std::max(1.0, std::abs(double{expected[i]}));
    if (!(error <= worst)) {
      worst = error;
      worstIndex = i;
    }
  }
  result.details = {{"values", actual.size()}, {"maxRelativeError", worst}};
  if (!(worst <= 1e-4)) {
    result.status = Outcome::kFail;
    result.reason = fmt::format(
        "output {} is {} on the device, {} in the C++ reference "
        "(relative error {:.3g} > 1e-4)",
        worstIndex, actual[worstIndex], expected[worstIndex], worst);
  } else {
    result.reason = fmt::format("{} outputs equal the C++ reference (max relative error {:.2g})",
                                actual.size(), worst);
  }
  result.durationMs = millisSince(start);
  return result;
}

TestResult matmulThroughput(const TestContext& context, const std::string& deviceId,
                            std::chrono::milliseconds duration) {
  const auto start = Clock::now();
  TestResult result = makeResult(deviceId, "matmul");
  if (context.progress) context.progress(0, result.test);
  const auto snapshot = context.inventory.snapshot();
  const int n = matmulSize(findDevice(*snapshot, deviceId));
  Result<std::unique_ptr<LoadedModel>> model =
      LoadedModel::load(context, deviceId, fmt::format("matmul{}", n), matmulModel(n));
  if (!model.ok()) return notLoaded(context, std::move(result), model.error(), start);
  const std::vector<float> a(static_cast<std::size_t>(n) * n, 0.5f);
  const inference::Tensor input = floatTensor("a", {n, n}, a);
  std::vector<double> seconds;
  const auto until = Clock::now() + duration;
  for (int iteration = 0; iteration < 2 || (Clock::now() < until && !context.stop.due());
       ++iteration) {
    const auto runStart = Clock::now();
    Result<inference::InferResult> ran = (*model)->run(input);
    if (!ran.ok()) return failed(std::move(result), ran.error(), start);
    if (iteration > 0) {  // the first run is a warm-up
      seconds.push_back(std::chrono::duration<double>(Clock::now() - runStart).count());
    }
  }
  const LatencySummary summary = summarize(seconds);
  const double flops = matmulFlops(n) / summary.p50;
  result.figures.push_back(makeFigure("flops", flops, "FLOP/s", true));
  result.details = {{"n", n}, {"runs", summary.count}, {"p50Seconds", summary.p50}};
  result.reason = fmt::format("{:.1f} GFLOP/s ({}x{} fp32, median of {} runs)", flops / 1e9, n, n,
                              summary.count);
  result.durationMs = millisSince(start);
  return result;
}

TestResult inferenceThroughput(const TestContext& context, const std::string& deviceId,
                               std::chrono::milliseconds duration) {
  const auto start = Clock::now();
  TestResult result = makeResult(deviceId, "inference");
  if (context.progress) context.progress(0, result.test);
  Result<std::unique_ptr<LoadedModel>> model =
      LoadedModel::load(context, deviceId, "mlp", mlpModel());
  if (!model.ok()) return notLoaded(context, std::move(result), model.error(), start);
  const inference::Tensor input = floatTensor("x", {1, 64}, mlpInput(1, 3));
  constexpr int kClients = 4;
  std::mutex mutex;
  std::vector<double> latencies;
  std::optional<Error> firstError;
  const auto begin = Clock::now();
  const auto until = begin + duration;
  std::vector<std::thread> clients;
  for (int client = 0; client < kClients; ++client) {
    clients.emplace_back([&] {
      std::vector<double> mine;
      while (Clock::now() < until && !context.stop.due()) {
        const auto sent = Clock::now();
        Result<inference::InferResult> ran = (*model)->run(input);
        if (!ran.ok()) {
          std::lock_guard lock(mutex);
          if (!firstError) firstError = ran.error();
          return;
        }
        mine.push_back(std::chrono::duration<double>(Clock::now() - sent).count());
      }
      std::lock_guard lock(mutex);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  for (std::thread& client : clients) client.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  if (firstError) return failed(std::move(result), *firstError, start);
  const LatencySummary summary = summarize(latencies);
  const double rate = static_cast<double>(summary.count) / elapsed;
  result.figures.push_back(makeFigure("requestsPerSecond", rate, "1/s", true));
  result.figures.push_back(makeFigure("p50", summary.p50, "s", false));
  result.figures.push_back(makeFigure("p99", summary.p99, "s", false));
  result.details = {{"requests", summary.count}, {"clients", kClients}, {"batch", 1}};
  result.reason = fmt::format("{:.0f} requests/s, p50 {:.3f} ms, p99 {:.3f} ms", rate,
                              summary.p50 * 1e3, summary.p99 * 1e3);
  result.durationMs = millisSince(start);
  return result;
}

TestResult allocationLatency(const TestContext& context, const std::string& deviceId,
                             std::chrono::milliseconds duration) {
  const auto start = Clock::now();
  TestResult result = makeResult(deviceId, "allocation");
  if (context.progress) context.progress(0, result.test);
  std::vector<double> allocate;
  std::vector<double> release;
  const auto until = Clock::now() + duration;
  while (allocate.size() < 10 || (Clock::now() < until && !context.stop.due())) {
    memory::AllocateRequest request;
    request.deviceId = deviceId;
    request.bytes = 1 << 20;
    request.owner = context.ledgerOwner;
    request.label = "self-test allocation latency " + context.runId;
    request.reclaim = false;
    const auto asked = Clock::now();
    Result<memory::AllocateResult> made = context.memory.allocate(request);
    if (!made.ok()) return failed(std::move(result), made.error(), start);
    const auto got = Clock::now();
    Result<memory::AllocationRecord> freed = context.memory.release(made->record.id, "self-test");
    if (!freed.ok()) return failed(std::move(result), freed.error(), start);
    allocate.push_back(std::chrono::duration<double>(got - asked).count());
    release.push_back(std::chrono::duration<double>(Clock::now() - got).count());
    if (allocate.size() >= 1000000) break;
  }
  const LatencySummary allocated = summarize(allocate);
  const LatencySummary released = summarize(release);
  result.figures.push_back(makeFigure("p50", allocated.p50, "s", false));
  result.figures.push_back(makeFigure("p99", allocated.p99, "s", false));
  result.figures.push_back(makeFigure("releaseP50", released.p50, "s", false));
  result.details = {
      {"allocations", allocated.count}, {"bytes", 1 << 20}, {"includesStoreWrite", true}};
  result.reason = fmt::format("allocate 1 MiB: p50 {:.1f} µs, p99 {:.1f} µs over {} allocations",
                              allocated.p50 * 1e6, allocated.p99 * 1e6, allocated.count);
  result.durationMs = millisSince(start);
  return result;
}

TestResult telemetryRoundTrip(const TestContext& context, const std::string& deviceId) {
  const auto start = Clock::now();
  TestResult result = makeResult(deviceId, "telemetry.roundTrip");
  if (context.telemetry == nullptr) {
    return skipped(std::move(result), "telemetry is disabled ([telemetry] enabled)");
  }
  telemetry::TelemetryStore& store = context.telemetry->store();
  telemetry::StoredEvent stored;
  stored.node = context.telemetry->node();
  stored.event.type = "selftest.marker";
  stored.event.deviceId = deviceId;
  stored.event.message = "self-test " + context.runId + " telemetry round trip";
  stored.event.details = {{"runId", context.runId}};
  // Millisecond precision, as the store keeps it.
  stored.event.time =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  telemetry::WriteBatch batch;
  batch.events.push_back(stored);
  if (Status written = store.write(batch); !written.ok()) {
    return failed(std::move(result), written.error(), start);
  }
  telemetry::EventQuery query;
  query.node = stored.node;
  query.deviceId = deviceId;
  query.type = "selftest.marker";
  query.since = stored.event.time;
  query.limit = 20;
  Result<std::vector<telemetry::StoredEvent>> read = store.events(query);
  if (!read.ok()) return failed(std::move(result), read.error(), start);
  const bool found = std::any_of(read->begin(), read->end(), [&](const auto& event) {
    return event.event.details.value("runId", std::string()) == context.runId &&
           event.event.message == stored.event.message;
  });
  result.durationMs = millisSince(start);
  result.details = {{"store", std::string(store.kind())}, {"read", read->size()}};
  if (!found) {
    result.status = Outcome::kFail;
    result.reason = "the event written to the telemetry store was not read back";
  } else {
    result.reason =
        fmt::format("written and read back in {:.1f} ms ({})", result.durationMs, store.kind());
  }
  return result;
}

TestResult sustainedLoad(const TestContext& context, const std::string& deviceId,
                         std::chrono::milliseconds duration) {
  const auto start = Clock::now();
  TestResult result = makeResult(deviceId, "load.sustained");
  if (context.progress) context.progress(0, result.test);
  const auto snapshot = context.inventory.snapshot();
  const int n = matmulSize(findDevice(*snapshot, deviceId));
  // The load: matmul through the registry where ONNX Runtime runs on the device, else copies.
  std::unique_ptr<LoadedModel> model;
  std::unique_ptr<DeviceWindow> window;
  std::string kind;
  {
    Result<std::unique_ptr<LoadedModel>> loaded =
        LoadedModel::load(context, deviceId, fmt::format("matmul{}", n), matmulModel(n));
    if (loaded.ok()) {
      model = std::move(loaded.value());
      kind = "matmul";
    } else {
      std::uint64_t bytes =
          std::min<std::uint64_t>(256ull << 20, affordableBytes(context.memory, deviceId));
      bytes &= ~std::uint64_t{4095};
      if (bytes == 0) {
        return skipped(std::move(result), "neither a model nor memory for a load fits now");
      }
      Result<std::unique_ptr<DeviceWindow>> opened = DeviceWindow::open(
          context.memory, deviceId, bytes, context.ledgerOwner, "self-test load " + context.runId);
      if (!opened.ok()) return failed(std::move(result), opened.error(), start);
      window = std::move(opened.value());
      if (const auto limit = window->transferLimit(); limit && *limit < window->size()) {
        return skipped(std::move(result), "the device cannot transfer through a whole block");
      }
      kind = "deviceToDevice";
    }
  }
  const std::vector<float> a(static_cast<std::size_t>(n) * n, 0.25f);
  const inference::Tensor input = floatTensor("a", {n, n}, a);
  std::optional<double> peakTemperature, minClock, maxClock;
  bool throttled = false;
  std::vector<std::string> throttleReasons;
  std::optional<devices::HealthStatus> worstHealth;
  std::vector<double> rates;  // work units per second, one per second of load
  const auto until = Clock::now() + duration;
  auto sliceStart = Clock::now();
  double sliceWork = 0;
  auto nextWatch = Clock::now();
  while (Clock::now() < until && !context.stop.due()) {
    if (model) {
      Result<inference::InferResult> ran = model->run(input);
      if (!ran.ok()) return failed(std::move(result), ran.error(), start);
      sliceWork += matmulFlops(n);
    } else {
      const std::uint64_t half = window->size() / 2;
      if (Status copied = window->copy(half, 0, half); !copied.ok()) {
        return failed(std::move(result), copied.error(), start);
      }
      sliceWork += static_cast<double>(half);
    }
    const auto now = Clock::now();
    if (now >= nextWatch) {
      nextWatch = now + std::chrono::seconds(1);
      const auto current = context.inventory.snapshot();
      if (const devices::DeviceView* view = current->find(deviceId)) {
        const devices::Readings& readings = view->record.readings;
        if (readings.temperatureCelsius) {
          peakTemperature = std::max(peakTemperature.value_or(-1e9), *readings.temperatureCelsius);
        }
        if (readings.clockMhz) {
          minClock = std::min(minClock.value_or(1e12), *readings.clockMhz);
          maxClock = std::max(maxClock.value_or(0.0), *readings.clockMhz);
        }
        if (readings.thermalThrottling || readings.powerThrottling) throttled = true;
        for (const std::string& reason : readings.throttleReasons) {
          if (std::find(throttleReasons.begin(), throttleReasons.end(), reason) ==
              throttleReasons.end()) {
            throttleReasons.push_back(reason);
          }
        }
        if (!worstHealth || view->health.status > *worstHealth) worstHealth = view->health.status;
      } else {
        result.status = Outcome::kFail;
        result.reason = "the device vanished during the load";
        result.durationMs = millisSince(start);
        return result;
      }
      const double seconds = std::chrono::duration<double>(now - sliceStart).count();
      if (seconds > 0.5) {
        rates.push_back(sliceWork / seconds);
        sliceWork = 0;
        sliceStart = now;
      }
      if (context.progress) {
        context.progress(std::chrono::duration<double>(now - start).count() /
                             std::chrono::duration<double>(duration).count(),
                         result.test);
      }
    }
  }
  const std::string unit = model ? "FLOP/s" : "B/s";
  if (!rates.empty()) {
    result.figures.push_back(makeFigure("rateStart", rates.front(), unit, true));
    result.figures.push_back(makeFigure("rateEnd", rates.back(), unit, true));
  }
  if (peakTemperature) {
    result.figures.push_back(makeFigure("peakTemperature", *peakTemperature, "C", false));
  }
  result.details = {{"load", kind},
                    {"throttled", throttled},
                    {"throttleReasons", throttleReasons},
                    {"minClockMhz", minClock ? Json(*minClock) : Json(nullptr)},
                    {"maxClockMhz", maxClock ? Json(*maxClock) : Json(nullptr)}};
  if (worstHealth && *worstHealth >= devices::HealthStatus::kCritical) {
    result.status = Outcome::kFail;
    result.reason =
        fmt::format("the device became {} under load", devices::healthStatusName(*worstHealth));
  } else if (throttled || (worstHealth && *worstHealth == devices::HealthStatus::kDegraded)) {
    result.status = Outcome::kWarn;
    result.reason = throttled
                        ? fmt::format("throttled under load ({})", fmt::join(throttleReasons, ", "))
                        : "the device became degraded under load";
  } else if (rates.size() >= 2 && rates.back() < 0.8 * rates.front()) {
    result.status = Outcome::kWarn;
    result.reason = fmt::format("the work rate fell {:.0f}% during the load",
                                100 * (1 - rates.back() / rates.front()));
  } else {
    result.reason = fmt::format("{} load for {:.0f} s without throttling", kind,
                                std::chrono::duration<double>(Clock::now() - start).count());
  }
  result.durationMs = millisSince(start);
  return result;
}

}  // namespace deviceops::selftest
