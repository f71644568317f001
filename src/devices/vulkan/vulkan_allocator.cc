// The vulkan allocator: vkAllocateMemory from the device-local memory type VulkanDevice chose.
#include "devices/vulkan/vulkan_allocator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>

#include "devices/pattern.h"
#include "devices/vulkan/vulkan_device.h"
#include "devices/vulkan/vulkan_staging.h"

namespace deviceops::devices {
namespace {

constexpr std::uint64_t kWindowBytes = 64ULL << 20;  // map / staging copy granularity
static_assert(sizeof(VkDeviceMemory) == sizeof(std::uintptr_t), "64-bit Vulkan handles expected");
VkDeviceMemory toMemory(std::uintptr_t handle) { return std::bit_cast<VkDeviceMemory>(handle); }
std::uintptr_t toHandle(VkDeviceMemory memory) { return std::bit_cast<std::uintptr_t>(memory); }

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class VulkanAllocator final : public DeviceAllocator {
 public:
  VulkanAllocator(std::unique_ptr<VulkanDevice> device, std::string uuid, bool forceStaging)
      : device_(std::move(device)), uuid_(std::move(uuid)), forceStaging_(forceStaging) {}

  ~VulkanAllocator() override {
    if (!live_.empty()) {
      spdlog::warn("vulkan allocator {}: freeing {} block(s) ({} bytes) still held at shutdown",
                   uuid_, live_.size(), liveBytes());
      for (VkDeviceMemory memory : live_) fns().freeMemory(device_->device(), memory, nullptr);
    }
  }

  std::string_view kind() const override { return "vulkan"; }

  Result<Block> allocate(std::uint64_t bytes, const AllocationOptions& options) override {
    if (Status valid = checkAllocationRequest(bytes, options, "device memory cannot be pinned");
        !valid.ok()) {
      return valid.error();
    }
    const std::optional<std::uint64_t> limit = device_->maxAllocationBytes();
    if (limit && bytes > *limit) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("{} bytes exceed the device's maxMemoryAllocationSize of {} "
                                   "bytes: allocate at most that much per block",
                                   bytes, *limit),
                       {{"maxAllocationBytes", *limit}});
    }
    const std::uint64_t heapBytes = device_->memory().heapBytes;
    if (bytes > heapBytes) {
      return makeError(
          ErrorCode::kResourceExhausted,
          fmt::format("{} bytes exceed the device-local heap of {} bytes", bytes, heapBytes),
          {{"heapBytes", heapBytes}});
    }
    VkMemoryAllocateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
    info.allocationSize = bytes;
    info.memoryTypeIndex = device_->memory().typeIndex;
    VkDeviceMemory memory = VK_NULL_HANDLE;
    const VkResult result = fns().allocateMemory(device_->device(), &info, nullptr, &memory);
    if (result != VK_SUCCESS) {
      return vulkanError(result, fmt::format("vkAllocateMemory of {} bytes", bytes));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.insert(memory);
    }
    liveBytes_.fetch_add(bytes, std::memory_order_relaxed);
    Block block;
    block.bytes = bytes;
    block.handle = toHandle(memory);
    return block;
  }

  void release(const Block& block) override {
    const VkDeviceMemory memory = toMemory(block.handle);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.erase(memory);
    }
    fns().freeMemory(device_->device(), memory, nullptr);
    liveBytes_.fetch_sub(block.bytes, std::memory_order_relaxed);
  }

  Result<VerifyReport> verify(const Block& block) override {
    if (mappable()) return verifyMapped(block);
    return verifyThroughStaging(block);
  }

  std::optional<std::uint64_t> driverFreeBytes() override { return device_->budgetFreeBytes(); }

  std::uint64_t liveBytes() const override { return liveBytes_.load(std::memory_order_relaxed); }

  Status write(const Block& block, std::uint64_t offset, const void* source,
               std::uint64_t bytes) override {
    RETURN_IF_ERROR(checkTransferRange(block.bytes, offset, bytes));
    if (bytes == 0) return Status::success();
    const auto* from = static_cast<const unsigned char*>(source);
    if (mappable()) {
      return forEachMappedWindow(block, offset, bytes,
                                 [&](void* mapped, std::uint64_t done, std::uint64_t chunk) {
                                   std::memcpy(mapped, from + done, chunk);
                                 });
    }
    return throughStaging(bytes, [&](StagingSession& staging) -> Status {
      for (std::uint64_t done = 0; done < bytes; done += staging.bytes()) {
        const std::uint64_t chunk = std::min(staging.bytes(), bytes - done);
        std::memcpy(staging.mapped(), from + done, chunk);
        RETURN_IF_ERROR(staging.transfer(toMemory(block.handle), block.bytes, offset + done, chunk,
                                         /*toDevice=*/true));
      }
      return Status::success();
    });
  }

  Status read(const Block& block, std::uint64_t offset, void* destination,
              std::uint64_t bytes) override {
    RETURN_IF_ERROR(checkTransferRange(block.bytes, offset, bytes));
    if (bytes == 0) return Status::success();
    auto* to = static_cast<unsigned char*>(destination);
    if (mappable()) {
      return forEachMappedWindow(block, offset, bytes,
                                 [&](void* mapped, std::uint64_t done, std::uint64_t chunk) {
                                   std::memcpy(to + done, mapped, chunk);
                                 });
    }
    return throughStaging(bytes, [&](StagingSession& staging) -> Status {
      for (std::uint64_t done = 0; done < bytes; done += staging.bytes()) {
        const std::uint64_t chunk = std::min(staging.bytes(), bytes - done);
        RETURN_IF_ERROR(staging.transfer(toMemory(block.handle), block.bytes, offset + done, chunk,
                                         /*toDevice=*/false));
        std::memcpy(to + done, staging.mapped(), chunk);
      }
      return Status::success();
    });
  }

  // Overlapping ranges of one block copy as memmove would.
  Status copy(const Block& destination, std::uint64_t destinationOffset, const Block& source,
              std::uint64_t sourceOffset, std::uint64_t bytes) override {
    RETURN_IF_ERROR(checkTransferRange(destination.bytes, destinationOffset, bytes));
    RETURN_IF_ERROR(checkTransferRange(source.bytes, sourceOffset, bytes));
    if (bytes == 0) return Status::success();
    if (mappable()) return copyMapped(destination, destinationOffset, source, sourceOffset, bytes);
    return copyThroughQueue(destination, destinationOffset, source, sourceOffset, bytes);
  }

 private:
  const VulkanDeviceFunctions& fns() const { return device_->functions(); }

  // Host-visible, coherent memory (and staging not forced): transfers map the block.
  bool mappable() const {
    constexpr VkMemoryPropertyFlags kMappable =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    return !forceStaging_ && (device_->memory().flags & kMappable) == kMappable;
  }

  // Maps block bytes [offset, offset + bytes) window by window and calls `each` with the mapped
  // window, how far into the range it starts, and its size.
  Status forEachMappedWindow(const Block& block, std::uint64_t offset, std::uint64_t bytes,
                             const std::function<void(void*, std::uint64_t, std::uint64_t)>& each) {
    const VkDeviceMemory memory = toMemory(block.handle);
    for (std::uint64_t done = 0; done < bytes; done += kWindowBytes) {
      const std::uint64_t chunk = std::min(kWindowBytes, bytes - done);
      void* mapped = nullptr;
      const VkResult result =
          fns().mapMemory(device_->device(), memory, offset + done, chunk, 0, &mapped);
      if (result != VK_SUCCESS) return vulkanError(result, "vkMapMemory");
      each(mapped, done, chunk);
      fns().unmapMemory(device_->device(), memory);
    }
    return Status::success();
  }

  Status copyMapped(const Block& destination, std::uint64_t destinationOffset, const Block& source,
                    std::uint64_t sourceOffset, std::uint64_t bytes) {
    if (destination.handle == source.handle) {
      // One memory object is mapped once: map the span that holds both ranges.
      const std::uint64_t low = std::min(destinationOffset, sourceOffset);
      const std::uint64_t high = std::max(destinationOffset, sourceOffset) + bytes;
      return withMapping(source, low, high - low, [&](unsigned char* mapped) {
        std::memmove(mapped + (destinationOffset - low), mapped + (sourceOffset - low), bytes);
      });
    }
    for (std::uint64_t done = 0; done < bytes; done += kWindowBytes) {
      const std::uint64_t chunk = std::min(kWindowBytes, bytes - done);
      Status written = Status::success();
      RETURN_IF_ERROR(withMapping(source, sourceOffset + done, chunk, [&](unsigned char* from) {
        written = withMapping(destination, destinationOffset + done, chunk,
                              [&](unsigned char* to) { std::memcpy(to, from, chunk); });
      }));
      RETURN_IF_ERROR(written);
    }
    return Status::success();
  }

  // Maps block bytes [offset, offset + bytes) in one piece and calls `each` on it.
  Status withMapping(const Block& block, std::uint64_t offset, std::uint64_t bytes,
                     const std::function<void(unsigned char*)>& each) {
    void* mapped = nullptr;
    const VkResult result =
        fns().mapMemory(device_->device(), toMemory(block.handle), offset, bytes, 0, &mapped);
    if (result != VK_SUCCESS) return vulkanError(result, "vkMapMemory");
    each(static_cast<unsigned char*>(mapped));
    fns().unmapMemory(device_->device(), toMemory(block.handle));
    return Status::success();
  }

  // Device memory the host cannot map: vkCmdCopyBuffer between windows bound to the blocks,
  // window by window, in the order memmove needs when the ranges share one block. A window pair
  // that overlaps in memory is bounced through the staging buffer (vkCmdCopyBuffer forbids
  // overlapping regions).
  Status copyThroughQueue(const Block& destination, std::uint64_t destinationOffset,
                          const Block& source, std::uint64_t sourceOffset, std::uint64_t bytes) {
    const bool sameBlock = destination.handle == source.handle;
    const std::uint64_t distance = destinationOffset > sourceOffset
                                       ? destinationOffset - sourceOffset
                                       : sourceOffset - destinationOffset;
    const bool backwards = sameBlock && destinationOffset > sourceOffset;
    return throughStaging(std::min(bytes, kWindowBytes), [&](StagingSession& staging) -> Status {
      const std::uint64_t windows = (bytes + kWindowBytes - 1) / kWindowBytes;
      for (std::uint64_t step = 0; step < windows; ++step) {
        const std::uint64_t window = backwards ? windows - 1 - step : step;
        const std::uint64_t done = window * kWindowBytes;
        const std::uint64_t chunk = std::min(kWindowBytes, bytes - done);
        if (sameBlock && distance < chunk) {
          RETURN_IF_ERROR(staging.transfer(toMemory(source.handle), source.bytes,
                                           sourceOffset + done, chunk, /*toDevice=*/false));
          RETURN_IF_ERROR(staging.transfer(toMemory(destination.handle), destination.bytes,
                                           destinationOffset + done, chunk, /*toDevice=*/true));
        } else {
          RETURN_IF_ERROR(staging.copyBetween(toMemory(destination.handle), destination.bytes,
                                              destinationOffset + done, toMemory(source.handle),
                                              source.bytes, sourceOffset + done, chunk));
        }
      }
      return Status::success();
    });
  }

  // Runs `work` on the allocator's staging session (at least min(bytes, kWindowBytes) of
  // staging), holding the queue for its duration. A session that failed is dropped (leaked when
  // a copy timed out), so the next call starts with a fresh one.
  Status throughStaging(std::uint64_t bytes, const std::function<Status(StagingSession&)>& work) {
    std::lock_guard<std::mutex> lock(queueMutex_);
    const std::uint64_t needed = std::max<std::uint64_t>(1, std::min(bytes, kWindowBytes));
    if (staging_ == nullptr || staging_->bytes() < needed) {
      staging_.reset();
      auto fresh = std::make_unique<StagingSession>(*device_);
      RETURN_IF_ERROR(fresh->init(std::min(kWindowBytes, std::bit_ceil(needed))));
      staging_ = std::move(fresh);
    }
    Status done = work(*staging_);
    if (!done.ok()) staging_.reset();
    return done;
  }

  // Maps the block window by window and tests it in place.
  Result<VerifyReport> verifyMapped(const Block& block) {
    const VkDeviceMemory memory = toMemory(block.handle);
    const std::uint64_t seed = nextVerifySeed();
    VerifyReport report;
    report.bytesTested = block.bytes;
    // Runs `test` on each mapped window (its host address, size and block offset).
    auto pass = [&](const std::function<void(void*, std::uint64_t, std::uint64_t)>& test,
                    double& seconds) -> Status {
      const auto start = std::chrono::steady_clock::now();
      for (std::uint64_t offset = 0; offset < block.bytes; offset += kWindowBytes) {
        const std::uint64_t bytes = std::min(kWindowBytes, block.bytes - offset);
        void* mapped = nullptr;
        const VkResult result =
            fns().mapMemory(device_->device(), memory, offset, bytes, 0, &mapped);
        if (result != VK_SUCCESS) return vulkanError(result, "vkMapMemory");
        test(mapped, bytes, offset);
        fns().unmapMemory(device_->device(), memory);
      }
      seconds = secondsSince(start);
      return Status::success();
    };
    Status written = pass([&](void* data, std::uint64_t bytes,
                              std::uint64_t offset) { writePattern(data, bytes, offset, seed); },
                          report.writeSeconds);
    if (!written.ok()) return written.error();
    Status read = pass(
        [&](void* data, std::uint64_t bytes, std::uint64_t offset) {
          addCheck(report, checkPattern(data, bytes, offset, seed));
        },
        report.readSeconds);
    if (!read.ok()) return read.error();
    return report;
  }

  Result<VerifyReport> verifyThroughStaging(const Block& block) {
    const VkDeviceMemory memory = toMemory(block.handle);
    const std::uint64_t seed = nextVerifySeed();
    VerifyReport report;
    report.bytesTested = block.bytes;
    Status done = throughStaging(block.bytes, [&](StagingSession& staging) -> Status {
      const std::uint64_t window = staging.bytes();
      auto start = std::chrono::steady_clock::now();
      for (std::uint64_t offset = 0; offset < block.bytes; offset += window) {
        const std::uint64_t bytes = std::min(window, block.bytes - offset);
        writePattern(staging.mapped(), bytes, offset, seed);
        RETURN_IF_ERROR(staging.transfer(memory, block.bytes, offset, bytes, /*toDevice=*/true));
      }
      report.writeSeconds = secondsSince(start);
      start = std::chrono::steady_clock::now();
      for (std::uint64_t offset = 0; offset < block.bytes; offset += window) {
        const std::uint64_t bytes = std::min(window, block.bytes - offset);
        RETURN_IF_ERROR(staging.transfer(memory, block.bytes, offset, bytes, /*toDevice=*/false));
        addCheck(report, checkPattern(staging.mapped(), bytes, offset, seed));
      }
      report.readSeconds = secondsSince(start);
      return Status::success();
    });
    if (!done.ok()) return done.error();
    return report;
  }

  const std::unique_ptr<VulkanDevice> device_;
  const std::string uuid_;
  const bool forceStaging_;
  std::atomic<std::uint64_t> liveBytes_{0};
  std::mutex mutex_;               // guards live_
  std::set<VkDeviceMemory> live_;  // blocks not yet released, freed by the destructor
  std::mutex queueMutex_;  // serialises staging verifies and queue transfers (the one queue)
  std::unique_ptr<StagingSession> staging_;  // guarded by queueMutex_; made on first use
};

}  // namespace

Result<std::unique_ptr<DeviceAllocator>> makeVulkanAllocator(
    const std::string& deviceUuid, const VulkanAllocatorOptions& options) {
  auto device = VulkanDevice::create(deviceUuid, options.libraryPath);
  if (!device.ok()) return device.error();
  return std::unique_ptr<DeviceAllocator>(std::make_unique<VulkanAllocator>(
      std::move(device).value(), deviceUuid, options.verifyThroughStaging));
}

Result<std::unique_ptr<DeviceAllocator>> makeVulkanAllocator(const std::string& deviceUuid,
                                                             std::string libraryPath) {
  VulkanAllocatorOptions options;
  options.libraryPath = std::move(libraryPath);
  return makeVulkanAllocator(deviceUuid, options);
}

}  // namespace deviceops::devices
