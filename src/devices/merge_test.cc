#include "devices/merge.h"

#include <gtest/gtest.h>

namespace deviceops::devices {
namespace {

DeviceRecord record(std::string backend, std::string key, std::string uuid, std::string pci) {
  DeviceRecord r;
  r.backend = std::move(backend);
  r.localKey = std::move(key);
  r.uuid = std::move(uuid);
  r.pciBusId = std::move(pci);
  r.name = r.backend + " device";
  r.memory.totalBytes = 1000;
  r.properties = {{"from", r.backend}};
  return r;
}

TEST(MergeTest, DeviceIdsAreDerivedFromHardwareIdentity) {
  struct Case {
    DeviceRecord input;
    std::string expected;
  };
  DeviceRecord cpu = record("cpu", "0", "", "");
  cpu.type = DeviceType::kCpu;
  DeviceRecord simulated = record("simulated", "3", "", "");
  simulated.simulated = true;
  const Case cases[] = {
      {record("nvidia", "u", "3F2A9C1E-0B7D-4c11-9000-000000000001", "0000:01:00.0"),
       "gpu-0000-01-00-0"},
      {record("vulkan", "u", "3f2a9c1e-0b7d-4c11-9000-000000000001", ""), "gpu-3f2a9c1e0b7d"},
      {record("vulkan", "index:1", "00000000-0000-0000-0000-000000000000", ""), "vulkan-index-1"},
      {cpu, "cpu0"},
      {simulated, "sim-3"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.expected);
    EXPECT_EQ(deviceIdFor(c.input), c.expected);
  }
}

TEST(MergeTest, SameGpuFromNvmlAndVulkanAppearsOnceWithNvmlAsPrimary) {
  DeviceRecord vulkan = record("vulkan", "v", "aaaaaaaa-0000-0000-0000-000000000001", "");
  vulkan.readings.temperatureCelsius = 50;  // fills the gap NVML leaves
  DeviceRecord nvml = record("nvidia", "n", "AAAAAAAA-0000-0000-0000-000000000001", "0000:01:00.0");
  nvml.name = "NVIDIA H100";
  DeviceRecord other = record("vulkan", "w", "bbbbbbbb-0000-0000-0000-000000000002", "");
  auto merged = mergeRecords({vulkan, nvml, other});
  ASSERT_EQ(merged.size(), 2u);
  const MergedDevice& h100 = merged[0].id == "gpu-0000-01-00-0" ? merged[0] : merged[1];
  EXPECT_EQ(h100.record.name, "NVIDIA H100");
  EXPECT_EQ(h100.backends, (std::vector<std::string>{"nvidia", "vulkan"}));
  EXPECT_EQ(h100.record.readings.temperatureCelsius, 50);
  EXPECT_EQ(h100.record.properties["vulkan"]["from"], "vulkan");
  EXPECT_EQ(h100.record.properties["nvidia"]["from"], "nvidia");
}

TEST(MergeTest, AmdSysfsAndVulkanMergeByPciAddress) {
  auto merged =
      mergeRecords({record("amd", "0000:03:00.0", "", "0000:03:00.0"),
                    record("vulkan", "x", "cccccccc-0000-0000-0000-000000000003", "0000:03:00.0"),
                    record("amd", "0000:04:00.0", "", "0000:04:00.0")});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].id, "gpu-0000-03-00-0");
  EXPECT_EQ(merged[0].backends, (std::vector<std::string>{"amd", "vulkan"}));
  EXPECT_EQ(merged[0].record.uuid, "cccccccc-0000-0000-0000-000000000003");
}

TEST(MergeTest, RecordsOfOneBackendAndSimulatedOnesNeverMerge) {
  DeviceRecord a = record("simulated", "0", "", "");
  a.simulated = true;
  DeviceRecord b = record("simulated", "1", "", "");
  b.simulated = true;
  auto merged = mergeRecords({a, b, record("vulkan", "1", "d-1", "0000:05:00.0"),
                              record("vulkan", "2", "d-2", "0000:05:00.0")});
  ASSERT_EQ(merged.size(), 4u);
  EXPECT_EQ(merged[0].id, "gpu-0000-05-00-0");
  EXPECT_EQ(merged[1].id, "gpu-0000-05-00-0-2");  // a clash gets a suffix, never a duplicate
}

TEST(MergeTest, CpuSortsFirstAndSecondaryQueryErrorDoesNotMakeDeviceLost) {
  DeviceRecord cpu = record("cpu", "0", "", "");
  cpu.type = DeviceType::kCpu;
  DeviceRecord nvml = record("nvidia", "n", "", "0000:01:00.0");
  DeviceRecord vulkan = record("vulkan", "v", "", "0000:01:00.0");
  vulkan.queryError = "vkGetPhysicalDeviceMemoryProperties2 failed";
  auto merged = mergeRecords({nvml, vulkan, cpu});
  ASSERT_EQ(merged.size(), 2u);
  EXPECT_EQ(merged[0].id, "cpu0");
  EXPECT_FALSE(merged[1].record.queryError.has_value());
  EXPECT_EQ(merged[1].record.properties["vulkan"]["queryError"],
            "vkGetPhysicalDeviceMemoryProperties2 failed");
}

}  // namespace
}  // namespace deviceops::devices
