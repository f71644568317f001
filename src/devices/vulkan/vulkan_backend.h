// Every Vulkan physical device, through libvulkan.so.1 opened with dlopen. On a machine without a
// GPU, Mesa's lavapipe (llvmpipe) is a real CPU-backed Vulkan device.
#pragma once

#include <memory>
#include <string>

#include "devices/device.h"

namespace deviceops::devices {

struct VulkanBackendOptions {
  std::string libraryPath = "libvulkan.so.1";
};

std::unique_ptr<Backend> makeVulkanBackend(VulkanBackendOptions options = {});

}  // namespace deviceops::devices
