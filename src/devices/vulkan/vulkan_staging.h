// StagingSession: the transfer objects the vulkan allocator uses for copies it cannot do through
// a mapping: a persistently mapped host-visible staging buffer, one command buffer and a fence.
// Internal to the vulkan allocator.
//
// Copies between the staging buffer and a block go through a transfer buffer bound to the
// block's memory ("window") at the block offset rounded down to the buffer alignment, so any
// offset works; the window must fit inside the block (the device's buffer size granularity may
// keep the last bytes of a block whose size is not a multiple of it out of reach: that is
// kInvalidArgument, naming the alignment).
//
// Thread-safety: not thread-safe; the caller holds the allocator's queue mutex for the whole
// life of a session and every call on it (vkQueueSubmit needs external synchronisation).
#pragma once

#include <cstdint>

#include "common/result.h"
#include "devices/vulkan/vulkan_device.h"

namespace deviceops::devices {

class StagingSession {
 public:
  explicit StagingSession(const VulkanDevice& device);
  // Destroys every object, unless a copy timed out (abandoned()): then they are leaked, since
  // the device may still be using them.
  ~StagingSession();
  StagingSession(const StagingSession&) = delete;
  StagingSession& operator=(const StagingSession&) = delete;

  // Creates a staging buffer of `bytes` (>= 1) in HOST_VISIBLE|HOST_COHERENT memory
  // (HOST_CACHED preferred, for reads), maps it, and creates the command buffer and fence.
  // kInvalidArgument when the device has no host-visible memory; Vulkan errors otherwise.
  Status init(std::uint64_t bytes);

  void* mapped() const { return mapped_; }
  std::uint64_t bytes() const { return bytes_; }
  // True once a copy did not finish in time: the session must not be used again.
  bool abandoned() const { return abandoned_; }

  // Copies `bytes` (<= bytes()) between staging offset 0 and block offset `offset` of `block`
  // (of `blockBytes`), in the direction given, and waits for the copy to finish.
  Status transfer(VkDeviceMemory block, std::uint64_t blockBytes, std::uint64_t offset,
                  std::uint64_t bytes, bool toDevice);

  // Copies `bytes` from block offset `sourceOffset` of `source` to `destinationOffset` of
  // `destination` with one vkCmdCopyBuffer, and waits. The two ranges must not overlap in memory
  // (the caller bounces overlapping copies within one block through the staging buffer).
  Status copyBetween(VkDeviceMemory destination, std::uint64_t destinationBlockBytes,
                     std::uint64_t destinationOffset, VkDeviceMemory source,
                     std::uint64_t sourceBlockBytes, std::uint64_t sourceOffset,
                     std::uint64_t bytes);

 private:
  class Window;
  VkResult createBuffer(std::uint64_t bytes, VkBuffer* buffer) const;
  // Records `region` from `from` to `to`, submits it and waits for the fence.
  Status submitCopy(VkBuffer from, VkBuffer to, const VkBufferCopy& region);

  const VulkanDevice& device_;
  const VulkanDeviceFunctions& fns_;
  const VkDevice vk_;
  std::uint64_t bytes_ = 0;
  std::uint64_t alignment_ = 1;  // buffer offset alignment (same for every transfer buffer)
  bool abandoned_ = false;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  void* mapped_ = nullptr;
  VkCommandPool pool_ = VK_NULL_HANDLE;
  VkCommandBuffer commands_ = VK_NULL_HANDLE;
  VkFence fence_ = VK_NULL_HANDLE;
};

// Maps a VkResult to our errors: out of memory -> kResourceExhausted, device lost ->
// kUnavailable, anything else kInternal; the message names `what` and the result.
Error vulkanError(VkResult result, const std::string& what);

}  // namespace deviceops::devices
