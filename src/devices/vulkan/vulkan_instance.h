// VulkanInstance: the dlopen'd Vulkan loader plus one VkInstance and the instance-level entry
// points the backend needs. Everything is resolved through vkGetInstanceProcAddr; nothing links
// against libvulkan.
//
// Thread-safety: immutable after create(); the Vulkan functions used here are safe to call from
// any thread for a live instance. Destruction must not race with any call.
#pragma once

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/shared_library.h"

namespace deviceops::devices::vulkan {

// Instance-level entry points. getPhysicalDeviceProperties2 / getPhysicalDeviceMemoryProperties2
// are the core 1.1 functions or their KHR aliases, and nullptr when neither is available.
struct VulkanFunctions {
  PFN_vkDestroyInstance destroyInstance = nullptr;
  PFN_vkEnumeratePhysicalDevices enumeratePhysicalDevices = nullptr;
  PFN_vkEnumerateDeviceExtensionProperties enumerateDeviceExtensionProperties = nullptr;
  PFN_vkGetPhysicalDeviceProperties getPhysicalDeviceProperties = nullptr;
  PFN_vkGetPhysicalDeviceMemoryProperties getPhysicalDeviceMemoryProperties = nullptr;
  PFN_vkGetPhysicalDeviceQueueFamilyProperties getPhysicalDeviceQueueFamilyProperties = nullptr;
  PFN_vkGetPhysicalDeviceProperties2 getPhysicalDeviceProperties2 = nullptr;
  PFN_vkGetPhysicalDeviceMemoryProperties2 getPhysicalDeviceMemoryProperties2 = nullptr;
};

class VulkanInstance {
 public:
  // Loads `libraryPath`, creates an instance (apiVersion 1.3 when the loader is 1.1+, else 1.0
  // with VK_KHR_get_physical_device_properties2 when offered) without layers of our own.
  // kUnavailable naming the cause: "cannot load <path>: ...",
  // "vkCreateInstance failed: VK_ERROR_INCOMPATIBLE_DRIVER", ...
  static Result<std::unique_ptr<VulkanInstance>> create(const std::string& libraryPath);

  ~VulkanInstance();
  VulkanInstance(const VulkanInstance&) = delete;
  VulkanInstance& operator=(const VulkanInstance&) = delete;

  // The apiVersion the instance was created with: device functionality is usable up to
  // min(this, VkPhysicalDeviceProperties::apiVersion).
  std::uint32_t apiVersion() const { return apiVersion_; }
  const VulkanFunctions& functions() const { return functions_; }

  // Every physical device the loader reports, in its order. kUnavailable on a VkResult error.
  Result<std::vector<VkPhysicalDevice>> physicalDevices() const;

  // Names of the device extensions `device` supports (empty if the query fails).
  std::vector<std::string> deviceExtensions(VkPhysicalDevice device) const;

 private:
  VulkanInstance() = default;

  std::shared_ptr<SharedLibrary> library_;  // outlives instance_: declared first
  VkInstance instance_ = VK_NULL_HANDLE;
  std::uint32_t apiVersion_ = VK_API_VERSION_1_0;
  VulkanFunctions functions_;
};

}  // namespace deviceops::devices::vulkan
