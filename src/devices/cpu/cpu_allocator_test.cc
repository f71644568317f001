#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "devices/allocator.h"
#include "devices/pattern.h"
#include "devices/testing/transfer_checks.h"

namespace deviceops::devices {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;

// A "VmRSS:   1234 kB"-style line of /proc/self/status, in bytes.
std::uint64_t statusBytes(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stoull(line.substr(key.size() + 1)) * 1024;
  }
  return 0;
}

std::unique_ptr<DeviceAllocator> cpuAllocator() {
  auto allocator = makeCpuAllocator();
  EXPECT_TRUE(allocator.ok());
  return std::move(allocator).value();
}

TEST(CpuAllocatorTest, DescribesItself) {
  auto allocator = cpuAllocator();
  EXPECT_EQ(allocator->kind(), "cpu");
  EXPECT_FALSE(allocator->accountingOnly());
  EXPECT_EQ(allocator->liveBytes(), 0u);
  const std::optional<std::uint64_t> available = allocator->driverFreeBytes();
  ASSERT_TRUE(available.has_value());
  EXPECT_GT(*available, 0u);
}

TEST(CpuAllocatorTest, ResidentMemoryGrowsOnAllocateAndShrinksOnRelease) {
  constexpr std::uint64_t kBytes = 256 * kMiB;
  constexpr std::uint64_t kSlack = 16 * kMiB;
  auto allocator = cpuAllocator();
  const std::uint64_t before = statusBytes("VmRSS");
  const auto start = std::chrono::steady_clock::now();
  auto block = allocator->allocate(kBytes, {});
  const auto allocated = std::chrono::steady_clock::now();
  ASSERT_TRUE(block.ok()) << block.error().message;
  const std::uint64_t during = statusBytes("VmRSS");
  EXPECT_EQ(block->bytes, kBytes);
  EXPECT_NE(block->hostAddress, nullptr);
  EXPECT_FALSE(block->pinned);
  EXPECT_EQ(allocator->liveBytes(), kBytes);
  EXPECT_GE(during, before + kBytes - kSlack) << "pages were not committed";

  const auto releasing = std::chrono::steady_clock::now();
  allocator->release(*block);
  const auto released = std::chrono::steady_clock::now();
  const std::uint64_t after = statusBytes("VmRSS");
  EXPECT_LE(after + kBytes - kSlack, during) << "pages were not returned";
  EXPECT_EQ(allocator->liveBytes(), 0u);
  using Ms = std::chrono::duration<double, std::milli>;
  std::printf("[ timing ] cpu allocate 256 MiB: %.1f ms, release: %.1f ms (RSS %+.0f MiB)\n",
              Ms(allocated - start).count(), Ms(released - releasing).count(),
              (static_cast<double>(during) - static_cast<double>(before)) / kMiB);
}

TEST(CpuAllocatorTest, VerifyFindsNoErrorsAndReportsBandwidth) {
  constexpr std::uint64_t kBytes = 256 * kMiB + 5;  // a tail that is not a whole word
  auto allocator = cpuAllocator();
  auto block = allocator->allocate(kBytes, {});
  ASSERT_TRUE(block.ok()) << block.error().message;
  auto report = allocator->verify(*block);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->bytesTested, kBytes);
  EXPECT_EQ(report->errors, 0u);
  EXPECT_GT(report->writeBytesPerSecond(), 0.0);
  EXPECT_GT(report->readBytesPerSecond(), 0.0);
  std::printf("[ timing ] cpu verify 256 MiB: write %.2f GB/s, read %.2f GB/s\n",
              report->writeBytesPerSecond() / 1e9, report->readBytesPerSecond() / 1e9);
  allocator->release(*block);
}

TEST(CpuAllocatorTest, PatternCheckFindsAWordCorruptedBetweenWriteAndRead) {
  constexpr std::uint64_t kBytes = 4 * kMiB;
  auto allocator = cpuAllocator();
  auto block = allocator->allocate(kBytes, {});
  ASSERT_TRUE(block.ok()) << block.error().message;
  writePattern(block->hostAddress, kBytes, 0, 42);
  static_cast<std::uint64_t*>(block->hostAddress)[12345] ^= 1ULL << 40;
  const PatternCheck check = checkPattern(block->hostAddress, kBytes, 0, 42);
  EXPECT_EQ(check.errors, 1u);
  EXPECT_EQ(check.firstErrorOffset, 12345u * 8);
  allocator->release(*block);
}

TEST(CpuAllocatorTest, RejectsZeroBytes) {
  auto allocator = cpuAllocator();
  auto block = allocator->allocate(0, {});
  ASSERT_FALSE(block.ok());
  EXPECT_EQ(block.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

TEST(CpuAllocatorTest, AbsurdSizeIsRefusedCleanly) {
  auto allocator = cpuAllocator();
  for (bool pinned : {false, true}) {
    SCOPED_TRACE(pinned ? "pinned" : "pageable");
    auto block = allocator->allocate(1ULL << 50, AllocationOptions{pinned});
    ASSERT_FALSE(block.ok());
    EXPECT_TRUE(block.error().code == ErrorCode::kResourceExhausted ||
                block.error().code == ErrorCode::kInvalidArgument)
        << block.error().message;
    EXPECT_EQ(allocator->liveBytes(), 0u);
  }
}

TEST(CpuAllocatorTest, PinnedBlockIsLockedInRam) {
  constexpr std::uint64_t kBytes = 4 * kMiB;  // below the usual 8 MiB default RLIMIT_MEMLOCK
  auto allocator = cpuAllocator();
  const std::uint64_t lockedBefore = statusBytes("VmLck");
  auto block = allocator->allocate(kBytes, AllocationOptions{true});
  if (!block.ok() && block.error().code == ErrorCode::kConflict) {
    GTEST_SKIP() << "this environment's RLIMIT_MEMLOCK forbids pinning 4 MiB: "
                 << block.error().message;
  }
  ASSERT_TRUE(block.ok()) << block.error().message;
  EXPECT_TRUE(block->pinned);
  EXPECT_GE(statusBytes("VmLck"), lockedBefore + kBytes);
  allocator->release(*block);
  EXPECT_EQ(statusBytes("VmLck"), lockedBefore);
}

// Removes CAP_IPC_LOCK from this process (root and CAP_IPC_LOCK holders ignore RLIMIT_MEMLOCK).
void dropIpcLockCapability() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (::syscall(SYS_capget, &header, data) != 0) return;
  const unsigned bit = 1u << (CAP_IPC_LOCK % 32);
  data[CAP_IPC_LOCK / 32].effective &= ~bit;
  data[CAP_IPC_LOCK / 32].permitted &= ~bit;
  ::syscall(SYS_capset, &header, data);
}

// Runs in a child process (the capability and limit changes must not leak into other tests):
// exits 0 when the allocator refused as documented, 1 otherwise; prints the message either way.
void pinBeyondMemlockLimit() {
  constexpr rlim_t kLimit = 1 * kMiB;
  dropIpcLockCapability();
  rlimit limit{kLimit, kLimit};
  if (::setrlimit(RLIMIT_MEMLOCK, &limit) != 0) {
    std::fprintf(stderr, "setrlimit failed: %s\n", std::strerror(errno));
    std::_Exit(2);
  }
  auto allocator = makeCpuAllocator();
  auto block = (*allocator)->allocate(16 * kMiB, AllocationOptions{true});
  if (block.ok()) {
    std::fprintf(stderr, "pinning 16 MiB under a 1 MiB RLIMIT_MEMLOCK succeeded\n");
    std::_Exit(1);
  }
  const Error& error = block.error();
  std::fprintf(stderr, "%s\n", error.message.c_str());
  const bool documented = error.code == ErrorCode::kConflict &&
                          error.message.find("RLIMIT_MEMLOCK") != std::string::npos &&
                          error.message.find("1048576") != std::string::npos &&
                          error.details.value("memlockLimitBytes", 0ULL) == kLimit &&
                          (*allocator)->liveBytes() == 0;
  std::_Exit(documented ? 0 : 1);
}

TEST(CpuAllocatorTest, PinningBeyondMemlockLimitIsAConflictNamingTheLimit) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(pinBeyondMemlockLimit(), ::testing::ExitedWithCode(0),
              "RLIMIT_MEMLOCK of the daemon is 1048576 bytes");
}

TEST(CpuAllocatorTest, ConcurrentAllocateReleaseBalances) {
  constexpr int kThreads = 8;
  constexpr int kPairs = 500;
  auto allocator = cpuAllocator();
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPairs; ++i) {
        const std::uint64_t bytes = 4096 * (1 + (t * 7 + i) % 64) + t;  // 4 KiB .. 256 KiB
        auto block = allocator->allocate(bytes, {});
        if (!block.ok()) {
          ++failures[t];
          continue;
        }
        static_cast<unsigned char*>(block->hostAddress)[bytes - 1] = 1;
        allocator->release(*block);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

TEST(CpuAllocatorTest, TransfersAreMemcpyWithinBounds) {
  auto allocator = cpuAllocator();
  ASSERT_NE(allocator, nullptr);
  testing::expectTransfersWork(*allocator, (1 << 20) + 7);
  EXPECT_EQ(allocator->transferLimitBytes(), std::nullopt);
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

}  // namespace
}  // namespace deviceops::devices
