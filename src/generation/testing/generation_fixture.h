// The fixture of the generation component's tests: a real ModelRegistry and MemoryService on the
// CPU, a SuiteManager and a GenerationService over them, with the tiny SDXL test suites of
// tests/models/make_sdxl_models.py under DEVICEOPS_TEST_MODELS_DIR. Header-only (test code).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/testing/temp_dir.h"
#include "devices/cpu/cpu_backend.h"
#include "devices/testing/allocators.h"
#include "generation/service.h"
#include "generation/suite_manager.h"
#include "generation/tensors.h"
#include "memory/ledger_store.h"
#include "tensor/npy.h"

namespace deviceops::generation::testing_support {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline const fs::path kModels = DEVICEOPS_TEST_MODELS_DIR;

class RecordingEvents final : public EventSink {
 public:
  void publish(Event event) override {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  std::vector<Event> ofType(const std::string& type) {
    std::lock_guard lock(mutex_);
    std::vector<Event> out;
    for (const Event& event : events_) {
      if (event.type == type) out.push_back(event);
    }
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<Event> events_;
};

inline std::vector<float> readNpyFloats(const fs::path& file) {
  Result<inference::Tensor> tensor = inference::readNpyFile(file);
  EXPECT_TRUE(tensor.ok()) << file;
  if (!tensor.ok()) return {};
  Result<std::vector<float>> floats = readFloats(*tensor);
  return floats.ok() ? *floats : std::vector<float>{};
}

// Copies `from` to `to`, appending an unknown protobuf field (number 99, varint 1) to every
// model.onnx: ONNX Runtime ignores it, but the bytes (and so the sha256) differ from the
// original's, so the copy shares no component with it.
inline void copyDistinct(const fs::path& from, const fs::path& to) {
  fs::copy(from, to, fs::copy_options::recursive);
  for (const auto& entry : fs::recursive_directory_iterator(to)) {
    if (entry.path().filename() != "model.onnx") continue;
    std::ofstream out(entry.path(), std::ios::binary | std::ios::app);
    out.write("\x98\x06\x01", 3);
  }
}

class GenerationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kModels / "sdxl/base/unet/model.onnx")) << "test models missing";
    fs::create_directories(dir.path("roots"));
    std::vector<std::unique_ptr<devices::Backend>> backends;
    backends.push_back(devices::makeCpuBackend());
    inventory =
        std::make_unique<devices::Inventory>(std::move(backends), devices::InventoryOptions{});
    inventory->start();
    Result<std::unique_ptr<memory::LedgerStore>> store =
        memory::openSqliteLedgerStore(dir.path("data"));
    ASSERT_TRUE(store.ok()) << store.error().message;
    memory::MemoryOptions memoryOptions = this->memoryOptions();
    memoryService =
        std::make_unique<memory::MemoryService>(*inventory, std::move(store.value()), memoryOptions,
                                                devices::testing::makeCpuOrSimulatedAllocator);
    ASSERT_TRUE(memoryService->start().ok());
    inference::RegistryOptions registryOptions;
    registryOptions.modelRoots = {kModels, dir.path("roots")};
    registryOptions.uploadDirectory = dir.path("data") / "uploads";
    registryOptions.managedRoots = {dir.path("data") / "vaes"};
    registryOptions.databaseFile = dir.path("data") / "registry.db";
    registry = std::make_unique<inference::ModelRegistry>(*inventory, *memoryService,
                                                          registryOptions, events);
    ASSERT_TRUE(registry->start().ok());
    startSuites(2);
  }

  void TearDown() override {
    service.reset();
    suites.reset();
    if (registry) registry->stop();
    registry.reset();
    if (memoryService) memoryService->stop();
    if (inventory) inventory->stop();
  }

  virtual memory::MemoryOptions memoryOptions() const { return {}; }

  void startSuites(int maxLoaded) {
    service.reset();
    suites.reset();
    SuiteManagerOptions options;
    options.modelRoots = {kModels, dir.path("roots")};
    options.databaseFile = dir.path("data") / "suites.db";
    options.maxLoaded = maxLoaded;
    options.vaeDirectory = dir.path("data") / "vaes";
    suites = std::make_unique<SuiteManager>(*registry, options, events);
    ASSERT_TRUE(suites->start().ok());
    GenerationOptions generationOptions;
    generationOptions.directory = dir.path("data") / "jobs";
    generationOptions.largestBudget = [this] {
      Result<memory::DeviceMemoryStatus> status = memoryService->status("cpu0");
      return status.ok() ? status->budgetBytes : 0;
    };
    service = std::make_unique<GenerationService>(*suites, *registry, generationOptions, events);
    ASSERT_TRUE(service->start().ok());
  }

  SuiteInfo importOrDie(const std::string& name, const std::string& base,
                        const std::string& refiner = "") {
    ImportRequest request;
    request.name = name;
    request.path = base;
    if (!refiner.empty()) request.refinerPath = refiner;
    Result<SuiteInfo> suite = suites->import(request);
    EXPECT_TRUE(suite.ok()) << suite.error().message;
    return suite.ok() ? *suite : SuiteInfo{};
  }

  GenerationJob waitFor(const std::string& id) {
    const auto giveUp = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < giveUp) {
      Result<GenerationJob> job = service->get(id);
      if (job.ok() && job->state != JobState::kQueued && job->state != JobState::kRunning) {
        return *job;
      }
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "job " << id << " did not finish";
    return {};
  }

  GenerationJob generate(GenerationRequest request) {
    Result<GenerationJob> job = service->submit(request);
    EXPECT_TRUE(job.ok()) << job.error().message;
    if (!job.ok()) return {};
    GenerationJob done = waitFor(job->id);
    EXPECT_EQ(done.state, JobState::kSucceeded)
        << (done.error ? done.error->message : std::string("no error"));
    return done;
  }

  static GenerationRequest small(const std::string& suite) {
    GenerationRequest request;
    request.suite = suite;
    request.prompt = "a photo of a cat";
    request.width = 64;
    request.height = 64;
    request.steps = 20;
    request.seed = 1;
    return request;
  }

  std::size_t heldModels() const {
    std::size_t held = 0;
    for (const inference::ModelInfo& model : registry->list()) held += model.holds;
    return held;
  }

  testing::TempDir dir{"deviceops-generation-test"};
  RecordingEvents events;
  std::unique_ptr<devices::Inventory> inventory;
  std::unique_ptr<memory::MemoryService> memoryService;
  std::unique_ptr<inference::ModelRegistry> registry;
  std::unique_ptr<SuiteManager> suites;
  std::unique_ptr<GenerationService> service;
};

}  // namespace deviceops::generation::testing_support
