#include "devices/vulkan/vulkan_backend.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <regex>
#include <set>
#include <string>

#include "devices/vulkan/vulkan_format.h"

namespace deviceops::devices {
namespace {

const std::regex kUuidPattern("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$");

// Sets an environment variable for the scope, restoring (or unsetting) it afterwards.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) previous_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (previous_) {
      ::setenv(name_.c_str(), previous_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

const DeviceRecord* findLlvmpipe(const std::vector<DeviceRecord>& records) {
  for (const DeviceRecord& record : records) {
    if (record.name.find("llvmpipe") != std::string::npos) return &record;
  }
  return nullptr;
}

// Declared first: with --gtest_filter='Vulkan*' it creates the process's first Vulkan instance,
// so it includes loading the loader and every ICD.
TEST(VulkanBackendTest, ColdOpenAndPollTime) {
  const auto start = std::chrono::steady_clock::now();
  auto backend = makeVulkanBackend();
  const Status opened = backend->open();
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto records = backend->poll();
  const auto opened_and_polled = std::chrono::steady_clock::now();
  ASSERT_TRUE(records.ok()) << records.error().message;
  auto again = backend->poll();
  const auto polled_again = std::chrono::steady_clock::now();
  ASSERT_TRUE(again.ok());
  using Ms = std::chrono::duration<double, std::milli>;
  std::printf(
      "[ timing ] vulkan cold open()+poll(): %.1f ms for %zu device(s); next poll(): %.3f ms\n",
      Ms(opened_and_polled - start).count(), records->size(),
      Ms(polled_again - opened_and_polled).count());
}

TEST(VulkanBackendTest, FindsLavapipeWithWellFormedFacts) {
  auto backend = makeVulkanBackend();
  const Status opened = backend->open();
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto records = backend->poll();
  ASSERT_TRUE(records.ok()) << records.error().message;
  ASSERT_GE(records->size(), 1u);
  const DeviceRecord* lavapipe = findLlvmpipe(*records);
  ASSERT_NE(lavapipe, nullptr) << "mesa-vulkan-drivers (lavapipe) is expected on test machines";

  EXPECT_EQ(lavapipe->backend, "vulkan");
  EXPECT_EQ(lavapipe->type, DeviceType::kGpu);
  EXPECT_EQ(lavapipe->vendor, "Mesa");
  EXPECT_EQ(lavapipe->properties["vulkanDeviceType"], "cpu");
  EXPECT_GT(lavapipe->memory.totalBytes, 0u);
  EXPECT_TRUE(std::regex_match(lavapipe->uuid, kUuidPattern)) << lavapipe->uuid;
  EXPECT_EQ(lavapipe->localKey, lavapipe->uuid);
  EXPECT_GE(lavapipe->properties["computeQueueFamilyCount"].get<int>(), 1);
  EXPECT_GE(lavapipe->properties["computeQueueCount"].get<int>(), 1);
  EXPECT_EQ(lavapipe->properties["driverName"], "llvmpipe");
  EXPECT_TRUE(std::regex_match(lavapipe->properties["apiVersion"].get<std::string>(),
                               std::regex(R"(^1\.\d+\.\d+$)")));
  EXPECT_GT(lavapipe->properties["limits"]["maxComputeWorkGroupInvocations"].get<int>(), 0);
  EXPECT_GT(lavapipe->properties["limits"]["maxComputeSharedMemorySize"].get<int>(), 0);
  ASSERT_FALSE(lavapipe->properties["memoryHeaps"].empty());
  EXPECT_FALSE(lavapipe->queryError.has_value());
  // Without VK_EXT_memory_budget the driver says nothing about use: absent, not zero.
  if (!lavapipe->properties["memoryBudgetSupported"].get<bool>()) {
    EXPECT_FALSE(lavapipe->memory.usedBytes.has_value());
    EXPECT_FALSE(lavapipe->memory.freeBytes.has_value());
  }
}

TEST(VulkanBackendTest, TwoPollsAgreeOnStaticFacts) {
  auto backend = makeVulkanBackend();
  ASSERT_TRUE(backend->open().ok());
  auto first = backend->poll();
  auto second = backend->poll();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(first->size(), second->size());
  for (std::size_t i = 0; i < first->size(); ++i) {
    SCOPED_TRACE((*first)[i].name);
    const DeviceRecord& a = (*first)[i];
    const DeviceRecord& b = (*second)[i];
    EXPECT_EQ(a.localKey, b.localKey);
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.uuid, b.uuid);
    EXPECT_EQ(a.pciBusId, b.pciBusId);
    EXPECT_EQ(a.memory.totalBytes, b.memory.totalBytes);
    for (const char* key : {"driverVersion", "apiVersion", "queueFamilies", "limits"}) {
      EXPECT_EQ(a.properties[key], b.properties[key]) << key;
    }
  }
}

TEST(VulkanBackendTest, LocalKeysAreUniqueAndStableAcrossInstances) {
  auto first = makeVulkanBackend();
  auto second = makeVulkanBackend();
  ASSERT_TRUE(first->open().ok());
  ASSERT_TRUE(second->open().ok());
  auto a = first->poll();
  auto b = second->poll();
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ(a->size(), b->size());
  std::set<std::string> keys;
  for (std::size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].localKey, (*b)[i].localKey);
    EXPECT_TRUE(keys.insert((*a)[i].localKey).second) << "duplicate " << (*a)[i].localKey;
  }
}

TEST(VulkanBackendTest, BogusLibraryPathIsReportedWithThePath) {
  const std::string path = "/nonexistent/libvulkan-bogus.so.1";
  auto backend = makeVulkanBackend({.libraryPath = path});
  const Status opened = backend->open();
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(opened.error().message.find(path), std::string::npos) << opened.error().message;
  auto records = backend->poll();
  EXPECT_FALSE(records.ok());
}

TEST(VulkanBackendTest, MissingIcdIsHandledCleanly) {
  // VK_DRIVER_FILES takes precedence over VK_ICD_FILENAMES in newer loaders: set both.
  ScopedEnv icd("VK_ICD_FILENAMES", "/nonexistent.json");
  ScopedEnv driverFiles("VK_DRIVER_FILES", "/nonexistent.json");
  auto backend = makeVulkanBackend();
  const Status opened = backend->open();
  if (opened.ok()) {
    auto records = backend->poll();
    ASSERT_TRUE(records.ok());
    EXPECT_TRUE(records->empty());
  } else {
    EXPECT_EQ(opened.error().code, ErrorCode::kUnavailable);
    const std::string& message = opened.error().message;
    EXPECT_TRUE(message.find("vkCreateInstance failed: VK_ERROR_") != std::string::npos ||
                message.find("no Vulkan physical devices") != std::string::npos)
        << message;
  }
}

TEST(VulkanFormatTest, DriverVersionDecoding) {
  struct Case {
    std::uint32_t vendorId;
    std::uint32_t version;
    const char* expected;
  };
  const Case cases[] = {
      // NVIDIA 10.8.8.6: 535.129.03 -> (535 << 22) | (129 << 14) | (3 << 6).
      {vulkan::kVendorNvidia, (535u << 22) | (129u << 14) | (3u << 6), "535.129.03"},
      {vulkan::kVendorNvidia, (550u << 22) | (54u << 14) | (14u << 6) | 2u, "550.54.14.2"},
      {vulkan::kVendorMesa, VK_MAKE_API_VERSION(0, 0, 0, 1), "0.0.1"},
      {vulkan::kVendorAmd, VK_MAKE_API_VERSION(0, 2, 0, 279), "2.0.279"},
      {vulkan::kVendorIntel, VK_MAKE_API_VERSION(0, 22, 3, 6), "22.3.6"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    EXPECT_EQ(vulkan::driverVersionString(c.vendorId, c.version), c.expected);
  }
}

TEST(VulkanFormatTest, VendorNames) {
  EXPECT_EQ(vulkan::vendorName(0x10DE), "NVIDIA");
  EXPECT_EQ(vulkan::vendorName(0x1002), "AMD");
  EXPECT_EQ(vulkan::vendorName(0x8086), "Intel");
  EXPECT_EQ(vulkan::vendorName(0x10005), "Mesa");
  EXPECT_EQ(vulkan::vendorName(0x13B5), "0x13b5");
}

TEST(VulkanFormatTest, UuidApiVersionAndPciFormatting) {
  const std::uint8_t bytes[VK_UUID_SIZE] = {0x6d, 0x65, 0x73, 0x61, 0x32, 0x32, 0x2e, 0x33,
                                            0x2e, 0x36, 0x00, 0x00, 0x00, 0x00, 0x00, 0xAB};
  EXPECT_EQ(vulkan::uuidString(bytes), "6d657361-3232-2e33-2e36-0000000000ab");
  const std::uint8_t zeros[VK_UUID_SIZE] = {};
  EXPECT_EQ(vulkan::uuidString(zeros), "");
  EXPECT_EQ(vulkan::apiVersionString(VK_MAKE_API_VERSION(0, 1, 3, 255)), "1.3.255");
  EXPECT_EQ(vulkan::pciBusIdString(0, 0x1b, 0, 0), "0000:1b:00.0");
  EXPECT_EQ(vulkan::resultName(VK_ERROR_INCOMPATIBLE_DRIVER), "VK_ERROR_INCOMPATIBLE_DRIVER");
  EXPECT_EQ(vulkan::resultName(static_cast<VkResult>(-12345)), "VkResult(-12345)");
  EXPECT_EQ(vulkan::physicalDeviceTypeName(VK_PHYSICAL_DEVICE_TYPE_CPU), "cpu");
  EXPECT_EQ(vulkan::physicalDeviceTypeName(VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU), "discrete");
}

}  // namespace
}  // namespace deviceops::devices
