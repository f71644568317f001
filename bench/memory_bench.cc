// Memory (issue 3): allocate+free of the same size, repeated, side by side:
//   Raw*      the backend's own call (mmap+MAP_POPULATE/munmap; vkAllocateMemory/vkFreeMemory
//             through the allocator, which adds only a counter)
//   Pool*     MemoryPool over the same allocator (strategy "pool": served from its cache)
//   NoPool*   MemoryPool with strategy "none" (what memory.poolStrategy = "none" costs)
//   Ledger*   MemoryService::allocate/release: admission, pool, and the SQLite ledger writes
// Run: build/bench/memory_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>
#include <sys/mman.h>

#include <filesystem>

#include "devices/allocator.h"
#include "devices/cpu/cpu_backend.h"
#include "devices/inventory.h"
#include "devices/testing/allocators.h"
#include "devices/vulkan/vulkan_backend.h"
#include "memory/memory_service.h"
#include "memory/pool.h"

namespace {

using namespace deviceops;

void RawMmap(benchmark::State& state) {
  const auto bytes = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* block = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    benchmark::DoNotOptimize(block);
    munmap(block, bytes);
  }
  state.SetItemsProcessed(state.iterations());
}

void poolLoop(benchmark::State& state, devices::DeviceAllocator& allocator,
              memory::PoolStrategy strategy) {
  memory::MemoryPool pool(allocator, strategy, 1ull << 32);
  const auto bytes = static_cast<std::uint64_t>(state.range(0));
  for (auto _ : state) {
    auto block = pool.acquire(bytes, {});
    if (!block.ok()) {
      state.SkipWithError(block.error().message.c_str());
      return;
    }
    pool.giveBack(*block);
  }
  state.SetItemsProcessed(state.iterations());
}

std::unique_ptr<devices::DeviceAllocator>& cpuAllocator() {
  static auto allocator = std::move(devices::makeCpuAllocator().value());
  return allocator;
}

void PoolCpu(benchmark::State& state) {
  poolLoop(state, *cpuAllocator(), memory::PoolStrategy::kPool);
}
void NoPoolCpu(benchmark::State& state) {
  poolLoop(state, *cpuAllocator(), memory::PoolStrategy::kNone);
}

std::string lavapipeUuid() {
  auto backend = devices::makeVulkanBackend();
  if (!backend->open().ok()) return "";
  auto records = backend->poll();
  if (!records.ok()) return "";
  for (const auto& record : *records) {
    if (record.vendor == "Mesa") return record.uuid;
  }
  return records->empty() ? "" : records->front().uuid;
}

devices::DeviceAllocator* vulkanAllocator() {
  static std::unique_ptr<devices::DeviceAllocator> allocator = [] {
    std::unique_ptr<devices::DeviceAllocator> result;
    const std::string uuid = lavapipeUuid();
    if (uuid.empty()) return result;
    auto made = devices::makeVulkanAllocator(uuid);
    if (made.ok()) result = std::move(made.value());
    return result;
  }();
  return allocator.get();
}

void RawVulkan(benchmark::State& state) {
  devices::DeviceAllocator* allocator = vulkanAllocator();
  if (allocator == nullptr) return state.SkipWithError("no Vulkan device");
  const auto bytes = static_cast<std::uint64_t>(state.range(0));
  for (auto _ : state) {
    auto block = allocator->allocate(bytes, {});
    if (!block.ok()) return state.SkipWithError(block.error().message.c_str());
    allocator->release(*block);
  }
  state.SetItemsProcessed(state.iterations());
}

void PoolVulkan(benchmark::State& state) {
  devices::DeviceAllocator* allocator = vulkanAllocator();
  if (allocator == nullptr) return state.SkipWithError("no Vulkan device");
  poolLoop(state, *allocator, memory::PoolStrategy::kPool);
}

// The whole ledger path on the cpu device, with the real SQLite store in a temp directory.
void LedgerCpu(benchmark::State& state) {
  std::vector<std::unique_ptr<devices::Backend>> backends;
  backends.push_back(devices::makeCpuBackend());
  devices::Inventory inventory(std::move(backends), {});
  inventory.start();
  const auto directory = std::filesystem::temp_directory_path() / "deviceops-memory-bench";
  std::filesystem::remove_all(directory);
  auto store = memory::openSqliteLedgerStore(directory);
  if (!store.ok()) return state.SkipWithError(store.error().message.c_str());
  memory::MemoryService service(inventory, std::move(store.value()), {},
                                devices::testing::makeCpuOrSimulatedAllocator);
  (void)service.start();
  memory::AllocateRequest request;
  request.deviceId = "cpu0";
  request.bytes = static_cast<std::uint64_t>(state.range(0));
  for (auto _ : state) {
    auto allocated = service.allocate(request);
    if (!allocated.ok()) return state.SkipWithError(allocated.error().message.c_str());
    (void)service.release(allocated->record.id);
  }
  state.SetItemsProcessed(state.iterations());
  service.stop();
  std::filesystem::remove_all(directory);
}

constexpr std::int64_t kSizes[] = {64 << 10, 1 << 20, 64 << 20};

void sizes(benchmark::internal::Benchmark* benchmark) {
  for (std::int64_t size : kSizes) benchmark->Arg(size);
  benchmark->Unit(benchmark::kMicrosecond);
}

BENCHMARK(RawMmap)->Apply(sizes);
BENCHMARK(NoPoolCpu)->Apply(sizes);
BENCHMARK(PoolCpu)->Apply(sizes);
BENCHMARK(LedgerCpu)->Apply(sizes);
BENCHMARK(RawVulkan)->Apply(sizes);
BENCHMARK(PoolVulkan)->Apply(sizes);

}  // namespace

BENCHMARK_MAIN();
