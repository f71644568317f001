// Pure conversions from Vulkan's numeric answers to the strings deviceops reports. No Vulkan
// calls are made here, so every function is thread-safe and testable without a driver.
#pragma once

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>

#include <cstdint>
#include <span>
#include <string>

namespace deviceops::devices::vulkan {

// PCI vendor ids (and Khronos vendor ids above 0xFFFF) that Vulkan drivers report.
inline constexpr std::uint32_t kVendorNvidia = 0x10DE;
inline constexpr std::uint32_t kVendorAmd = 0x1002;
inline constexpr std::uint32_t kVendorIntel = 0x8086;
inline constexpr std::uint32_t kVendorMesa = 0x10005;  // VK_VENDOR_ID_MESA, used by lavapipe

// "NVIDIA" | "AMD" | "Intel" | "Mesa", else the id as lowercase hex ("0x13b5").
std::string vendorName(std::uint32_t vendorId);

// VkPhysicalDeviceProperties::driverVersion as a string. NVIDIA packs 10.8.8.6 bits and is
// printed the way nvidia-smi prints it ("535.129.03", a fourth part only when non-zero);
// everyone else uses VK_API_VERSION_MAJOR/MINOR/PATCH ("22.3.6").
std::string driverVersionString(std::uint32_t vendorId, std::uint32_t driverVersion);

// A VK_MAKE_API_VERSION value as "major.minor.patch" ("1.3.255"); the variant is ignored.
std::string apiVersionString(std::uint32_t apiVersion);

// "integrated" | "discrete" | "virtual" | "cpu" | "other".
std::string physicalDeviceTypeName(VkPhysicalDeviceType type);

// VK_ERROR_INCOMPATIBLE_DRIVER etc.; unknown values as "VkResult(<n>)".
std::string resultName(VkResult result);

// 16 bytes as lowercase "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"; "" when all bytes are zero
// (drivers that do not implement VkPhysicalDeviceIDProperties leave them zero).
std::string uuidString(std::span<const std::uint8_t, VK_UUID_SIZE> bytes);

// "0000:01:00.0": domain 4 hex digits, bus 2, device 2, function 1, lowercase.
std::string pciBusIdString(std::uint32_t domain, std::uint32_t bus, std::uint32_t device,
                           std::uint32_t function);

}  // namespace deviceops::devices::vulkan
