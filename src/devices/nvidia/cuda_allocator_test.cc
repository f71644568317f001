#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "devices/allocator.h"
#include "devices/nvidia/testing/fake_gpus.h"
#include "devices/testing/transfer_checks.h"

namespace deviceops::devices {
namespace {

namespace fake = devices::nvidia::testing;

// The CUDA test double (devices/nvidia/testing): CMake passes its path as NVML_TEST_DOUBLE_PATH;
// the environment variable of the same name works for builds that lack the definition.
std::string testDoublePath() {
#ifdef NVML_TEST_DOUBLE_PATH
  return NVML_TEST_DOUBLE_PATH;
#else
  const char* path = std::getenv("NVML_TEST_DOUBLE_PATH");
  return path != nullptr ? path : "";
#endif
}

// CUDA ordinal 1 of the double: the fake H100 (80 GiB, 3 GiB in use by others).
constexpr const char* kH100Uuid = "5f2a6c1e-8b3d-4a7f-9c21-0d4e6b8a1f3c";
constexpr std::uint64_t kH100FreeBytes =
    fake::kFakeGpus[0].totalBytes - fake::kFakeGpus[0].usedBytes;

std::unique_ptr<DeviceAllocator> doubleAllocator() {
  auto allocator = makeCudaAllocator(kH100Uuid, testDoublePath());
  EXPECT_TRUE(allocator.ok()) << allocator.error().message;
  return allocator.ok() ? std::move(allocator).value() : nullptr;
}

#define SKIP_WITHOUT_TEST_DOUBLE()                                                       \
  if (testDoublePath().empty()) {                                                        \
    GTEST_SKIP() << "NVML_TEST_DOUBLE_PATH is not set: build nvml_test_double and pass " \
                    "its path";                                                          \
  }

TEST(CudaAllocatorTest, WithoutTheDriverIsUnavailableNamingLibcuda) {
  if (void* handle = ::dlopen("libcuda.so.1", RTLD_LAZY)) {
    ::dlclose(handle);
    GTEST_SKIP() << "this machine has a CUDA driver";
  }
  auto allocator = makeCudaAllocator(kH100Uuid);
  ASSERT_FALSE(allocator.ok());
  EXPECT_EQ(allocator.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(allocator.error().message.find("libcuda.so.1"), std::string::npos)
      << allocator.error().message;
}

TEST(CudaAllocatorTest, AllocatesVerifiesAndReleasesOnTheTestDouble) {
  SKIP_WITHOUT_TEST_DOUBLE();
  auto allocator = doubleAllocator();
  ASSERT_NE(allocator, nullptr);
  EXPECT_EQ(allocator->kind(), "cuda");
  EXPECT_EQ(allocator->driverFreeBytes(), kH100FreeBytes);

  constexpr std::uint64_t kBytes = (80ULL << 20) + 5;  // two staging chunks and a tail
  auto block = allocator->allocate(kBytes, {});
  ASSERT_TRUE(block.ok()) << block.error().message;
  EXPECT_EQ(block->bytes, kBytes);
  EXPECT_NE(block->handle, 0u);
  EXPECT_EQ(block->hostAddress, nullptr);
  EXPECT_EQ(allocator->liveBytes(), kBytes);
  EXPECT_EQ(allocator->driverFreeBytes(), kH100FreeBytes - kBytes);

  auto report = allocator->verify(*block);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->bytesTested, kBytes);
  EXPECT_EQ(report->errors, 0u);
  EXPECT_GT(report->writeBytesPerSecond(), 0.0);

  allocator->release(*block);
  EXPECT_EQ(allocator->liveBytes(), 0u);
  EXPECT_EQ(allocator->driverFreeBytes(), kH100FreeBytes);
}

TEST(CudaAllocatorTest, OutOfMemoryIsResourceExhausted) {
  SKIP_WITHOUT_TEST_DOUBLE();
  auto allocator = doubleAllocator();
  ASSERT_NE(allocator, nullptr);
  auto block = allocator->allocate(kH100FreeBytes + 1, {});
  ASSERT_FALSE(block.ok());
  EXPECT_EQ(block.error().code, ErrorCode::kResourceExhausted);
  EXPECT_NE(block.error().message.find("CUDA_ERROR_OUT_OF_MEMORY"), std::string::npos)
      << block.error().message;
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

TEST(CudaAllocatorTest, RejectsZeroBytesAndPinning) {
  SKIP_WITHOUT_TEST_DOUBLE();
  auto allocator = doubleAllocator();
  ASSERT_NE(allocator, nullptr);
  auto zero = allocator->allocate(0, {});
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().code, ErrorCode::kInvalidArgument);
  auto pinned = allocator->allocate(4096, AllocationOptions{true});
  ASSERT_FALSE(pinned.ok());
  EXPECT_EQ(pinned.error().code, ErrorCode::kInvalidArgument);
}

TEST(CudaAllocatorTest, UnknownUuidIsNotFound) {
  SKIP_WITHOUT_TEST_DOUBLE();
  auto allocator = makeCudaAllocator("00000000-1111-2222-3333-444444444444", testDoublePath());
  ASSERT_FALSE(allocator.ok());
  EXPECT_EQ(allocator.error().code, ErrorCode::kNotFound);
  EXPECT_NE(allocator.error().message.find("00000000-1111-2222-3333-444444444444"),
            std::string::npos);
}

TEST(CudaAllocatorTest, DestroyingTheAllocatorFreesBlocksStillHeld) {
  SKIP_WITHOUT_TEST_DOUBLE();
  auto allocator = doubleAllocator();
  ASSERT_NE(allocator, nullptr);
  ASSERT_TRUE(allocator->allocate(1 << 20, {}).ok());
  allocator.reset();
  // The double counts what is held: a fresh allocator sees the full free memory again.
  auto fresh = doubleAllocator();
  ASSERT_NE(fresh, nullptr);
  EXPECT_EQ(fresh->driverFreeBytes(), kH100FreeBytes);
}

TEST(CudaAllocatorTest, TransfersOnTheTestDouble) {
  SKIP_WITHOUT_TEST_DOUBLE();
  auto allocator = doubleAllocator();
  ASSERT_NE(allocator, nullptr);
  devices::testing::expectTransfersWork(*allocator, (1 << 20) + 7);
  EXPECT_EQ(allocator->transferLimitBytes(), std::nullopt);
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

}  // namespace
}  // namespace deviceops::devices
