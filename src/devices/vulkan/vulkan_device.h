// VulkanDevice: what the vulkan allocator needs of one physical device, opened by UUID: a
// VkDevice with one queue (for staging copies), the device-level entry points, and the memory
// type that allocations come from. Internal to the memory component.
//
// Memory type choice (chooseMemoryType): types whose heap is DEVICE_LOCAL, with no property
// flags beyond DEVICE_LOCAL/HOST_VISIBLE/HOST_COHERENT/HOST_CACHED, preferring those that can
// back a transfer buffer (needed to verify through staging). On a discrete GPU: prefer types that
// are not host-visible (the real VRAM, not the BAR window), then the largest heap. Elsewhere
// (integrated, cpu, virtual): prefer HOST_VISIBLE|HOST_COHERENT (verify maps it directly), then
// the largest heap. Ties go to the lower index (drivers list types in order of preference).
//
// Thread-safety: immutable after create(). Callers synchronise access to `queue` (vkQueueSubmit
// requires it); allocate/free/map of distinct VkDeviceMemory objects may run concurrently.
#pragma once

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "common/shared_library.h"
#include "devices/vulkan/vulkan_instance.h"

namespace deviceops::devices {

// Device-level entry points, resolved with vkGetDeviceProcAddr; all non-null after create().
struct VulkanDeviceFunctions {
  PFN_vkDestroyDevice destroyDevice = nullptr;
  PFN_vkGetDeviceQueue getDeviceQueue = nullptr;
  PFN_vkAllocateMemory allocateMemory = nullptr;
  PFN_vkFreeMemory freeMemory = nullptr;
  PFN_vkMapMemory mapMemory = nullptr;
  PFN_vkUnmapMemory unmapMemory = nullptr;
  PFN_vkCreateBuffer createBuffer = nullptr;
  PFN_vkDestroyBuffer destroyBuffer = nullptr;
  PFN_vkGetBufferMemoryRequirements getBufferMemoryRequirements = nullptr;
  PFN_vkBindBufferMemory bindBufferMemory = nullptr;
  PFN_vkCreateCommandPool createCommandPool = nullptr;
  PFN_vkDestroyCommandPool destroyCommandPool = nullptr;
  PFN_vkAllocateCommandBuffers allocateCommandBuffers = nullptr;
  PFN_vkBeginCommandBuffer beginCommandBuffer = nullptr;
  PFN_vkEndCommandBuffer endCommandBuffer = nullptr;
  PFN_vkCmdCopyBuffer cmdCopyBuffer = nullptr;
  PFN_vkQueueSubmit queueSubmit = nullptr;
  PFN_vkCreateFence createFence = nullptr;
  PFN_vkDestroyFence destroyFence = nullptr;
  PFN_vkWaitForFences waitForFences = nullptr;
  PFN_vkResetFences resetFences = nullptr;
};

// The memory type allocations use, and the facts about it that allocate/verify need.
struct VulkanMemoryChoice {
  std::uint32_t typeIndex = 0;
  VkMemoryPropertyFlags flags = 0;
  std::uint32_t heapIndex = 0;
  std::uint64_t heapBytes = 0;
  bool bufferCompatible = false;  // a transfer buffer can be bound to it (staging verify)
};

// Pure: picks the memory type (see the header comment). nullopt when no type has a
// DEVICE_LOCAL heap. `bufferTypeBits`: memoryTypeBits of a transfer buffer (all ones if unknown).
std::optional<VulkanMemoryChoice> chooseMemoryType(const VkPhysicalDeviceMemoryProperties& memory,
                                                   std::uint32_t bufferTypeBits, bool discrete);

class VulkanDevice {
 public:
  // Opens the loader at `libraryPath`, finds the physical device whose deviceUUID formats as
  // `uuid` (devices/vulkan/vulkan_format.h) and creates the logical device. kUnavailable when
  // the loader or device cannot be opened; kNotFound when no device has that UUID.
  static Result<std::unique_ptr<VulkanDevice>> create(const std::string& uuid,
                                                      const std::string& libraryPath);
  ~VulkanDevice();  // precondition: every VkDeviceMemory of this device has been freed
  VulkanDevice(const VulkanDevice&) = delete;
  VulkanDevice& operator=(const VulkanDevice&) = delete;

  VkDevice device() const { return device_; }
  VkQueue queue() const { return queue_; }
  std::uint32_t queueFamily() const { return queueFamily_; }
  const VulkanDeviceFunctions& functions() const { return functions_; }
  const VulkanMemoryChoice& memory() const { return memory_; }
  // The physical device's memory types and heaps.
  const VkPhysicalDeviceMemoryProperties& memoryProperties() const { return memoryProperties_; }
  // VkPhysicalDeviceMaintenance3Properties::maxMemoryAllocationSize, when the device reports it.
  std::optional<std::uint64_t> maxAllocationBytes() const { return maxAllocationBytes_; }
  // VK_EXT_memory_budget: heapBudget - heapUsage of the chosen heap, in bytes; nullopt when the
  // device lacks the extension.
  std::optional<std::uint64_t> budgetFreeBytes() const;

 private:
  VulkanDevice() = default;
  Status createLogicalDevice(const std::string& libraryPath, bool enableBudget);

  std::unique_ptr<devices::vulkan::VulkanInstance> instance_;  // destroyed after device_
  std::shared_ptr<SharedLibrary> loader_;  // the loader's exported vkCreateDevice et al.
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  std::uint32_t queueFamily_ = 0;
  VulkanDeviceFunctions functions_;
  VkPhysicalDeviceMemoryProperties memoryProperties_{};
  VulkanMemoryChoice memory_;
  std::optional<std::uint64_t> maxAllocationBytes_;
  bool hasBudget_ = false;
};

// "VK_ERROR_OUT_OF_DEVICE_MEMORY" etc. (devices/vulkan/vulkan_format.h).
std::string vulkanResultName(VkResult result);

}  // namespace deviceops::devices
