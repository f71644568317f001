#include "memory/memory_service.h"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <random>

#include "devices/simulated/simulated_backend.h"
#include "memory/testing/doubles.h"

namespace deviceops::memory {
namespace {

using namespace std::chrono_literals;
using testing::CountingAllocatorDouble;
using testing::DriverGateDouble;
using testing::GatedAllocatorDouble;
using testing::InMemoryLedgerStoreDouble;
using Steady = std::chrono::steady_clock;

// Keeps every published event (a real, if trivial, EventSink).
class RecordingEventSink final : public EventSink {
 public:
  void publish(Event event) override {
    std::lock_guard lock(mutex);
    events.push_back(std::move(event));
  }
  std::vector<Event> snapshot() {
    std::lock_guard lock(mutex);
    return events;
  }
  std::mutex mutex;
  std::vector<Event> events;
};

constexpr std::uint64_t kGiB = 1ull << 30;

class MemoryServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    devices::SimulatedBackendOptions simulated;
    simulated.devices.resize(2);  // sim-0, sim-1: 16 GiB each
    std::vector<std::unique_ptr<devices::Backend>> backends;
    backends.push_back(devices::makeSimulatedBackend(simulated));
    inventory =
        std::make_unique<devices::Inventory>(std::move(backends), devices::InventoryOptions{});
    inventory->start();
    auto storeDouble = std::make_unique<InMemoryLedgerStoreDouble>();
    store = storeDouble.get();
    MemoryOptions options;
    options.reaperInterval = 20ms;
    options.reserveBytes = 1 * kGiB;
    options.budgetFraction = 0.75;  // budget = 16 * 0.75 - 1 = 11 GiB
    service = std::make_unique<MemoryService>(
        *inventory, std::move(storeDouble), options,
        [this](const devices::DeviceView&) -> Result<std::unique_ptr<devices::DeviceAllocator>> {
          auto allocator = std::make_unique<CountingAllocatorDouble>(14 * kGiB);
          std::lock_guard lock(allocatorsMutex);  // devices open concurrently, from any thread
          allocators.push_back(allocator.get());
          return std::unique_ptr<devices::DeviceAllocator>(std::move(allocator));
        });
    ASSERT_TRUE(service->start().ok());
  }

  AllocateRequest request(std::uint64_t bytes, std::string device = "sim-0") {
    AllocateRequest r;
    r.deviceId = std::move(device);
    r.bytes = bytes;
    return r;
  }

  // A second service over the same inventory (same budgets as `service`) with its own factory.
  std::unique_ptr<MemoryService> serviceWith(AllocatorFactory factory) {
    MemoryOptions options;
    options.reserveBytes = 1 * kGiB;
    options.budgetFraction = 0.75;
    auto made = std::make_unique<MemoryService>(
        *inventory, std::make_unique<InMemoryLedgerStoreDouble>(), options, std::move(factory));
    EXPECT_TRUE(made->start().ok());
    return made;
  }

  std::unique_ptr<devices::Inventory> inventory;
  InMemoryLedgerStoreDouble* store = nullptr;
  std::mutex allocatorsMutex;  // guards allocators while the service opens devices
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
          auto result = service->allocate(
              request((random() % 64 + 1) << 20, random() % 2 ? "sim-0" : "sim-1"));
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

TEST_F(MemoryServiceTest, AccountOnlyChargesTheBudgetButTakesNoBlock) {
  AllocateRequest charge = request(4 * kGiB);
  charge.accountOnly = true;
  charge.kind = AllocationKind::kModel;
  auto charged = service->allocate(charge);
  ASSERT_TRUE(charged.ok()) << charged.error().message;
  EXPECT_EQ(charged->blockBytes, 0u);
  auto status = service->status("sim-0");
  EXPECT_EQ(status->heldBytes, 4 * kGiB);
  EXPECT_EQ(status->heldBytesByKind.at("model"), 4 * kGiB);
  EXPECT_EQ(status->availableBytes, 7 * kGiB);
  EXPECT_EQ(status->backendLiveBytes, 0u);
  EXPECT_EQ(status->pool.inUseBytes, 0u);
  // Over the budget it is still refused, with the numbers.
  AllocateRequest tooMuch = charge;
  tooMuch.bytes = 8 * kGiB;
  auto refused = service->allocate(tooMuch);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_EQ(refused.error().details["availableBytes"], 7 * kGiB);
  // verify needs a block.
  AllocateRequest verify = charge;
  verify.bytes = kGiB;
  verify.verify = true;
  EXPECT_EQ(service->allocate(verify).error().code, ErrorCode::kInvalidArgument);

  ASSERT_TRUE(service->release(charged->record.id).ok());
  status = service->status("sim-0");
  EXPECT_EQ(status->heldBytes, 0u);
  EXPECT_EQ(allocators[0]->invalidReleases.load(), 0);
  EXPECT_EQ(allocators[0]->liveBytes(), 0u);
}

TEST_F(MemoryServiceTest, RefusalCallsTheReclaimerOnceAndRetries) {
  auto first = service->allocate(request(6 * kGiB));
  ASSERT_TRUE(first.ok());
  std::atomic<int> calls{0};
  std::uint64_t neededSeen = 0;
  service->setReclaimer([&](const std::string& deviceId, std::uint64_t needed) -> std::uint64_t {
    ++calls;
    neededSeen = needed;
    EXPECT_EQ(deviceId, "sim-0");
    // Called outside the service's locks: it may release (and even query) freely.
    EXPECT_TRUE(service->status(deviceId).ok());
    return service->release(first->record.id).ok() ? 6 * kGiB : 0;
  });
  auto second = service->allocate(request(8 * kGiB));
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(neededSeen, 3 * kGiB);  // 8 requested, 5 available

  // Nothing more to reclaim: one call, one retry, then the refusal.
  auto third = service->allocate(request(8 * kGiB));
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::kConflict);
  EXPECT_EQ(calls.load(), 2);

  // reclaim=false skips it.
  AllocateRequest noReclaim = request(8 * kGiB);
  noReclaim.reclaim = false;
  EXPECT_FALSE(service->allocate(noReclaim).ok());
  EXPECT_EQ(calls.load(), 2);
  service->setReclaimer({});
  EXPECT_FALSE(service->allocate(request(8 * kGiB)).ok());
  EXPECT_EQ(calls.load(), 2);
}

TEST_F(MemoryServiceTest, RefusalsArePublishedAsEvents) {
  RecordingEventSink events;
  service->setEventSink(&events);
  ASSERT_TRUE(service->allocate(request(kGiB)).ok());
  EXPECT_TRUE(events.snapshot().empty());
  AllocateRequest big = request(11 * kGiB);
  big.label = "too big";
  ASSERT_FALSE(service->allocate(big).ok());
  auto published = events.snapshot();
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].type, "memory.refused");
  EXPECT_EQ(published[0].severity, "warning");
  EXPECT_EQ(published[0].deviceId, "sim-0");
  EXPECT_EQ(published[0].details["requestedBytes"], 11 * kGiB);
  EXPECT_EQ(published[0].details["availableBytes"], 10 * kGiB);
  EXPECT_EQ(published[0].details["label"], "too big");
  service->setEventSink(nullptr);
}

// A driver call that hangs on sim-0 during an allocation (its admission's free-memory query, or
// the allocation itself) holds no lock that other requests wait on: sim-1 allocates, and sim-0
// answers status and takes account-only charges, all while that call still hangs.
TEST_F(MemoryServiceTest, AHungDriverCallDelaysNeitherOtherDevicesNorStatus) {
  for (const auto gated :
       {GatedAllocatorDouble::Call::kDriverFreeBytes, GatedAllocatorDouble::Call::kAllocate}) {
    SCOPED_TRACE(gated == GatedAllocatorDouble::Call::kAllocate ? "allocate" : "driverFreeBytes");
    DriverGateDouble gate;  // outlives `hung`, whose factory refers to it
    auto hung = serviceWith([&gate, gated](const devices::DeviceView& view)
                                -> Result<std::unique_ptr<devices::DeviceAllocator>> {
      if (view.id == "sim-0") {
        return std::unique_ptr<devices::DeviceAllocator>(
            std::make_unique<GatedAllocatorDouble>(14 * kGiB, gate, gated));
      }
      return std::unique_ptr<devices::DeviceAllocator>(
          std::make_unique<CountingAllocatorDouble>(14 * kGiB));
    });
    ASSERT_TRUE(hung->openDevice("sim-0").ok());
    gate.close();
    auto blocked =
        std::async(std::launch::async, [&] { return hung->allocate(request(2 * kGiB)); });
    ASSERT_TRUE(gate.waitForWaiter(2s));

    const auto start = Steady::now();
    auto other = hung->allocate(request(kGiB, "sim-1"));
    auto status = hung->status("sim-0");
    AllocateRequest charge = request(kGiB);
    charge.accountOnly = true;
    auto charged = hung->allocate(charge);
    const auto elapsed = Steady::now() - start;
    EXPECT_EQ(blocked.wait_for(0s), std::future_status::timeout);  // still hung meanwhile
    EXPECT_LT(elapsed, 1s);
    ASSERT_TRUE(other.ok()) << other.error().message;
    ASSERT_TRUE(charged.ok()) << charged.error().message;
    ASSERT_TRUE(status.ok()) << status.error().message;
    EXPECT_EQ(status->allocatorKind, "gated-double");
    EXPECT_EQ(status->heldBytes, 0u);
    EXPECT_EQ(status->availableBytes, 9 * kGiB);  // budget 11 GiB, 2 GiB reserved by the hung one

    gate.open();
    auto finished = blocked.get();
    ASSERT_TRUE(finished.ok()) << finished.error().message;
    EXPECT_EQ(hung->status("sim-0")->heldBytes, 3 * kGiB);
    hung->stop();
  }
}

// Opening an allocator (cuInit, vkCreateDevice) that hangs on sim-0 delays only the requests
// that need that allocator: status and optimize of sim-0 answer from the ledger, sim-1 allocates.
TEST_F(MemoryServiceTest, AHungAllocatorOpenDelaysNeitherStatusNorOtherDevices) {
  DriverGateDouble gate;  // outlives `hung`, whose factory refers to it
  gate.close();
  auto hung = serviceWith([&gate](const devices::DeviceView& view)
                              -> Result<std::unique_ptr<devices::DeviceAllocator>> {
    if (view.id == "sim-0") gate.pass();
    return std::unique_ptr<devices::DeviceAllocator>(
        std::make_unique<CountingAllocatorDouble>(14 * kGiB));
  });
  auto blocked = std::async(std::launch::async, [&] { return hung->allocate(request(kGiB)); });
  ASSERT_TRUE(gate.waitForWaiter(2s));

  const auto start = Steady::now();
  auto status = hung->status("sim-0");
  auto optimized = hung->optimize("sim-0");
  auto other = hung->allocate(request(kGiB, "sim-1"));
  const auto elapsed = Steady::now() - start;
  EXPECT_EQ(blocked.wait_for(0s), std::future_status::timeout);  // still opening meanwhile
  EXPECT_LT(elapsed, 1s);
  ASSERT_TRUE(status.ok()) << status.error().message;
  EXPECT_EQ(status->allocatorKind, "");  // not open yet: the ledger alone
  EXPECT_EQ(status->budgetBytes, 11 * kGiB);
  EXPECT_EQ(status->heldBytes, 0u);
  ASSERT_TRUE(optimized.ok());
  EXPECT_EQ(optimized->releasedBytes, 0u);
  ASSERT_TRUE(other.ok()) << other.error().message;

  gate.open();
  auto finished = blocked.get();
  ASSERT_TRUE(finished.ok()) << finished.error().message;
  EXPECT_EQ(hung->status("sim-0")->allocatorKind, "counting-double");
  hung->stop();
}

}  // namespace
}  // namespace deviceops::memory

namespace deviceops::memory {
namespace {

TEST_F(MemoryServiceTest, ABorrowedBlockCannotBeReleasedUntilTheBorrowEnds) {
  auto allocated = service->allocate(request(1 << 20));
  ASSERT_TRUE(allocated.ok()) << allocated.error().message;
  const std::string id = allocated->record.id;
  {
    Result<BorrowedBlock> borrowed = service->borrow(id);
    ASSERT_TRUE(borrowed.ok()) << borrowed.error().message;
    EXPECT_EQ(borrowed->requestedBytes(), 1u << 20);
    EXPECT_GE(borrowed->block().bytes, 1u << 20);
    // Transfers reach the block through the device's allocator.
    const std::uint64_t word = 0x0123456789abcdefULL;
    ASSERT_TRUE(borrowed->allocator().write(borrowed->block(), 8, &word, sizeof word).ok());
    std::uint64_t back = 0;
    ASSERT_TRUE(borrowed->allocator().read(borrowed->block(), 8, &back, sizeof back).ok());
    EXPECT_EQ(back, word);
    // While borrowed: 409, and the allocation is still held and still releasable later.
    Result<AllocationRecord> refused = service->release(id);
    ASSERT_FALSE(refused.ok());
    EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
    EXPECT_EQ(service->status("sim-0")->heldBytes, 1u << 20);
    EXPECT_TRUE(service->find(id).ok());
  }
  ASSERT_TRUE(service->release(id).ok());
  EXPECT_EQ(service->status("sim-0")->heldBytes, 0u);
  EXPECT_EQ(allocators[0]->invalidReleases.load(), 0);
  // Unknown, released and account-only allocations cannot be borrowed.
  EXPECT_EQ(service->borrow(id).error().code, ErrorCode::kNotFound);
  EXPECT_EQ(service->borrow("alloc-0000000000000000").error().code, ErrorCode::kNotFound);
  AllocateRequest charge = request(1 << 20);
  charge.accountOnly = true;
  charge.kind = AllocationKind::kModel;
  auto charged = service->allocate(charge);
  ASSERT_TRUE(charged.ok());
  EXPECT_EQ(service->borrow(charged->record.id).error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace deviceops::memory
