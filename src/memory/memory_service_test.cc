#include "memory/memory_service.h"

#include <gtest/gtest.h>

#include <random>

#include "devices/simulated/simulated_backend.h"
#include "memory/testing/doubles.h"

namespace deviceops::memory {
namespace {

using namespace std::chrono_literals;
using testing::CountingAllocatorDouble;
using testing::InMemoryLedgerStoreDouble;

constexpr std::uint64_t kGiB = 1ull << 30;

class MemoryServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    devices::SimulatedBackendOptions simulated;
    simulated.devices.resize(2);  // sim-0, sim-1: 16 GiB each
    std::vector<std::unique_ptr<devices::Backend>> backends;
    backends.push_back(devices::makeSimulatedBackend(simulated));
    inventory = std::make_unique<devices::Inventory>(std::move(backends),
                                                     devices::InventoryOptions{});
    inventory->start();
    auto storeDouble = std::make_unique<InMemoryLedgerStoreDouble>();
    store = storeDouble.get();
    MemoryOptions options;
    options.reaperInterval = 20ms;
    options.reserveBytes = 1 * kGiB;
    options.budgetFraction = 0.75;  // budget = 16 * 0.75 - 1 = 11 GiB
    service = std::make_unique<MemoryService>(
        *inventory, std::move(storeDouble), options,
        [this](const devices::DeviceView&) -> Result<std::unique_ptr<DeviceAllocator>> {
          auto allocator = std::make_unique<CountingAllocatorDouble>(14 * kGiB);
          allocators.push_back(allocator.get());
          return std::unique_ptr<DeviceAllocator>(std::move(allocator));
        });
    ASSERT_TRUE(service->start().ok());
  }

  AllocateRequest request(std::uint64_t bytes, std::string device = "sim-0") {
    AllocateRequest r;
    r.deviceId = std::move(device);
    r.bytes = bytes;
    return r;
  }

  std::unique_ptr<devices::Inventory> inventory;
  InMemoryLedgerStoreDouble* store = nullptr;
  std::vector<CountingAllocatorDouble*> allocators;
  std::unique_ptr<MemoryService> service;
};

TEST_F(MemoryServiceTest, AllocateChargesTheLedgerAndFreeReturnsIt) {
  auto allocated = service->allocate(request(3 * kGiB));
  ASSERT_TRUE(allocated.ok()) << allocated.error().message;
  EXPECT_EQ(allocated->record.state, AllocationState::kHeld);
  auto status = service->status("sim-0");
  EXPECT_EQ(status->heldBytes, 3 * kGiB);
  EXPECT_EQ(status->heldBytesByKind.at("raw"), 3 * kGiB);
  EXPECT_EQ(status->budgetBytes, 11 * kGiB);
  EXPECT_EQ(status->availableBytes, 8 * kGiB);
  EXPECT_EQ(status->allocationCount, 1u);

  auto released = service->release(allocated->record.id);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->releaseReason, "freed");
  EXPECT_EQ(service->status("sim-0")->heldBytes, 0u);
  // Double free: 404, and nothing reaches the driver.
  auto again = service->release(allocated->record.id);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(allocators[0]->invalidReleases.load(), 0);
}

TEST_F(MemoryServiceTest, AdmissionRefusesOverBudgetWithTheNumbers) {
  ASSERT_TRUE(service->allocate(request(10 * kGiB)).ok());
  auto refused = service->allocate(request(2 * kGiB));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_EQ(refused.error().details["requestedBytes"], 2 * kGiB);
  EXPECT_EQ(refused.error().details["availableBytes"], 1 * kGiB);
  EXPECT_EQ(refused.error().details["budgetBytes"], 11 * kGiB);
  EXPECT_EQ(refused.error().details["heldBytes"], 10 * kGiB);
  EXPECT_EQ(service->status("sim-0")->heldBytes, 10 * kGiB);  // nothing changed
  // The other device has its own budget.
  EXPECT_TRUE(service->allocate(request(2 * kGiB, "sim-1")).ok());
}

TEST_F(MemoryServiceTest, BadRequestsChangeNothing) {
  struct Case {
    AllocateRequest request;
    ErrorCode code;
  };
  AllocateRequest ttlZero = request(1024);
  ttlZero.ttl = 0s;
  AllocateRequest pinnedGpu = request(1024);
  pinnedGpu.pinned = true;
  const Case cases[] = {
      {request(0), ErrorCode::kInvalidArgument},
      {request((1ull << 53) + 1), ErrorCode::kInvalidArgument},
      {request(17 * kGiB), ErrorCode::kInvalidArgument},  // over the device total
      {request(1024, "gpu-nope"), ErrorCode::kNotFound},
      {ttlZero, ErrorCode::kInvalidArgument},
      {pinnedGpu, ErrorCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto result = service->allocate(c.request);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, c.code) << result.error().message;
  }
  EXPECT_EQ(service->status("sim-0")->heldBytes, 0u);
  EXPECT_TRUE(service->list({})->empty());
}

TEST_F(MemoryServiceTest, StoreFailureUndoesTheAllocation) {
  store->failInserts = true;
  auto result = service->allocate(request(kGiB));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  auto status = service->status("sim-0");
  EXPECT_EQ(status->heldBytes, 0u);
  EXPECT_EQ(status->pool.inUseBytes, 0u);
}

TEST_F(MemoryServiceTest, LeasesExpireWithinOneReaperPeriod) {
  AllocateRequest leased = request(kGiB);
  leased.ttl = 1s;
  auto allocated = service->allocate(leased);
  ASSERT_TRUE(allocated.ok());
  std::this_thread::sleep_for(1100ms);
  for (int i = 0; i < 50 && service->status("sim-0")->heldBytes > 0; ++i) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(service->status("sim-0")->heldBytes, 0u);
  EXPECT_EQ(service->find(allocated->record.id)->releaseReason, "expired");
}

TEST_F(MemoryServiceTest, ConcurrentRandomAllocateFreeLeavesLedgerPoolAndBackendInAgreement) {
  std::atomic<int> operations{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t));
      std::vector<std::string> mine;
      for (int i = 0; i < 300; ++i) {
        if (!mine.empty() && random() % 2 == 0) {
          const std::size_t pick = random() % mine.size();
          EXPECT_TRUE(service->release(mine[pick]).ok());
          mine.erase(mine.begin() + static_cast<long>(pick));
        } else {
          auto result = service->allocate(request((random() % 64 + 1) << 20,
                                                  random() % 2 ? "sim-0" : "sim-1"));
          if (result.ok()) mine.push_back(result->record.id);
        }
        ++operations;
      }
      for (const std::string& id : mine) EXPECT_TRUE(service->release(id).ok());
    });
  }
  for (auto& thread : threads) thread.join();
  for (const char* device : {"sim-0", "sim-1"}) {
    auto status = service->status(device);
    EXPECT_EQ(status->heldBytes, 0u);
    EXPECT_EQ(status->pool.requestedBytes, 0u);
    EXPECT_EQ(status->pool.reservedBytes, status->backendLiveBytes);
    EXPECT_GT(service->optimize(device)->releasedBytes + 1, 0u);
    EXPECT_EQ(service->status(device)->backendLiveBytes, 0u);
  }
  for (auto* allocator : allocators) EXPECT_EQ(allocator->invalidReleases.load(), 0);
}

TEST_F(MemoryServiceTest, StopReleasesEverythingAndRestartReconciles) {
  ASSERT_TRUE(service->allocate(request(kGiB)).ok());
  ASSERT_TRUE(service->allocate(request(kGiB, "sim-1")).ok());
  service->stop();
  for (auto* allocator : allocators) EXPECT_EQ(allocator->liveBytes(), 0u);
  AllocationFilter held;
  held.state = AllocationState::kHeld;
  EXPECT_TRUE(store->list(held)->empty());
  auto all = store->list(AllocationFilter{});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  for (const auto& record : *all) EXPECT_EQ(record.releaseReason, "shutdown");
}

}  // namespace
}  // namespace deviceops::memory
