#include "memory/pool.h"

#include <gtest/gtest.h>

#include <thread>

#include "memory/testing/doubles.h"

namespace deviceops::memory {
namespace {

using testing::CountingAllocatorDouble;

TEST(PoolTest, SizeClasses) {
  const std::pair<std::uint64_t, std::uint64_t> cases[] = {{1, 4096},
                                                           {4096, 4096},
                                                           {4097, 8192},
                                                           {(2 << 20) - 1, 2 << 20},
                                                           {2 << 20, 2 << 20},
                                                           {(2 << 20) + 1, 4 << 20},
                                                           {(256ull << 20) + 5, 258ull << 20}};
  for (const auto& [bytes, expected] : cases) {
    SCOPED_TRACE(bytes);
    EXPECT_EQ(MemoryPool::sizeClass(bytes), expected);
  }
}

TEST(PoolTest, RepeatedSizesAreServedFromTheCache) {
  CountingAllocatorDouble allocator(1ull << 40);
  MemoryPool pool(allocator, PoolStrategy::kPool, 1ull << 30);
  for (int i = 0; i < 100; ++i) {
    auto block = pool.acquire(10 << 20, {});
    ASSERT_TRUE(block.ok());
    EXPECT_EQ(block->fromCache, i > 0);
    pool.giveBack(*block);
  }
  EXPECT_EQ(allocator.allocations.load(), 1);
  PoolStats stats = pool.stats();
  EXPECT_EQ(stats.cacheHits, 99u);
  EXPECT_EQ(stats.cachedBytes, 10u << 20);
  EXPECT_EQ(stats.reservedBytes, allocator.liveBytes());
  EXPECT_EQ(pool.trim(), 10u << 20);
  EXPECT_EQ(allocator.liveBytes(), 0u);
  EXPECT_EQ(pool.stats().reservedBytes, 0u);
}

TEST(PoolTest, BestFitWithinSlackAndFragmentation) {
  CountingAllocatorDouble allocator(1ull << 40);
  MemoryPool pool(allocator, PoolStrategy::kPool, 1ull << 30);
  auto big = pool.acquire(100 << 20, {});
  auto small = pool.acquire(10 << 20, {});
  pool.giveBack(*big);
  pool.giveBack(*small);
  EXPECT_NEAR(pool.stats().fragmentationRatio, 1.0 - 100.0 / 110.0, 1e-9);
  // 9 MiB fits the 10 MiB block (within 25%), not the 100 MiB one.
  auto reuse = pool.acquire(9 << 20, {});
  EXPECT_TRUE(reuse->fromCache);
  EXPECT_EQ(reuse->block.bytes, 10u << 20);
  // 50 MiB would waste half of the 100 MiB block: a new driver allocation instead.
  auto fresh = pool.acquire(50 << 20, {});
  EXPECT_FALSE(fresh->fromCache);
  pool.giveBack(*reuse);
  pool.giveBack(*fresh);
}

TEST(PoolTest, OutOfMemoryTrimsTheCacheAndRetries) {
  CountingAllocatorDouble allocator(64 << 20);
  MemoryPool pool(allocator, PoolStrategy::kPool, 1ull << 30);
  auto first = pool.acquire(40 << 20, {});
  pool.giveBack(*first);  // cached: 40 MiB still held from the "driver"
  auto second = pool.acquire(60 << 20, {});
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(pool.stats().cachedBytes, 0u);
  pool.giveBack(*second);
}

TEST(PoolTest, NoneStrategyAndPinnedBlocksAlwaysReachTheDriver) {
  CountingAllocatorDouble allocator(1ull << 40);
  MemoryPool none(allocator, PoolStrategy::kNone, 1ull << 30);
  for (int i = 0; i < 3; ++i) none.giveBack(*none.acquire(5000, {}));
  EXPECT_EQ(allocator.allocations.load(), 3);
  EXPECT_EQ(allocator.releases.load(), 3);
  MemoryPool pool(allocator, PoolStrategy::kPool, 1ull << 30);
  pool.giveBack(*pool.acquire(5000, {true}));
  EXPECT_EQ(pool.stats().cachedBytes, 0u);
  EXPECT_EQ(allocator.liveBytes(), 0u);
}

TEST(PoolTest, CacheBoundIsRespected) {
  CountingAllocatorDouble allocator(1ull << 40);
  MemoryPool pool(allocator, PoolStrategy::kPool, 8 << 20);
  auto a = pool.acquire(6 << 20, {});
  auto b = pool.acquire(6 << 20, {});
  pool.giveBack(*a);
  pool.giveBack(*b);  // would exceed 8 MiB cached: released to the driver
  EXPECT_EQ(pool.stats().cachedBytes, 6u << 20);
  EXPECT_EQ(allocator.liveBytes(), 6u << 20);
}

TEST(PoolTest, ConcurrentUseKeepsTheBooksExact) {
  CountingAllocatorDouble allocator(1ull << 40);
  MemoryPool pool(allocator, PoolStrategy::kPool, 256 << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        auto block = pool.acquire(static_cast<std::uint64_t>((t * 7 + i) % 13 + 1) << 18, {});
        ASSERT_TRUE(block.ok());
        pool.giveBack(*block);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  PoolStats stats = pool.stats();
  EXPECT_EQ(stats.inUseBytes, 0u);
  EXPECT_EQ(stats.requestedBytes, 0u);
  EXPECT_EQ(stats.reservedBytes, allocator.liveBytes());
  EXPECT_EQ(allocator.invalidReleases.load(), 0);
}

}  // namespace
}  // namespace deviceops::memory
