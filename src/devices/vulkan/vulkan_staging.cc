#include "devices/vulkan/vulkan_staging.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <optional>

namespace deviceops::devices {
namespace {

constexpr std::uint64_t kFenceTimeoutNs = 60'000'000'000ULL;

}  // namespace

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

// A transfer buffer bound to block memory [start, start + size) with start aligned, covering the
// caller's range at `innerOffset` inside the buffer. Destroyed with the scope unless the session
// was abandoned.
class StagingSession::Window {
 public:
  explicit Window(const StagingSession& session) : session_(session) {}
  ~Window() {
    if (buffer_ != VK_NULL_HANDLE && !session_.abandoned_) {
      session_.fns_.destroyBuffer(session_.vk_, buffer_, nullptr);
    }
  }
  Window(const Window&) = delete;
  Window& operator=(const Window&) = delete;

  Status bind(VkDeviceMemory block, std::uint64_t blockBytes, std::uint64_t offset,
              std::uint64_t bytes) {
    const std::uint64_t start = offset - offset % session_.alignment_;
    innerOffset_ = offset - start;
    VkResult result = session_.createBuffer(innerOffset_ + bytes, &buffer_);
    if (result != VK_SUCCESS) return vulkanError(result, "vkCreateBuffer (block window)");
    VkMemoryRequirements requirements{};
    session_.fns_.getBufferMemoryRequirements(session_.vk_, buffer_, &requirements);
    const std::uint32_t typeIndex = session_.device_.memory().typeIndex;
    if ((requirements.memoryTypeBits & (1u << typeIndex)) == 0 ||
        start % requirements.alignment != 0 || requirements.size > blockBytes - start) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("cannot bind a transfer buffer to block bytes [{}, {}) of a "
                                   "{}-byte block: the device needs {}-byte alignment and "
                                   "rounds the buffer to {} bytes",
                                   offset, offset + bytes, blockBytes, requirements.alignment,
                                   requirements.size),
                       {{"alignment", requirements.alignment}});
    }
    result = session_.fns_.bindBufferMemory(session_.vk_, buffer_, block, start);
    if (result != VK_SUCCESS) return vulkanError(result, "vkBindBufferMemory (block window)");
    return Status::success();
  }

  VkBuffer buffer() const { return buffer_; }
  std::uint64_t innerOffset() const { return innerOffset_; }

 private:
  const StagingSession& session_;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  std::uint64_t innerOffset_ = 0;
};

StagingSession::StagingSession(const VulkanDevice& device)
    : device_(device), fns_(device.functions()), vk_(device.device()) {}

StagingSession::~StagingSession() {
  if (abandoned_) return;
  if (fence_ != VK_NULL_HANDLE) fns_.destroyFence(vk_, fence_, nullptr);
  if (pool_ != VK_NULL_HANDLE) fns_.destroyCommandPool(vk_, pool_, nullptr);
  if (buffer_ != VK_NULL_HANDLE) fns_.destroyBuffer(vk_, buffer_, nullptr);
  if (memory_ != VK_NULL_HANDLE) fns_.freeMemory(vk_, memory_, nullptr);  // unmaps too
}

Status StagingSession::init(std::uint64_t bytes) {
  bytes_ = bytes;
  VkResult result = createBuffer(bytes, &buffer_);
  if (result != VK_SUCCESS) return vulkanError(result, "vkCreateBuffer (staging)");
  VkMemoryRequirements requirements{};
  fns_.getBufferMemoryRequirements(vk_, buffer_, &requirements);
  alignment_ = requirements.alignment > 0 ? requirements.alignment : 1;
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
                     "transfers need host-visible memory for staging, and this device has none");
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

Status StagingSession::transfer(VkDeviceMemory block, std::uint64_t blockBytes,
                                std::uint64_t offset, std::uint64_t bytes, bool toDevice) {
  Window window(*this);
  RETURN_IF_ERROR(window.bind(block, blockBytes, offset, bytes));
  if (toDevice) return submitCopy(buffer_, window.buffer(), {0, window.innerOffset(), bytes});
  return submitCopy(window.buffer(), buffer_, {window.innerOffset(), 0, bytes});
}

Status StagingSession::copyBetween(VkDeviceMemory destination, std::uint64_t destinationBlockBytes,
                                   std::uint64_t destinationOffset, VkDeviceMemory source,
                                   std::uint64_t sourceBlockBytes, std::uint64_t sourceOffset,
                                   std::uint64_t bytes) {
  Window from(*this);
  RETURN_IF_ERROR(from.bind(source, sourceBlockBytes, sourceOffset, bytes));
  Window to(*this);
  RETURN_IF_ERROR(to.bind(destination, destinationBlockBytes, destinationOffset, bytes));
  return submitCopy(from.buffer(), to.buffer(), {from.innerOffset(), to.innerOffset(), bytes});
}

Status StagingSession::submitCopy(VkBuffer from, VkBuffer to, const VkBufferCopy& region) {
  VkCommandBufferBeginInfo begin{};
  begin.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO;
  begin.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
  VkResult result = fns_.beginCommandBuffer(commands_, &begin);
  if (result != VK_SUCCESS) return vulkanError(result, "vkBeginCommandBuffer");
  fns_.cmdCopyBuffer(commands_, from, to, 1, &region);
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
    // The copy may still be running: nothing it uses may be destroyed under it.
    spdlog::error("vulkan allocator: a copy did not finish in 60 s; leaking its objects");
    abandoned_ = true;
    return makeError(ErrorCode::kDeadlineExceeded, "a device copy did not finish in 60 s");
  }
  if (result != VK_SUCCESS) return vulkanError(result, "vkWaitForFences");
  result = fns_.resetFences(vk_, 1, &fence_);
  if (result != VK_SUCCESS) return vulkanError(result, "vkResetFences");
  return Status::success();
}

VkResult StagingSession::createBuffer(std::uint64_t bytes, VkBuffer* buffer) const {
  VkBufferCreateInfo info{};
  info.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO;
  info.size = bytes;
  info.usage = VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  info.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  return fns_.createBuffer(vk_, &info, nullptr, buffer);
}

}  // namespace deviceops::devices
