// The vulkan allocator with its options. makeVulkanAllocator(uuid, libraryPath) in allocator.h
// is this with default options; the options exist for tests of the staging path.
//
// verify(): when the chosen memory type is HOST_VISIBLE|HOST_COHERENT the block is mapped in
// 64 MiB windows and tested in place; otherwise (discrete GPUs) the pattern goes through a
// host-visible staging buffer, copied with vkCmdCopyBuffer to and from buffers bound to the
// block, 64 MiB at a time. Transfers (write/read/copy) take the same two paths: memcpy/memmove
// through a mapping, or the staging buffer and vkCmdCopyBuffer (block to block: between two
// transfer buffers bound to the blocks; overlapping windows of one block bounce through staging).
// Staged verifies and transfers are serialised (one queue) and share one staging buffer, kept
// after first use; a block must not be verified twice at once or released during its verify.
#pragma once

#include <memory>
#include <string>

#include "devices/allocator.h"

namespace deviceops::devices {

struct VulkanAllocatorOptions {
  std::string libraryPath = "libvulkan.so.1";
  // Verify and transfer through the staging buffer even when the memory could be mapped (tests).
  bool verifyThroughStaging = false;
};

Result<std::unique_ptr<DeviceAllocator>> makeVulkanAllocator(const std::string& deviceUuid,
                                                             const VulkanAllocatorOptions& options);

}  // namespace deviceops::devices
