#include "inference/registry.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>

#include "common/sha256.h"
#include "devices/cpu/cpu_backend.h"
#include "devices/simulated/simulated_backend.h"
#include "devices/testing/allocators.h"
#include "inference/registry_metrics.h"
#include "inference/testing/ort_test_models.h"
#include "memory/ledger_store.h"

namespace deviceops::inference {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::floatsOf;
using testing::floatTensor;
using testing::randomFloats;
using testing::testModel;

constexpr std::uint64_t kMiB = 1ull << 20;
// Each simulated GPU has 350 MiB and the test models declare 100 MiB: three fit, a fourth not.
constexpr std::uint64_t kSimulatedBytes = 350 * kMiB;
constexpr std::uint64_t kModelBytes = 100 * kMiB;

// Keeps every published event (a real, if trivial, EventSink).
class RecordingEventSink final : public EventSink {
 public:
  void publish(Event event) override {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  std::vector<Event> ofType(const std::string& type) {
    std::lock_guard lock(mutex_);
    std::vector<Event> matching;
    for (const Event& event : events_) {
      if (event.type == type) matching.push_back(event);
    }
    return matching;
  }

 private:
  std::mutex mutex_;
  std::vector<Event> events_;
};

template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds limit = 10s) {
  const auto giveUpAt = std::chrono::steady_clock::now() + limit;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > giveUpAt) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

InferRequest mlpRequest(const std::string& model, std::int64_t rows = 3, std::uint32_t seed = 7) {
  InferRequest request;
  request.model = model;
  request.inputs.push_back(
      floatTensor("x", {rows, 16}, randomFloats(static_cast<std::size_t>(rows) * 16, seed)));
  return request;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("deviceops_registry_test_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir / "models");
    fs::create_directories(dir / "outside");
    fs::create_directories(dir / "data");
    for (const char* name : {"mlp.onnx", "cnn.onnx", "slow.onnx", "not_a_model.onnx"}) {
      fs::copy_file(testModel(name), dir / "models" / name);
    }
    fs::copy_file(testModel("mlp.onnx"), dir / "outside" / "secret.onnx");
    // ONNX Runtime's first session in the process maps its libraries; do it before measuring.
    ASSERT_TRUE(inspectModel(dir / "models" / "mlp.onnx").ok());

    devices::SimulatedBackendOptions simulated;
    simulated.devices.resize(2);
    for (auto& device : simulated.devices) device.memoryBytes = kSimulatedBytes;
    std::vector<std::unique_ptr<devices::Backend>> backends;
    backends.push_back(devices::makeCpuBackend());
    backends.push_back(devices::makeSimulatedBackend(simulated));
    inventory =
        std::make_unique<devices::Inventory>(std::move(backends), devices::InventoryOptions{});
    inventory->start();
    Result<std::unique_ptr<memory::LedgerStore>> store =
        memory::openSqliteLedgerStore(dir / "data");
    ASSERT_TRUE(store.ok()) << store.error().message;
    memory::MemoryOptions memoryOptions;
    memoryOptions.budgetFraction = 1.0;  // simulated budget = its 350 MiB
    memoryOptions.reserveBytes = 0;
    memoryService =
        std::make_unique<memory::MemoryService>(*inventory, std::move(store.value()), memoryOptions,
                                                devices::testing::makeCpuOrSimulatedAllocator);
    ASSERT_TRUE(memoryService->start().ok());
  }

  void TearDown() override {
    registry.reset();
    if (memoryService) memoryService->stop();
    memoryService.reset();
    if (inventory) inventory->stop();
    std::error_code error;
    fs::remove_all(dir, error);
  }

  RegistryOptions options() const {
    RegistryOptions result;
    result.modelRoots = {dir / "models"};
    result.uploadDirectory = dir / "data" / "uploads";
    result.databaseFile = dir / "data" / "registry.db";
    result.idleCheckInterval = 20ms;
    return result;
  }

  void startRegistry(RegistryOptions registryOptions) {
    registry.reset();
    registry = std::make_unique<ModelRegistry>(*inventory, *memoryService,
                                               std::move(registryOptions), events);
    Status started = registry->start();
    ASSERT_TRUE(started.ok()) << started.error().message;
  }
  void startRegistry() { startRegistry(options()); }

  // mlp.onnx under `name`, pinned to a simulated device, declaring kModelBytes.
  LoadRequest simulatedModel(const std::string& name, const std::string& device = "sim-0") {
    LoadRequest request;
    request.name = name;
    request.path = "mlp.onnx";
    request.devices = {device};
    request.memoryBytes = kModelBytes;
    return request;
  }

  ModelInfo loadOrDie(const LoadRequest& request) {
    Result<ModelInfo> loaded = registry->load(request);
    EXPECT_TRUE(loaded.ok()) << loaded.error().message;
    return loaded.ok() ? *loaded : ModelInfo{};
  }

  std::uint64_t modelBytesHeld(const std::string& device) {
    return memoryService->status(device)->heldBytesByKind.at("model");
  }

  bool evicted(const std::string& name) { return registry->find(name)->evicted; }

  fs::path dir;
  RecordingEventSink events;
  std::unique_ptr<devices::Inventory> inventory;
  std::unique_ptr<memory::MemoryService> memoryService;
  std::unique_ptr<ModelRegistry> registry;
};

TEST_F(RegistryTest, RefusesPathsOutsideTheModelRoots) {
  startRegistry();
  fs::create_symlink(dir / "outside" / "secret.onnx", dir / "models" / "escape.onnx");
  fs::create_directories(dir / "models" / "folder");
  struct Case {
    fs::path path;
    ErrorCode code;
  };
  const Case cases[] = {
      {dir / "outside" / "secret.onnx", ErrorCode::kPermissionDenied},
      {"../outside/secret.onnx", ErrorCode::kPermissionDenied},
      {dir / "models" / ".." / "outside" / "secret.onnx", ErrorCode::kPermissionDenied},
      {"escape.onnx", ErrorCode::kPermissionDenied},  // a symlink pointing out of the root
      {"/etc/passwd", ErrorCode::kPermissionDenied},
      {"missing.onnx", ErrorCode::kNotFound},
      {"folder", ErrorCode::kInvalidArgument},
      {"not_a_model.onnx", ErrorCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path.string());
    LoadRequest request;
    request.name = "refused";
    request.path = c.path;
    Result<ModelInfo> loaded = registry->load(request);
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.error().code, c.code) << loaded.error().message;
    if (c.code == ErrorCode::kPermissionDenied) {
      EXPECT_NE(loaded.error().message.find(c.path.string()), std::string::npos);
      EXPECT_NE(loaded.error().message.find((dir / "models").string()), std::string::npos);
    }
  }
  EXPECT_TRUE(registry->list().empty());
  EXPECT_EQ(modelBytesHeld("cpu0"), 0u);
  EXPECT_EQ(events.ofType("model.load_failed").size(), 1u);  // only the file that was read
}

TEST_F(RegistryTest, LoadsListsFindsInfersAndUnloads) {
  startRegistry();
  LoadRequest request;
  request.path = dir / "models" / "mlp.onnx";
  ModelInfo model = loadOrDie(request);
  EXPECT_EQ(model.name, "mlp");  // the file stem
  EXPECT_EQ(model.version, "1");
  EXPECT_EQ(model.id.rfind("model-", 0), 0u);
  EXPECT_EQ(model.state, ModelState::kReady);
  EXPECT_EQ(model.sha256, *sha256File(dir / "models" / "mlp.onnx"));
  EXPECT_EQ(model.sizeBytes, fs::file_size(dir / "models" / "mlp.onnx"));
  ASSERT_EQ(model.metadata.inputs.size(), 1u);
  EXPECT_EQ(model.metadata.inputs[0].shape, (std::vector<std::int64_t>{-1, 16}));
  ASSERT_EQ(model.placements.size(), 1u);
  EXPECT_EQ(model.placements[0].deviceId, "cpu0");  // automatic: simulated devices are not used
  EXPECT_EQ(model.placements[0].provider, "cpu");
  EXPECT_GE(model.placements[0].chargedBytes, model.sizeBytes);
  EXPECT_EQ(modelBytesHeld("cpu0"), model.placements[0].chargedBytes);
  auto record = memoryService->find(model.placements[0].allocationId);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->kind, memory::AllocationKind::kModel);
  EXPECT_EQ(record->owner, model.id);
  EXPECT_EQ(record->label, "mlp:1");

  ASSERT_EQ(registry->list().size(), 1u);
  EXPECT_EQ(registry->find(model.id)->name, "mlp");
  EXPECT_EQ(registry->find("mlp", "1")->id, model.id);
  EXPECT_EQ(registry->find("mlp", "2").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(registry->find("nope").error().code, ErrorCode::kNotFound);

  // The registry's answer equals ONNX Runtime through a runner of our own, bit for bit.
  Result<InferResult> answer = registry->infer(mlpRequest("mlp"));
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  auto direct = ModelRunner::create(dir / "models" / "mlp.onnx", RunnerOptions{});
  ASSERT_TRUE(direct.ok());
  RunRequest run;
  run.inputs = mlpRequest("mlp").inputs;
  Result<RunResult> expected = (*direct)->infer(run);
  ASSERT_TRUE(expected.ok());
  ASSERT_EQ(answer->outputs.size(), 1u);
  EXPECT_EQ(answer->outputs[0].name, "y");
  EXPECT_EQ(answer->outputs[0].shape, (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(answer->outputs[0].data, expected->outputs[0].data);
  EXPECT_EQ(answer->modelId, model.id);

  Result<UnloadResult> unloaded = registry->unload("mlp");
  ASSERT_TRUE(unloaded.ok()) << unloaded.error().message;
  EXPECT_EQ(unloaded->chargedBytes, model.placements[0].chargedBytes);
  EXPECT_EQ(modelBytesHeld("cpu0"), 0u);
  EXPECT_EQ(memoryService->find(model.placements[0].allocationId)->state,
            memory::AllocationState::kReleased);
  EXPECT_EQ(registry->find("mlp").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(registry->unload("mlp").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(events.ofType("model.loaded").size(), 1u);
  EXPECT_EQ(events.ofType("model.unloaded").size(), 1u);
}

TEST_F(RegistryTest, BadInferRequestsNameTheTensorAndAreCounted) {
  startRegistry();
  LoadRequest request;
  request.path = "mlp.onnx";
  loadOrDie(request);
  struct Case {
    std::string what;
    InferRequest request;
    std::string mention;
  };
  InferRequest unknown = mlpRequest("mlp");
  unknown.inputs[0].name = "z";
  InferRequest missing = mlpRequest("mlp");
  missing.inputs.clear();
  InferRequest twice = mlpRequest("mlp");
  twice.inputs.push_back(twice.inputs[0]);
  InferRequest wrongDimension;
  wrongDimension.model = "mlp";
  wrongDimension.inputs.push_back(floatTensor("x", {2, 15}, randomFloats(30, 1)));
  InferRequest shortData = mlpRequest("mlp");
  shortData.inputs[0].data.resize(10);
  InferRequest wrongType = mlpRequest("mlp");
  wrongType.inputs[0].type = DataType::kInt32;
  InferRequest unknownOutput = mlpRequest("mlp");
  unknownOutput.outputs = {"w"};
  const Case cases[] = {
      {"unknown input", unknown, "'z'"},
      {"missing input", missing, "'x'"},
      {"input twice", twice, "'x'"},
      {"wrong dimension", wrongDimension, "x"},
      {"short data", shortData, "x"},
      {"wrong type", wrongType, "x"},
      {"unknown output", unknownOutput, "'w'"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Result<InferResult> result = registry->infer(c.request);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(result.error().message.find(c.mention), std::string::npos) << result.error().message;
  }
  EXPECT_NE(registry->infer(unknown).error().message.find("expects: x"), std::string::npos);
  ASSERT_TRUE(registry->infer(mlpRequest("mlp", 5)).ok());
  ModelStatistics statistics = registry->find("mlp")->statistics;
  EXPECT_EQ(statistics.successCount, 1u);
  EXPECT_EQ(statistics.failureCount, std::size(cases) + 1);
  EXPECT_EQ(statistics.inferenceCount, 5u);
  EXPECT_EQ(statistics.executionCount, 1u);
  EXPECT_EQ(statistics.batchSizes, (std::map<int, std::uint64_t>{{1, 1}}));
  EXPECT_EQ(statistics.totalSeconds.count, 1u);
  EXPECT_EQ(statistics.computeSeconds.count, 1u);
  EXPECT_GT(statistics.computeSeconds.sum, 0.0);
  EXPECT_TRUE(statistics.lastInference.has_value());
  EXPECT_EQ(registry->infer(mlpRequest("other")).error().code, ErrorCode::kNotFound);
}

TEST_F(RegistryTest, SameNameAndVersionConflictsUnlessItIsTheSameFile) {
  startRegistry();
  LoadRequest first;
  first.name = "m";
  first.path = "mlp.onnx";
  std::vector<Result<ModelInfo>> results(4, makeError(ErrorCode::kInternal, "not run"));
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&, i] { results[i] = registry->load(first); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& result : results) {
    ASSERT_TRUE(result.ok()) << result.error().message;
    EXPECT_EQ(result->id, results[0]->id);
  }
  EXPECT_EQ(registry->list().size(), 1u);

  LoadRequest other = first;
  other.path = "cnn.onnx";
  Result<ModelInfo> conflict = registry->load(other);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);
  EXPECT_NE(conflict.error().message.find("already loaded"), std::string::npos);
  other.version = "2";
  ASSERT_TRUE(registry->load(other).ok());
  EXPECT_EQ(registry->find("m")->version, "2");                                // the newest version
  EXPECT_EQ(registry->unload("m").error().code, ErrorCode::kInvalidArgument);  // which one?
  EXPECT_TRUE(registry->unload("m", "1").ok());
}

TEST_F(RegistryTest, PlacementHonoursPinnedDevicesReplicasAndProviders) {
  startRegistry();
  LoadRequest replicated = simulatedModel("both");
  replicated.devices = {"sim-0", "sim-1"};
  ModelInfo model = loadOrDie(replicated);
  ASSERT_EQ(model.placements.size(), 2u);
  EXPECT_EQ(model.placements[0].deviceId, "sim-0");
  EXPECT_EQ(model.placements[1].deviceId, "sim-1");
  EXPECT_EQ(modelBytesHeld("sim-0"), kModelBytes);
  EXPECT_EQ(modelBytesHeld("sim-1"), kModelBytes);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(registry->infer(mlpRequest("both")).ok());

  LoadRequest cuda;
  cuda.path = "mlp.onnx";
  cuda.devices = {"cpu0"};
  cuda.provider = Provider::kCuda;
  Result<ModelInfo> refused = registry->load(cuda);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("cuda"), std::string::npos);

  LoadRequest unknownDevice;
  unknownDevice.path = "mlp.onnx";
  unknownDevice.devices = {"gpu-nope"};
  EXPECT_EQ(registry->load(unknownDevice).error().code, ErrorCode::kNotFound);

  LoadRequest tooMany;
  tooMany.path = "mlp.onnx";
  tooMany.replicas = 5;  // only cpu0 is chosen automatically
  EXPECT_EQ(registry->load(tooMany).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(registry->list().size(), 1u);
}

TEST_F(RegistryTest, EvictsTheLeastRecentlyUsedIdleModelWhenALoadDoesNotFit) {
  startRegistry();
  loadOrDie(simulatedModel("a"));
  loadOrDie(simulatedModel("b"));
  loadOrDie(simulatedModel("c"));
  ASSERT_TRUE(registry->infer(mlpRequest("a")).ok());  // LRU order now: b, c, a
  EXPECT_EQ(modelBytesHeld("sim-0"), 3 * kModelBytes);

  loadOrDie(simulatedModel("d"));
  EXPECT_TRUE(evicted("b"));
  EXPECT_FALSE(evicted("a"));
  EXPECT_FALSE(evicted("c"));
  loadOrDie(simulatedModel("e"));
  EXPECT_TRUE(evicted("c"));
  EXPECT_FALSE(evicted("a"));
  EXPECT_EQ(modelBytesHeld("sim-0"), 3 * kModelBytes);
  const std::vector<Event> evictions = events.ofType("model.evicted");
  ASSERT_EQ(evictions.size(), 2u);
  EXPECT_EQ(evictions[0].details["name"], "b");
  EXPECT_EQ(evictions[1].details["name"], "c");
  EXPECT_EQ(evictions[0].deviceId, "sim-0");
  EXPECT_EQ(evictions[0].details["chargedBytes"], kModelBytes);
  ModelInfo b = *registry->find("b");
  EXPECT_EQ(b.state, ModelState::kReady);  // still registered
  EXPECT_TRUE(b.placements.empty());
  EXPECT_EQ(b.evictions, 1u);
}

TEST_F(RegistryTest, PinnedModelsAreNeverEvictedAndARefusalCarriesTheNumbers) {
  startRegistry();
  LoadRequest pinned = simulatedModel("pinned", "sim-1");
  pinned.pinned = true;
  pinned.memoryBytes = 300 * kMiB;
  loadOrDie(pinned);
  Result<ModelInfo> refused = registry->load(simulatedModel("extra", "sim-1"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_EQ(refused.error().details["requestedBytes"], kModelBytes);
  EXPECT_EQ(refused.error().details["availableBytes"], 50 * kMiB);
  EXPECT_EQ(refused.error().details["budgetBytes"], kSimulatedBytes);
  EXPECT_NE(refused.error().message.find("sim-1"), std::string::npos);
  EXPECT_FALSE(evicted("pinned"));
  EXPECT_EQ(registry->find("extra").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(modelBytesHeld("sim-1"), 300 * kMiB);
  EXPECT_EQ(registry->reclaim("sim-1", kSimulatedBytes), 0u);
  EXPECT_FALSE(evicted("pinned"));
}

TEST_F(RegistryTest, ARawAllocationThatDoesNotFitEvictsAnIdleModel) {
  startRegistry();  // installs the reclaimer
  loadOrDie(simulatedModel("old"));
  loadOrDie(simulatedModel("new"));
  memory::AllocateRequest raw;
  raw.deviceId = "sim-0";
  raw.bytes = 200 * kMiB;  // 150 MiB available: one model must go
  Result<memory::AllocateResult> allocated = memoryService->allocate(raw);
  ASSERT_TRUE(allocated.ok()) << allocated.error().message;
  EXPECT_TRUE(evicted("old"));
  EXPECT_FALSE(evicted("new"));
  EXPECT_EQ(modelBytesHeld("sim-0"), kModelBytes);
  EXPECT_TRUE(memoryService->release(allocated->record.id).ok());
}

TEST_F(RegistryTest, AnEvictedModelIsReloadedOnceForSixteenConcurrentRequests) {
  startRegistry();
  loadOrDie(simulatedModel("m"));
  ASSERT_EQ(registry->reclaim("sim-0", 1), kModelBytes);
  ASSERT_TRUE(evicted("m"));
  EXPECT_EQ(modelBytesHeld("sim-0"), 0u);

  std::atomic<int> ready{0};
  std::atomic<int> succeeded{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < 16) std::this_thread::yield();
      Result<InferResult> result = registry->infer(mlpRequest("m", 2, static_cast<unsigned>(i)));
      EXPECT_TRUE(result.ok()) << result.error().message;
      if (result.ok()) ++succeeded;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(succeeded.load(), 16);
  ModelInfo model = *registry->find("m");
  EXPECT_FALSE(model.evicted);
  EXPECT_EQ(model.reloads, 1u);
  EXPECT_EQ(model.statistics.successCount, 16u);
  EXPECT_EQ(modelBytesHeld("sim-0"), kModelBytes);
  int reloadEvents = 0;
  for (const Event& event : events.ofType("model.loaded")) {
    if (event.details.value("reload", false)) ++reloadEvents;
  }
  EXPECT_EQ(reloadEvents, 1);
}

TEST_F(RegistryTest, WithoutAutoReloadAnEvictedModelIsUnavailableUntilLoadedAgain) {
  RegistryOptions registryOptions = options();
  registryOptions.autoReload = false;
  startRegistry(registryOptions);
  loadOrDie(simulatedModel("m"));
  ASSERT_EQ(registry->reclaim("sim-0", kModelBytes), kModelBytes);
  Result<InferResult> result = registry->infer(mlpRequest("m"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(result.error().message.find("evicted"), std::string::npos);
  // Loading the same file again brings it back under the same id.
  ModelInfo again = loadOrDie(simulatedModel("m"));
  EXPECT_FALSE(again.evicted);
  EXPECT_EQ(again.reloads, 1u);
  EXPECT_TRUE(registry->infer(mlpRequest("m")).ok());
}

TEST_F(RegistryTest, IdleModelsAreEvictedAfterTheirKeepAlive) {
  startRegistry();
  LoadRequest request = simulatedModel("idle");
  request.keepAlive = 1s;
  loadOrDie(request);
  LoadRequest forever = simulatedModel("forever");
  loadOrDie(forever);
  ASSERT_TRUE(eventually([&] { return evicted("idle"); }));
  EXPECT_FALSE(evicted("forever"));
  // Marked evicted first (no new request can use it), then its charge is returned.
  EXPECT_TRUE(eventually([&] { return modelBytesHeld("sim-0") == kModelBytes; }));
  EXPECT_TRUE(registry->infer(mlpRequest("idle")).ok());  // and back on demand
}

TEST_F(RegistryTest, UnloadWaitsForRequestsInFlightAndRefusesNewOnes) {
  startRegistry();
  LoadRequest request;
  request.path = "slow.onnx";
  loadOrDie(request);
  Result<InferResult> slow = makeError(ErrorCode::kInternal, "not run");
  std::thread running([&] {
    InferRequest infer;
    infer.model = "slow";
    infer.inputs.push_back(floatTensor("x", {2048, 256}, randomFloats(2048 * 256, 3)));
    slow = registry->infer(std::move(infer));
  });
  ASSERT_TRUE(eventually([&] { return registry->find("slow")->inFlight == 1; }));
  Result<UnloadResult> unloaded = makeError(ErrorCode::kInternal, "not run");
  std::thread unloading([&] { unloaded = registry->unload("slow"); });
  // While it drains, the model is "unloading" and new requests are turned away.
  bool sawUnloading = eventually([&] {
    Result<ModelInfo> found = registry->find("slow");
    return !found.ok() || found->state == ModelState::kUnloading;
  });
  Result<ModelInfo> during = registry->find("slow");
  if (sawUnloading && during.ok()) {
    InferRequest refused;
    refused.model = "slow";
    refused.inputs.push_back(floatTensor("x", {1, 256}, randomFloats(256, 4)));
    Result<InferResult> turnedAway = registry->infer(refused);
    ASSERT_FALSE(turnedAway.ok());
    EXPECT_EQ(turnedAway.error().code, ErrorCode::kUnavailable);
  }
  running.join();
  unloading.join();
  ASSERT_TRUE(unloaded.ok()) << unloaded.error().message;
  EXPECT_TRUE(slow.ok()) << slow.error().message;
  EXPECT_EQ(unloaded->model.statistics.successCount, 1u);
  EXPECT_EQ(modelBytesHeld("cpu0"), 0u);
}

TEST_F(RegistryTest, ARequestForAModelStillLoadingIsUnavailable) {
  startRegistry();
  LoadRequest request;
  request.path = "slow.onnx";
  request.runner.instances = 4;  // a longer load: four sessions, four warm-up runs
  bool observed = false;
  for (int attempt = 0; attempt < 5 && !observed; ++attempt) {
    std::thread loading([&] { loadOrDie(request); });
    observed = eventually([&] {
      Result<ModelInfo> found = registry->find("slow");
      return found.ok();
    });
    Result<ModelInfo> found = registry->find("slow");
    if (observed && found.ok() && found->state == ModelState::kLoading) {
      InferRequest infer;
      infer.model = "slow";
      infer.inputs.push_back(floatTensor("x", {1, 256}, randomFloats(256, 4)));
      Result<InferResult> result = registry->infer(infer);
      // The load may finish between find() and infer(); only a refusal is checked.
      if (!result.ok()) {
        EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
        EXPECT_NE(result.error().message.find("is loading"), std::string::npos);
        EXPECT_EQ(result.error().details["retryAfterSeconds"], 1);
      } else {
        observed = false;
      }
      // Unloading a model that is still loading is a conflict, not a race.
      Result<UnloadResult> early = registry->unload("slow");
      if (!early.ok()) {
        EXPECT_EQ(early.error().code, ErrorCode::kConflict);
      }
    } else {
      observed = false;
    }
    loading.join();
    (void)registry->unload("slow");
  }
  EXPECT_TRUE(observed) << "never saw the model in state loading";
}

TEST_F(RegistryTest, PersistedModelsComeBackAfterARestart) {
  startRegistry();
  LoadRequest kept;
  kept.name = "kept";
  kept.path = "mlp.onnx";
  kept.persist = true;
  kept.runner.instances = 2;
  kept.keepAlive = 3600s;
  const ModelInfo original = loadOrDie(kept);
  LoadRequest passing;
  passing.name = "passing";
  passing.path = "cnn.onnx";
  loadOrDie(passing);

  startRegistry();  // the old registry stops: everything unloaded, the ledger empty
  std::vector<ModelInfo> models = registry->list();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0].id, original.id);
  EXPECT_EQ(models[0].name, "kept");
  EXPECT_EQ(models[0].state, ModelState::kReady);
  EXPECT_EQ(models[0].runner.instances, 2);
  EXPECT_EQ(models[0].keepAlive, 3600s);
  EXPECT_TRUE(models[0].persist);
  EXPECT_TRUE(registry->infer(mlpRequest("kept")).ok());

  registry.reset();
  fs::remove(dir / "models" / "mlp.onnx");
  startRegistry();
  ModelInfo failed = *registry->find("kept");
  EXPECT_EQ(failed.state, ModelState::kFailed);
  EXPECT_NE(failed.stateReason.find("does not exist"), std::string::npos) << failed.stateReason;
  EXPECT_EQ(registry->infer(mlpRequest("kept")).error().code, ErrorCode::kUnavailable);
  ASSERT_TRUE(registry->unload("kept").ok());
  startRegistry();
  EXPECT_TRUE(registry->list().empty());
}

TEST_F(RegistryTest, UploadsAreStoredByDigestAndLimited) {
  RegistryOptions registryOptions = options();
  registryOptions.maxUploadBytes = 1 * kMiB;
  startRegistry(registryOptions);
  std::ifstream in(dir / "models" / "mlp.onnx", std::ios::binary);
  const std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LoadRequest request;
  request.name = "uploaded";
  // As the HTTP server leaves a streamed body: a file beside the upload directory.
  const auto received = [&](const std::string& content) {
    fs::create_directories(dir / "data");
    const fs::path file = dir / "data" / fmt::format("received-{}.part", content.size());
    std::ofstream(file, std::ios::binary) << content;
    return file;
  };
  const fs::path first = received(body);
  Result<ModelInfo> loaded = registry->loadUploadFile(first, request);
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_FALSE(fs::exists(first));
  EXPECT_EQ(loaded->sha256, sha256Hex(body));
  EXPECT_EQ(fs::path(loaded->path).parent_path(), fs::canonical(dir / "data" / "uploads"));
  EXPECT_TRUE(registry->infer(mlpRequest("uploaded")).ok());
  ASSERT_TRUE(registry->unload("uploaded").ok());
  EXPECT_FALSE(fs::exists(loaded->path));

  const fs::path large = received(std::string(2 * kMiB, 'x'));
  Result<ModelInfo> tooLarge = registry->loadUploadFile(large, request);
  EXPECT_EQ(tooLarge.error().code, ErrorCode::kPayloadTooLarge);
  EXPECT_FALSE(fs::exists(large));
  Result<ModelInfo> garbage = registry->loadUploadFile(received("not an onnx model"), request);
  EXPECT_EQ(garbage.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(fs::is_empty(dir / "data" / "uploads"));
}

TEST_F(RegistryTest, MetricsCarryEveryFamily) {
  startRegistry();
  LoadRequest request;
  request.name = "m\"x";
  request.path = "mlp.onnx";
  EXPECT_EQ(registry->load(request).error().code, ErrorCode::kInvalidArgument);
  request.name = "metrics";
  loadOrDie(request);
  ASSERT_TRUE(registry->infer(mlpRequest("metrics")).ok());
  ASSERT_TRUE(registry->infer(mlpRequest("metrics")).ok());
  InferRequest bad = mlpRequest("metrics");
  bad.inputs.clear();
  ASSERT_FALSE(registry->infer(bad).ok());
  std::string text;
  registry->writeMetrics(text);
  for (const char* expected : {
           "# TYPE deviceops_inference_requests_total counter\n",
           "deviceops_inference_requests_total{model=\"metrics\",version=\"1\",outcome=\"success\"}"
           " 2\n",
           "deviceops_inference_requests_total{model=\"metrics\",version=\"1\",outcome=\"failure\"}"
           " 1\n",
           "# TYPE deviceops_inference_queue_seconds histogram\n",
           "# TYPE deviceops_inference_compute_seconds histogram\n",
           "# TYPE deviceops_inference_request_seconds histogram\n",
           "deviceops_inference_request_seconds_bucket{model=\"metrics\",version=\"1\",le=\"+Inf\"}"
           " 2\n",
           "deviceops_inference_request_seconds_count{model=\"metrics\",version=\"1\"} 2\n",
           "deviceops_inference_compute_seconds_bucket{model=\"metrics\",version=\"1\",le=\"0."
           "0001\"} ",
           "# TYPE deviceops_inference_batch_size histogram\n",
           "deviceops_inference_batch_size_bucket{model=\"metrics\",version=\"1\",le=\"1\"} 2\n",
           "deviceops_inference_batch_size_sum{model=\"metrics\",version=\"1\"} 2\n",
           "# TYPE deviceops_model_memory_bytes gauge\n",
           "deviceops_model_memory_bytes{model=\"metrics\",version=\"1\",device=\"cpu0\"} ",
           "# TYPE deviceops_model_loaded gauge\n",
           "deviceops_model_loaded{model=\"metrics\",version=\"1\",state=\"ready\"} 1\n",
       }) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
  EXPECT_EQ(escapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(RegistryHistogramTest, ObservesIntoTheFirstBucketWhoseBoundIsNotBelow) {
  Histogram histogram = makeLatencyHistogram();
  histogram.observe(0.0001);  // exactly a bound: that bucket (le)
  histogram.observe(0.003);
  histogram.observe(50);  // past the last bound: +Inf
  EXPECT_EQ(histogram.count, 3u);
  EXPECT_EQ(histogram.counts.front(), 1u);
  EXPECT_EQ(histogram.counts.back(), 1u);
  EXPECT_EQ(histogram.counts[5], 1u);  // 0.0025 < 0.003 <= 0.005
  EXPECT_DOUBLE_EQ(histogram.sum, 50.0031);
}

}  // namespace
}  // namespace deviceops::inference
