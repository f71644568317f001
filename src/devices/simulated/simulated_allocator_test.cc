#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "devices/allocator.h"
#include "devices/testing/transfer_checks.h"

namespace deviceops::devices {
namespace {

std::unique_ptr<DeviceAllocator> simulated(std::uint64_t capacity) {
  auto allocator = makeSimulatedAllocator(capacity);
  EXPECT_TRUE(allocator.ok());
  return std::move(allocator).value();
}

TEST(SimulatedAllocatorTest, AccountsUpToCapacityAndNoFurther) {
  auto allocator = simulated(1000);
  EXPECT_EQ(allocator->kind(), "simulated");
  EXPECT_TRUE(allocator->accountingOnly());
  EXPECT_EQ(allocator->driverFreeBytes(), 1000u);

  auto first = allocator->allocate(600, {});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->bytes, 600u);
  EXPECT_EQ(first->hostAddress, nullptr);
  EXPECT_NE(first->handle, 0u);
  auto second = allocator->allocate(400, {});  // exactly fills it
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->handle, first->handle);
  EXPECT_EQ(allocator->liveBytes(), 1000u);
  EXPECT_EQ(allocator->driverFreeBytes(), 0u);

  auto third = allocator->allocate(1, {});
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(third.error().details["capacityBytes"], 1000u);

  allocator->release(*first);
  EXPECT_EQ(allocator->liveBytes(), 400u);
  EXPECT_EQ(allocator->driverFreeBytes(), 600u);
  allocator->release(*second);
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

TEST(SimulatedAllocatorTest, RejectsWhatItCannotDo) {
  auto allocator = simulated(1 << 20);
  struct Case {
    const char* name;
    std::uint64_t bytes;
    bool pinned;
    ErrorCode code;
  };
  const Case cases[] = {
      {"zero bytes", 0, false, ErrorCode::kInvalidArgument},
      {"pinned", 16, true, ErrorCode::kInvalidArgument},
      {"beyond capacity", (1 << 20) + 1, false, ErrorCode::kResourceExhausted},
      {"near 2^64", ~0ULL, false, ErrorCode::kResourceExhausted},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto block = allocator->allocate(c.bytes, AllocationOptions{c.pinned});
    ASSERT_FALSE(block.ok());
    EXPECT_EQ(block.error().code, c.code);
  }
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

TEST(SimulatedAllocatorTest, VerifyIsRefused) {
  auto allocator = simulated(1 << 20);
  auto block = allocator->allocate(4096, {});
  ASSERT_TRUE(block.ok());
  auto report = allocator->verify(*block);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(report.error().message.find("simulated"), std::string::npos);
  allocator->release(*block);
}

TEST(SimulatedAllocatorTest, TransfersReachTheHostShadowOnly) {
  auto allocator = simulated(1ULL << 30);
  EXPECT_EQ(allocator->transferLimitBytes(), 64ULL << 20);
  testing::expectTransfersWork(*allocator, 256ULL << 20);
  // Past the shadow (but inside the block): refused, naming the limit.
  auto block = allocator->allocate(128ULL << 20, {});
  ASSERT_TRUE(block.ok());
  unsigned char byte = 1;
  EXPECT_TRUE(allocator->write(*block, (64ULL << 20) - 1, &byte, 1).ok());
  Status beyond = allocator->write(*block, 64ULL << 20, &byte, 1);
  ASSERT_FALSE(beyond.ok());
  EXPECT_EQ(beyond.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(beyond.error().message.find("backs only the first 67108864 bytes"), std::string::npos)
      << beyond.error().message;
  Status across = allocator->copy(*block, 0, *block, (64ULL << 20) - 4, 8);
  ASSERT_FALSE(across.ok());
  EXPECT_EQ(across.error().code, ErrorCode::kInvalidArgument);
  allocator->release(*block);
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

TEST(SimulatedAllocatorTest, ConcurrentCallersNeverOvershootCapacity) {
  constexpr std::uint64_t kUnit = 1000;
  constexpr std::uint64_t kCapacity = 20 * kUnit;  // less than 8 threads x 5 held: contended
  auto allocator = simulated(kCapacity);
  std::atomic<std::uint64_t> maxSeen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      std::vector<Block> held;
      for (int i = 0; i < 500; ++i) {
        auto block = allocator->allocate(kUnit, {});
        if (block.ok()) held.push_back(*block);
        std::uint64_t live = allocator->liveBytes();
        std::uint64_t seen = maxSeen.load();
        while (live > seen && !maxSeen.compare_exchange_weak(seen, live)) {
        }
        if (held.size() > 4) {
          allocator->release(held.front());
          held.erase(held.begin());
        }
      }
      for (const Block& block : held) allocator->release(block);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(maxSeen.load(), kCapacity);
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

}  // namespace
}  // namespace deviceops::devices
