#include "devices/vulkan/vulkan_format.h"

#include <fmt/format.h>

#include <algorithm>

namespace deviceops::devices::vulkan {

std::string vendorName(std::uint32_t vendorId) {
  switch (vendorId) {
    case kVendorNvidia:
      return "NVIDIA";
    case kVendorAmd:
      return "AMD";
    case kVendorIntel:
      return "Intel";
    case kVendorMesa:
      return "Mesa";
    default:
      return fmt::format("0x{:04x}", vendorId);
  }
}

std::string driverVersionString(std::uint32_t vendorId, std::uint32_t driverVersion) {
  if (vendorId == kVendorNvidia) {
    const std::uint32_t major = (driverVersion >> 22) & 0x3ff;
    const std::uint32_t minor = (driverVersion >> 14) & 0xff;
    const std::uint32_t patch = (driverVersion >> 6) & 0xff;
    const std::uint32_t build = driverVersion & 0x3f;
    if (build == 0) return fmt::format("{}.{}.{:02}", major, minor, patch);
    return fmt::format("{}.{}.{:02}.{}", major, minor, patch, build);
  }
  return fmt::format("{}.{}.{}", VK_API_VERSION_MAJOR(driverVersion),
                     VK_API_VERSION_MINOR(driverVersion), VK_API_VERSION_PATCH(driverVersion));
}

std::string apiVersionString(std::uint32_t apiVersion) {
  return fmt::format("{}.{}.{}", VK_API_VERSION_MAJOR(apiVersion), VK_API_VERSION_MINOR(apiVersion),
                     VK_API_VERSION_PATCH(apiVersion));
}

std::string physicalDeviceTypeName(VkPhysicalDeviceType type) {
  switch (type) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
      return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
      return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU:
      return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
      return "cpu";
    default:
      return "other";
  }
}

std::string resultName(VkResult result) {
  switch (result) {
    case VK_SUCCESS:
      return "VK_SUCCESS";
    case VK_INCOMPLETE:
      return "VK_INCOMPLETE";
    case VK_ERROR_OUT_OF_HOST_MEMORY:
      return "VK_ERROR_OUT_OF_HOST_MEMORY";
    case VK_ERROR_OUT_OF_DEVICE_MEMORY:
      return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
    case VK_ERROR_INITIALIZATION_FAILED:
      return "VK_ERROR_INITIALIZATION_FAILED";
    case VK_ERROR_DEVICE_LOST:
      return "VK_ERROR_DEVICE_LOST";
    case VK_ERROR_LAYER_NOT_PRESENT:
      return "VK_ERROR_LAYER_NOT_PRESENT";
    case VK_ERROR_EXTENSION_NOT_PRESENT:
      return "VK_ERROR_EXTENSION_NOT_PRESENT";
    case VK_ERROR_INCOMPATIBLE_DRIVER:
      return "VK_ERROR_INCOMPATIBLE_DRIVER";
    case VK_ERROR_UNKNOWN:
      return "VK_ERROR_UNKNOWN";
    default:
      return fmt::format("VkResult({})", static_cast<int>(result));
  }
}

std::string uuidString(std::span<const std::uint8_t, VK_UUID_SIZE> bytes) {
  if (std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; })) return "";
  std::string text;
  text.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += fmt::format("{:02x}", bytes[i]);
  }
  return text;
}

std::string pciBusIdString(std::uint32_t domain, std::uint32_t bus, std::uint32_t device,
                           std::uint32_t function) {
  return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", domain, bus, device, function);
}

}  // namespace deviceops::devices::vulkan
