#include "devices/vulkan/vulkan_allocator.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <vector>

#include "devices/testing/transfer_checks.h"
#include "devices/vulkan/vulkan_backend.h"
#include "devices/vulkan/vulkan_device.h"

namespace deviceops::devices {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;

// Mesa's lavapipe, as the vulkan backend reports it. The backend stays open for the rest of the
// process: it keeps the ICDs loaded, so lavapipe's one-time allocation stays reachable and
// LeakSanitizer does not report it when an allocator's instance is destroyed.
const devices::DeviceRecord* lavapipe() {
  static devices::Backend* const backend = devices::makeVulkanBackend().release();  // kept
  static const std::optional<devices::DeviceRecord> record =
      []() -> std::optional<devices::DeviceRecord> {
    if (!backend->open().ok()) return std::nullopt;
    auto records = backend->poll();
    if (!records.ok()) return std::nullopt;
    for (const devices::DeviceRecord& candidate : *records) {
      if (candidate.vendor == "Mesa" && !candidate.uuid.empty()) return candidate;
    }
    return std::nullopt;
  }();
  return record ? &*record : nullptr;
}

std::unique_ptr<DeviceAllocator> lavapipeAllocator(VulkanAllocatorOptions options = {}) {
  const devices::DeviceRecord* device = lavapipe();
  EXPECT_NE(device, nullptr) << "mesa-vulkan-drivers (lavapipe) is expected on test machines";
  if (device == nullptr) return nullptr;
  auto allocator = makeVulkanAllocator(device->uuid, options);
  EXPECT_TRUE(allocator.ok()) << allocator.error().message;
  return allocator.ok() ? std::move(allocator).value() : nullptr;
}

TEST(VulkanAllocatorTest, AllocatesVerifiesAndReleasesOnLavapipe) {
  auto allocator = lavapipeAllocator();
  ASSERT_NE(allocator, nullptr);
  EXPECT_EQ(allocator->kind(), "vulkan");
  EXPECT_FALSE(allocator->accountingOnly());
  auto block = allocator->allocate(64 * kMiB, {});
  ASSERT_TRUE(block.ok()) << block.error().message;
  EXPECT_EQ(block->bytes, 64 * kMiB);
  EXPECT_NE(block->handle, 0u);
  EXPECT_EQ(block->hostAddress, nullptr);
  EXPECT_EQ(allocator->liveBytes(), 64 * kMiB);

  auto report = allocator->verify(*block);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->bytesTested, 64 * kMiB);
  EXPECT_EQ(report->errors, 0u);
  EXPECT_GT(report->writeBytesPerSecond(), 0.0);
  EXPECT_GT(report->readBytesPerSecond(), 0.0);
  // The first write pass also faults lavapipe's lazily committed pages in; the second does not.
  auto again = allocator->verify(*block);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->errors, 0u);
  std::printf(
      "[ timing ] lavapipe verify 64 MiB (mapped): write %.2f GB/s, read %.2f GB/s; again: "
      "write %.2f GB/s, read %.2f GB/s\n",
      report->writeBytesPerSecond() / 1e9, report->readBytesPerSecond() / 1e9,
      again->writeBytesPerSecond() / 1e9, again->readBytesPerSecond() / 1e9);
  allocator->release(*block);
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

TEST(VulkanAllocatorTest, VerifiesThroughStagingAcrossAPartialWindow) {
  VulkanAllocatorOptions options;
  options.verifyThroughStaging = true;
  auto allocator = lavapipeAllocator(options);
  ASSERT_NE(allocator, nullptr);
  constexpr std::uint64_t kBytes = 64 * kMiB + 4 * kMiB;  // one full window and a partial one
  auto block = allocator->allocate(kBytes, {});
  ASSERT_TRUE(block.ok()) << block.error().message;
  auto report = allocator->verify(*block);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->bytesTested, kBytes);
  EXPECT_EQ(report->errors, 0u);
  std::printf("[ timing ] lavapipe verify 68 MiB (staging): write %.2f GB/s, read %.2f GB/s\n",
              report->writeBytesPerSecond() / 1e9, report->readBytesPerSecond() / 1e9);
  allocator->release(*block);
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

TEST(VulkanAllocatorTest, MoreThanTheHeapIsACleanError) {
  auto allocator = lavapipeAllocator();
  ASSERT_NE(allocator, nullptr);
  const std::uint64_t heapBytes = lavapipe()->memory.totalBytes;
  ASSERT_GT(heapBytes, 0u);
  for (std::uint64_t bytes : {heapBytes + 1, 2 * heapBytes, std::uint64_t{1} << 50}) {
    SCOPED_TRACE(bytes);
    auto block = allocator->allocate(bytes, {});
    ASSERT_FALSE(block.ok());
    EXPECT_TRUE(block.error().code == ErrorCode::kResourceExhausted ||
                block.error().code == ErrorCode::kInvalidArgument)
        << block.error().message;
  }
  EXPECT_EQ(allocator->liveBytes(), 0u);
}

TEST(VulkanAllocatorTest, RejectsZeroBytesAndPinning) {
  auto allocator = lavapipeAllocator();
  ASSERT_NE(allocator, nullptr);
  auto zero = allocator->allocate(0, {});
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().code, ErrorCode::kInvalidArgument);
  auto pinned = allocator->allocate(kMiB, AllocationOptions{true});
  ASSERT_FALSE(pinned.ok());
  EXPECT_EQ(pinned.error().code, ErrorCode::kInvalidArgument);
}

TEST(VulkanAllocatorTest, DriverFreeBytesOnlyWithMemoryBudget) {
  auto allocator = lavapipeAllocator();
  ASSERT_NE(allocator, nullptr);
  const std::optional<std::uint64_t> free = allocator->driverFreeBytes();
  if (lavapipe()->properties.value("memoryBudgetSupported", false)) {
    ASSERT_TRUE(free.has_value());
    EXPECT_LE(*free, lavapipe()->memory.totalBytes);
  } else {
    EXPECT_FALSE(free.has_value());
  }
}

TEST(VulkanAllocatorTest, DestroyingTheAllocatorFreesBlocksStillHeld) {
  auto allocator = lavapipeAllocator();
  ASSERT_NE(allocator, nullptr);
  ASSERT_TRUE(allocator->allocate(8 * kMiB, {}).ok());
  ASSERT_TRUE(allocator->allocate(kMiB, {}).ok());
  allocator.reset();  // must free both before vkDestroyDevice (LeakSanitizer would notice)
}

TEST(VulkanAllocatorTest, UnknownUuidOrLoaderIsAnError) {
  ASSERT_NE(lavapipe(), nullptr);
  auto bogus = makeVulkanAllocator("00000000-1111-2222-3333-444444444444");
  ASSERT_FALSE(bogus.ok());
  EXPECT_EQ(bogus.error().code, ErrorCode::kNotFound);
  EXPECT_NE(bogus.error().message.find("00000000-1111-2222-3333-444444444444"), std::string::npos);
  auto noLoader = makeVulkanAllocator(lavapipe()->uuid, "/nonexistent/libvulkan.so.1");
  ASSERT_FALSE(noLoader.ok());
  EXPECT_EQ(noLoader.error().code, ErrorCode::kUnavailable);
}

// Both transfer paths: mapping (lavapipe's memory is host-visible) and the staging buffer.
TEST(VulkanAllocatorTest, TransfersMappedAndThroughStaging) {
  for (bool staging : {false, true}) {
    SCOPED_TRACE(staging ? "staging" : "mapped");
    VulkanAllocatorOptions options;
    options.verifyThroughStaging = staging;
    auto allocator = lavapipeAllocator(options);
    ASSERT_NE(allocator, nullptr);
    testing::expectTransfersWork(*allocator, 4 * kMiB);
    EXPECT_EQ(allocator->transferLimitBytes(), std::nullopt);
    EXPECT_EQ(allocator->liveBytes(), 0u);
  }
}

// Transfers longer than one 64 MiB window, at odd offsets, in both paths; the staging path's
// block-to-block copy within one block overlaps across windows.
TEST(VulkanAllocatorTest, TransfersAcrossWindows) {
  constexpr std::uint64_t kBlock = 72 * kMiB;
  constexpr std::uint64_t kBytes = 66 * kMiB + 3;
  std::vector<unsigned char> data = testing::numberedBytes(kBytes, 5);
  for (bool staging : {false, true}) {
    SCOPED_TRACE(staging ? "staging" : "mapped");
    VulkanAllocatorOptions options;
    options.verifyThroughStaging = staging;
    auto allocator = lavapipeAllocator(options);
    ASSERT_NE(allocator, nullptr);
    auto a = allocator->allocate(kBlock, {});
    ASSERT_TRUE(a.ok()) << a.error().message;
    auto b = allocator->allocate(kBlock, {});
    ASSERT_TRUE(b.ok()) << b.error().message;
    Status written = allocator->write(*a, kMiB + 5, data.data(), kBytes);
    ASSERT_TRUE(written.ok()) << written.error().message;
    std::vector<unsigned char> out(kBytes);
    ASSERT_TRUE(allocator->read(*a, kMiB + 5, out.data(), kBytes).ok());
    EXPECT_TRUE(out == data);
    Status copied = allocator->copy(*b, 11, *a, kMiB + 5, kBytes);
    ASSERT_TRUE(copied.ok()) << copied.error().message;
    std::fill(out.begin(), out.end(), 0);
    ASSERT_TRUE(allocator->read(*b, 11, out.data(), kBytes).ok());
    EXPECT_TRUE(out == data);
    // Within block a, 3 MiB further on: memmove's result, read from the new place.
    copied = allocator->copy(*a, 4 * kMiB + 5, *a, kMiB + 5, kBytes);
    ASSERT_TRUE(copied.ok()) << copied.error().message;
    std::fill(out.begin(), out.end(), 0);
    ASSERT_TRUE(allocator->read(*a, 4 * kMiB + 5, out.data(), kBytes).ok());
    EXPECT_TRUE(out == data);
    allocator->release(*a);
    allocator->release(*b);
  }
}

// chooseMemoryType, table-driven over typical memory layouts.
VkPhysicalDeviceMemoryProperties layout(
    std::initializer_list<std::pair<VkDeviceSize, VkMemoryHeapFlags>> heaps,
    std::initializer_list<std::pair<std::uint32_t, VkMemoryPropertyFlags>> types) {
  VkPhysicalDeviceMemoryProperties memory{};
  for (const auto& [size, flags] : heaps)
    memory.memoryHeaps[memory.memoryHeapCount++] = {size, flags};
  for (const auto& [heap, flags] : types)
    memory.memoryTypes[memory.memoryTypeCount++] = {flags, heap};
  return memory;
}

TEST(VulkanMemoryChoiceTest, PicksTheDeviceLocalTypeTheVerifyPathWants) {
  constexpr VkMemoryHeapFlags kLocalHeap = VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
  constexpr VkMemoryPropertyFlags kLocal = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  constexpr VkMemoryPropertyFlags kMappable =
      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  // A discrete GPU: 16 GiB VRAM, system RAM, and a 256 MiB BAR window.
  const auto discrete =
      layout({{16ULL << 30, kLocalHeap}, {32ULL << 30, 0}, {256ULL << 20, kLocalHeap}},
             {{1, kMappable}, {0, kLocal}, {2, kLocal | kMappable}});
  // lavapipe / integrated: one heap, one type that is everything.
  const auto unified = layout({{2ULL << 30, kLocalHeap}}, {{0, kLocal | kMappable}});
  const auto protectedOnly =
      layout({{1ULL << 30, kLocalHeap}}, {{0, kLocal | VK_MEMORY_PROPERTY_PROTECTED_BIT}});
  const auto noLocal = layout({{1ULL << 30, 0}}, {{0, kMappable}});
  struct Case {
    const char* name;
    VkPhysicalDeviceMemoryProperties memory;
    std::uint32_t bufferBits;
    bool discrete;
    std::optional<std::uint32_t> expected;
  };
  const Case cases[] = {
      {"discrete: the VRAM-only type", discrete, ~0u, true, 1},
      {"discrete reported as integrated: the mappable BAR type", discrete, ~0u, false, 2},
      {"discrete, VRAM type unusable for buffers", discrete, 0b101, true, 2},
      {"unified memory", unified, ~0u, false, 0},
      {"protected memory is never chosen", protectedOnly, ~0u, false, std::nullopt},
      {"no device-local heap", noLocal, ~0u, false, std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::optional<VulkanMemoryChoice> choice =
        chooseMemoryType(c.memory, c.bufferBits, c.discrete);
    ASSERT_EQ(choice.has_value(), c.expected.has_value());
    if (choice) {
      EXPECT_EQ(choice->typeIndex, *c.expected);
    }
  }
}

}  // namespace
}  // namespace deviceops::devices
