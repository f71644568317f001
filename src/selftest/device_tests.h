// The tests a self-test run executes on one device, each through the code paths clients use:
// the memory ledger and the device's allocator (memory patterns, bandwidth, allocation latency),
// the model registry (models built in-process, loaded, run and compared with a plain C++
// reference), the telemetry store (a write and a read back), the inventory (health, readings
// under a sustained load). Each returns TestResults; an error of the device (it vanished, the
// driver failed) is a "fail" result, never an exception or a lost run.
//
// Thread-safety: the functions may run concurrently for different devices; TestContext is
// read-only apart from what `progress` does.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "devices/inventory.h"
#include "inference/registry.h"
#include "memory/memory_service.h"
#include "selftest/memory_window.h"
#include "selftest/run.h"
#include "telemetry/telemetry_service.h"

namespace deviceops::selftest {

struct TestContext {
  TestContext(const devices::Inventory& inventoryIn, memory::MemoryService& memoryIn)
      : inventory(inventoryIn), memory(memoryIn) {}

  const devices::Inventory& inventory;
  memory::MemoryService& memory;
  inference::ModelRegistry* registry = nullptr;      // null: inference disabled
  telemetry::TelemetryService* telemetry = nullptr;  // null: telemetry disabled
  std::filesystem::path modelDirectory;  // where built-in models are written (a managed root)
  std::string runId;
  std::string ledgerOwner;  // "selftest:<runId>": what /api/memory shows as the owner
  Stop stop;
  // Fraction (0..1) of the current test done, and its name.
  std::function<void(double, const std::string&)> progress;
};

// device.health: present, not lost, the health rules' verdict (degraded: warn; critical or lost:
// fail), with the reasons.
TestResult checkDeviceHealth(const TestContext& context, const std::string& deviceId);

// memory.<pattern> for each pattern test, over one ledger allocation of `bytes` (cut to what
// the allocator can transfer and to half the device's available budget), sharing `budget`
// between the tests. `passes` 0: each test's default. An allocation that cannot be made is one
// "memory.allocate" fail result.
std::vector<TestResult> memoryPatterns(const TestContext& context, const std::string& deviceId,
                                       std::uint64_t bytes, std::chrono::milliseconds budget,
                                       int passes, bool allPatterns);

// bandwidth.<direction> figures ("bandwidth", B/s) over one allocation of `bytes`.
std::vector<TestResult> bandwidthTests(const TestContext& context, const std::string& deviceId,
                                       const std::vector<std::string>& directions,
                                       std::uint64_t bytes, std::chrono::milliseconds budgetEach);

// inference.compare: the built-in MLP loaded on the device, run on a batch, compared with the
// plain C++ reference (relative 1e-4). Skip (with the registry's reason) where no ONNX Runtime
// provider runs on the device.
TestResult inferenceCompare(const TestContext& context, const std::string& deviceId);

// matmul: FLOP/s of an n x n MatMul through the registry for `duration`.
TestResult matmulThroughput(const TestContext& context, const std::string& deviceId,
                            std::chrono::milliseconds duration);

// inference: requests/s and latency p50/p99 of the built-in MLP (batch 1, 4 client threads).
TestResult inferenceThroughput(const TestContext& context, const std::string& deviceId,
                               std::chrono::milliseconds duration);

// allocation: ledger allocate + release of 1 MiB, repeated for `duration`: p50 and p99 (s).
TestResult allocationLatency(const TestContext& context, const std::string& deviceId,
                             std::chrono::milliseconds duration);

// telemetry.roundTrip: an event written to the telemetry store for the device and read back.
TestResult telemetryRoundTrip(const TestContext& context, const std::string& deviceId);

// load.sustained: `duration` of compute (matmul through the registry where the device runs
// ONNX Runtime, else device-to-device copies) while the device's readings are watched:
// throttling or reaching the slowdown margin warns, a health failure fails; figures: peak
// temperature, minimum/maximum clock, work rate at the start and at the end.
TestResult sustainedLoad(const TestContext& context, const std::string& deviceId,
                         std::chrono::milliseconds duration);

}  // namespace deviceops::selftest
