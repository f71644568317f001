// The vulkan allocator: vkAllocateMemory from the device-local memory type VulkanDevice chose.
#include "devices/vulkan/vulkan_allocator.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <functional>
#include <mutex>
#include <set>

#include "devices/pattern.h"
#include "devices/vulkan/vulkan_device.h"

namespace deviceops::devices {
namespace {

constexpr std::uint64_t kWindowBytes = 64ULL << 20;  // map / staging copy granularity
constexpr std::uint64_t kFenceTimeoutNs = 60'000'000'000ULL;

static_assert(sizeof(VkDeviceMemory) == sizeof(std::uintptr_t), "64-bit Vulkan handles expected");
VkDeviceMemory toMemory(std::uintptr_t handle) { return std::bit_cast<VkDeviceMemory>(handle); }
std::uintptr_t toHandle(VkDeviceMemory memory) { return std::bit_cast<std::uintptr_t>(memory); }

Error vulkanError(VkResult result, const std::string& what) {
  ErrorCode code = ErrorCode::kInternal;
  switch (result) {
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
    case VK_ERROR_OUT_OF_HOST_MEMORY:
    case VK_ERROR_TOO_MANY_OBJECTS:
      code = ErrorCode::kResourceExhausted;
      break;
    case VK_ERROR_DEVICE_LOST:
      code = ErrorCode::kUnavailable;
      break;
    default:
      break;
  }
  return makeError(code, fmt::format("{} failed: {}", what, vulkanResultName(result)));
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The transfer objects of one staging verify: a persistently mapped host-visible buffer, a
// command buffer and a fence. Destroyed together. Not thread-safe (the caller holds the queue).
class StagingSession {
 public:
  explicit StagingSession(const VulkanDevice& device)
      : device_(device), fns_(device.functions()), vk_(device.device()) {}
  ~StagingSession() {
    if (fence_ != VK_NULL_HANDLE) fns_.destroyFence(vk_, fence_, nullptr);
    if (pool_ != VK_NULL_HANDLE) fns_.destroyCommandPool(vk_, pool_, nullptr);
    if (buffer_ != VK_NULL_HANDLE) fns_.destroyBuffer(vk_, buffer_, nullptr);
    if (memory_ != VK_NULL_HANDLE) fns_.freeMemory(vk_, memory_, nullptr);  // unmaps too
  }
  StagingSession(const StagingSession&) = delete;
  StagingSession& operator=(const StagingSession&) = delete;

  // Creates a staging buffer of `bytes` in HOST_VISIBLE|HOST_COHERENT memory (HOST_CACHED
  // preferred, for the read pass) and maps it.
  Status init(std::uint64_t bytes) {
    VkResult result = createBuffer(bytes, &buffer_);
    if (result != VK_SUCCESS) return vulkanError(result, "vkCreateBuffer (staging)");
    VkMemoryRequirements requirements{};
    fns_.getBufferMemoryRequirements(vk_, buffer_, &requirements);
    const VkPhysicalDeviceMemoryProperties& memory = device_.memoryProperties();
    constexpr VkMemoryPropertyFlags kNeeded =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    std::optional<std::uint32_t> type;
    for (std::uint32_t i = 0; i < memory.memoryTypeCount; ++i) {
      const VkMemoryPropertyFlags flags = memory.memoryTypes[i].propertyFlags;
      if ((requirements.memoryTypeBits & (1u << i)) == 0 || (flags & kNeeded) != kNeeded) continue;
      const bool cached = (flags & VK_MEMORY_PROPERTY_HOST_CACHED_BIT) != 0;
      if (!type || (cached && (memory.memoryTypes[*type].propertyFlags &
                               VK_MEMORY_PROPERTY_HOST_CACHED_BIT) == 0)) {
        type = i;
      }
    }
    if (!type) {
      return makeError(ErrorCode::kInvalidArgument,
                       "verify needs host-visible memory for staging, and this device has none");
    }
    VkMemoryAllocateInfo allocateInfo{};
    allocateInfo.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO;
    allocateInfo.allocationSize = requirements.size;
    allocateInfo.memoryTypeIndex = *type;
    result = fns_.allocateMemory(vk_, &allocateInfo, nullptr, &memory_);
    if (result != VK_SUCCESS) return vulkanError(result, "vkAllocateMemory (staging)");
    result = fns_.bindBufferMemory(vk_, buffer_, memory_, 0);
    if (result != VK_SUCCESS) return vulkanError(result, "vkBindBufferMemory (staging)");
    result = fns_.mapMemory(vk_, memory_, 0, VK_WHOLE_SIZE, 0, &mapped_);
    if (result != VK_SUCCESS) return vulkanError(result, "vkMapMemory (staging)");

    VkCommandPoolCreateInfo poolInfo{};
    poolInfo.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO;
    poolInfo.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    poolInfo.queueFamilyIndex = device_.queueFamily();
    result = fns_.createCommandPool(vk_, &poolInfo, nullptr, &pool_);
    if (result != VK_SUCCESS) return vulkanError(result, "vkCreateCommandPool");
    VkCommandBufferAllocateInfo commandInfo{};
    commandInfo.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO;
    commandInfo.commandPool = pool_;
    commandInfo.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    commandInfo.commandBufferCount = 1;
    result = fns_.allocateCommandBuffers(vk_, &commandInfo, &commands_);
    if (result != VK_SUCCESS) return vulkanError(result, "vkAllocateCommandBuffers");
    VkFenceCreateInfo fenceInfo{};
    fenceInfo.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO;
    result = fns_.createFence(vk_, &fenceInfo, nullptr, &fence_);
    if (result != VK_SUCCESS) return vulkanError(result, "vkCreateFence");
    return Status::success();
  }

  void* mapped() const { return mapped_; }

  // Copies `bytes` between the staging buffer and block offset `offset` of `block` (of
  // `blockBytes`), in the direction given, and waits for the copy to finish.
  Status transfer(VkDeviceMemory block, std::uint64_t blockBytes, std::uint64_t offset,
                  std::uint64_t bytes, bool toDevice) {
    VkBuffer window = VK_NULL_HANDLE;
    VkResult result = createBuffer(bytes, &window);
    if (result != VK_SUCCESS) return vulkanError(result, "vkCreateBuffer (block window)");
    struct Destroy {
      const StagingSession& self;
      VkBuffer buffer;
      ~Destroy() { self.fns_.destroyBuffer(self.vk_, buffer, nullptr); }
    } destroy{*this, window};
    VkMemoryRequirements requirements{};
    fns_.getBufferMemoryRequirements(vk_, window, &requirements);
    if ((requirements.memoryTypeBits & (1u << device_.memory().typeIndex)) == 0 ||
        offset % requirements.alignment != 0 || offset + requirements.size > blockBytes) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("verify cannot bind a transfer buffer to this block at offset "
                                   "{} (the device needs {}-byte alignment and size multiples)",
                                   offset, requirements.alignment));
    }
    result = fns_.bindBufferMemory(vk_, window, block, offset);
    if (result != VK_SUCCESS) return vulkanError(result, "vkBindBufferMemory (block window)");

    VkCommandBufferBeginInfo begin{};
    begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
    begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    result = fns_.beginCommandBuffer(commands_, &begin);
    if (result != VK_SUCCESS) return vulkanError(result, "vkBeginCommandBuffer");
    const VkBufferCopy region{0, 0, bytes};
    fns_.cmdCopyBuffer(commands_, toDevice ? buffer_ : window, toDevice ? window : buffer_, 1,
                       &region);
    result = fns_.endCommandBuffer(commands_);
    if (result != VK_SUCCESS) return vulkanError(result, "vkEndCommandBuffer");
    VkSubmitInfo submit{};
    submit.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO;
    submit.commandBufferCount = 1;
    submit.pCommandBuffers = &commands_;
    result = fns_.queueSubmit(device_.queue(), 1, &submit, fence_);
    if (result != VK_SUCCESS) return vulkanError(result, "vkQueueSubmit");
    result = fns_.waitForFences(vk_, 1, &fence_, VK_TRUE, kFenceTimeoutNs);
    if (result == VK_TIMEOUT) {
      // The copy may still be running: the buffers must not be destroyed under it.
      spdlog::error("vulkan verify: a staging copy did not finish in 60 s; leaking its objects");
      fence_ = VK_NULL_HANDLE;
      pool_ = VK_NULL_HANDLE;
      buffer_ = VK_NULL_HANDLE;
      memory_ = VK_NULL_HANDLE;
      destroy.buffer = VK_NULL_HANDLE;
      return makeError(ErrorCode::kDeadlineExceeded, "a staging copy did not finish in 60 s");
    }
    if (result != VK_SUCCESS) return vulkanError(result, "vkWaitForFences");
    result = fns_.resetFences(vk_, 1, &fence_);
    if (result != VK_SUCCESS) return vulkanError(result, "vkResetFences");
    return Status::success();
  }

 private:
  VkResult createBuffer(std::uint64_t bytes, VkBuffer* buffer) const {
    VkBufferCreateInfo info{};
    info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
    info.size = bytes;
    info.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    return fns_.createBuffer(vk_, &info, nullptr, buffer);
  }

  const VulkanDevice& device_;
  const VulkanDeviceFunctions& fns_;
  const VkDevice vk_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  void* mapped_ = nullptr;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer commands_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
};

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
    constexpr VkMemoryPropertyFlags kMappable =
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    if (!forceStaging_ && (device_->memory().flags & kMappable) == kMappable) {
      return verifyMapped(block);
    }
    return verifyThroughStaging(block);
  }

  std::optional<std::uint64_t> driverFreeBytes() override { return device_->budgetFreeBytes(); }

  std::uint64_t liveBytes() const override { return liveBytes_.load(std::memory_order_relaxed); }

 private:
  const VulkanDeviceFunctions& fns() const { return device_->functions(); }

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
    std::lock_guard<std::mutex> lock(queueMutex_);
    StagingSession staging(*device_);
    if (Status ready = staging.init(std::min(block.bytes, kWindowBytes)); !ready.ok()) {
      return ready.error();
    }
    const VkDeviceMemory memory = toMemory(block.handle);
    const std::uint64_t seed = nextVerifySeed();
    VerifyReport report;
    report.bytesTested = block.bytes;
    auto start = std::chrono::steady_clock::now();
    for (std::uint64_t offset = 0; offset < block.bytes; offset += kWindowBytes) {
      const std::uint64_t bytes = std::min(kWindowBytes, block.bytes - offset);
      writePattern(staging.mapped(), bytes, offset, seed);
      Status copied = staging.transfer(memory, block.bytes, offset, bytes, /*toDevice=*/true);
      if (!copied.ok()) return copied.error();
    }
    report.writeSeconds = secondsSince(start);
    start = std::chrono::steady_clock::now();
    for (std::uint64_t offset = 0; offset < block.bytes; offset += kWindowBytes) {
      const std::uint64_t bytes = std::min(kWindowBytes, block.bytes - offset);
      Status copied = staging.transfer(memory, block.bytes, offset, bytes, /*toDevice=*/false);
      if (!copied.ok()) return copied.error();
      addCheck(report, checkPattern(staging.mapped(), bytes, offset, seed));
    }
    report.readSeconds = secondsSince(start);
    return report;
  }

  const std::unique_ptr<VulkanDevice> device_;
  const std::string uuid_;
  const bool forceStaging_;
  std::atomic<std::uint64_t> liveBytes_{0};
  std::mutex mutex_;               // guards live_
  std::set<VkDeviceMemory> live_;  // blocks not yet released, freed by the destructor
  std::mutex queueMutex_;          // serialises staging verifies (the one queue)
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
