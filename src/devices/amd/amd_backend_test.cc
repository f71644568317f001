#include "devices/amd/amd_backend.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace deviceops::devices {
namespace {

namespace fs = std::filesystem;

const fs::path kTestdata = fs::path(DEVICEOPS_SOURCE_DIR) / "src/devices/amd/testdata";

// A private copy of the recorded sysfs tree that a test may change; removed at the end.
class TreeCopy {
 public:
  TreeCopy() {
    std::string pattern = (fs::temp_directory_path() / "amd_backend_test.XXXXXX").string();
    root_ = ::mkdtemp(pattern.data());
    fs::copy(kTestdata, root_, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  }
  ~TreeCopy() {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }
  TreeCopy(const TreeCopy&) = delete;
  TreeCopy& operator=(const TreeCopy&) = delete;

  AmdBackendOptions options() const { return {root_ / "sys"}; }
  fs::path path(const std::string& relative) const { return root_ / "sys" / relative; }
  void write(const std::string& relative, const std::string& text) const {
    std::ofstream(path(relative), std::ios::trunc) << text;
  }

 private:
  fs::path root_;
};

std::vector<DeviceRecord> openAndPoll(const AmdBackendOptions& options) {
  auto backend = makeAmdBackend(options);
  const Status status = backend->open();
  EXPECT_TRUE(status.ok()) << (status.ok() ? "" : status.error().message);
  if (!status.ok()) return {};
  auto records = backend->poll();
  EXPECT_TRUE(records.ok());
  return records.ok() ? *records : std::vector<DeviceRecord>{};
}

TEST(AmdBackendTest, RecordedTreeOfTwoGpus) {
  const auto records = openAndPoll({kTestdata / "sys"});
  ASSERT_EQ(records.size(), 2u);  // card2 is i915; card0-DP-1 and renderD128 are not cards

  const DeviceRecord& first = records[0];
  EXPECT_EQ(first.backend, "amd");
  EXPECT_EQ(first.localKey, "0000:03:00.0");
  EXPECT_EQ(first.pciBusId, "0000:03:00.0");
  EXPECT_EQ(first.type, DeviceType::kGpu);
  EXPECT_EQ(first.name, "AMD Radeon RX 6800/6800 XT / 6900 XT");  // product_name is empty
  EXPECT_EQ(first.vendor, "AMD");
  EXPECT_EQ(first.uuid, "");
  EXPECT_FALSE(first.queryError.has_value());
  EXPECT_EQ(first.memory.totalBytes, 17163091968u);
  EXPECT_EQ(first.memory.usedBytes, 1266544640u);
  EXPECT_EQ(first.memory.freeBytes, 17163091968u - 1266544640u);
  const Readings& readings = first.readings;
  EXPECT_EQ(readings.temperatureCelsius, 61.0);  // junction
  EXPECT_EQ(readings.slowdownTemperatureCelsius, 110.0);
  EXPECT_EQ(readings.shutdownTemperatureCelsius, 115.0);
  EXPECT_EQ(readings.utilizationRatio, 0.37);
  EXPECT_EQ(readings.memoryUtilizationRatio, 0.12);
  EXPECT_EQ(readings.powerWatts, 187.0);
  EXPECT_EQ(readings.powerLimitWatts, 203.0);
  EXPECT_EQ(readings.clockMhz, 1850.0);
  EXPECT_EQ(readings.clockMaxMhz, 2250.0);
  EXPECT_EQ(readings.memoryClockMhz, 1000.0);
  EXPECT_EQ(readings.memoryClockMaxMhz, 1000.0);
  EXPECT_EQ(readings.pcieLinkGeneration, 4);
  EXPECT_EQ(readings.pcieLinkWidth, 16);
  EXPECT_EQ(readings.pcieLinkGenerationMax, 4);
  EXPECT_EQ(readings.pcieLinkWidthMax, 16);
  const nlohmann::json firstProperties = {
      {"drmCard", "card0"},
      {"pciId", "1002:73bf"},
      {"uniqueId", "a1b2c3d4e5f60718"},
      {"vbiosVersion", "113-D4120100-100"},
      {"temperatureSensor", "junction"},
      {"edgeTemperatureCelsius", 52.0},
      {"junctionTemperatureCelsius", 61.0},
      {"memoryTemperatureCelsius", 58.0},
  };
  EXPECT_EQ(first.properties, firstProperties) << first.properties.dump(2);

  const DeviceRecord& second = records[1];
  EXPECT_EQ(second.localKey, "0000:0c:00.0");
  EXPECT_EQ(second.pciBusId, "0000:0c:00.0");
  EXPECT_EQ(second.name, "Radeon RX 6800 XT");  // from product_name
  EXPECT_FALSE(second.queryError.has_value());
  EXPECT_EQ(second.memory.totalBytes, 17163091968u);
  EXPECT_EQ(second.memory.usedBytes, 536870912u);
  EXPECT_EQ(second.readings.temperatureCelsius, 44.0);
  EXPECT_EQ(second.readings.utilizationRatio, 0.0);  // idle, which is not unknown
  EXPECT_EQ(second.readings.memoryUtilizationRatio, 0.03);
  EXPECT_EQ(second.readings.powerWatts, 9.0);  // power1_input: no power1_average on this one
  EXPECT_EQ(second.readings.powerLimitWatts, 255.0);
  EXPECT_EQ(second.readings.clockMhz, 500.0);
  EXPECT_EQ(second.readings.clockMaxMhz, 2475.0);
  EXPECT_EQ(second.readings.memoryClockMhz, 96.0);
  EXPECT_EQ(second.readings.pcieLinkGeneration, 3);
  EXPECT_EQ(second.readings.pcieLinkWidth, 8);
  EXPECT_EQ(second.readings.pcieLinkGenerationMax, 4);
  EXPECT_EQ(second.readings.pcieLinkWidthMax, 16);
  EXPECT_FALSE(second.properties.contains("uniqueId"));
  EXPECT_FALSE(second.properties.contains("vbiosVersion"));
  EXPECT_EQ(second.properties["drmCard"], "card1");
}

TEST(AmdBackendTest, FilesVanishingBetweenOpenAndPollGiveQueryError) {
  const std::string cases[] = {
      "class/drm/card1/device",
      "class/drm/card1/device/gpu_busy_percent",
      "class/drm/card1/device/hwmon",
      "class/drm/card1/device/uevent",
  };
  for (const std::string& removed : cases) {
    SCOPED_TRACE(removed);
    const TreeCopy tree;
    auto backend = makeAmdBackend(tree.options());
    ASSERT_TRUE(backend->open().ok());
    fs::remove_all(tree.path(removed));
    const auto records = backend->poll();
    ASSERT_TRUE(records.ok());
    ASSERT_EQ(records->size(), 2u);
    EXPECT_FALSE((*records)[0].queryError.has_value());
    EXPECT_EQ((*records)[0].readings.utilizationRatio, 0.37);
    const DeviceRecord& lost = (*records)[1];
    ASSERT_TRUE(lost.queryError.has_value());
    EXPECT_NE(lost.queryError->find("card1"), std::string::npos) << *lost.queryError;
    EXPECT_EQ(lost.localKey, "0000:0c:00.0");  // identity is kept for the Inventory
    EXPECT_EQ(lost.name, "Radeon RX 6800 XT");
    EXPECT_FALSE(lost.readings.utilizationRatio.has_value());
    EXPECT_FALSE(lost.memory.usedBytes.has_value());
  }
}

TEST(AmdBackendTest, GarbageInALiveFileOnlyLeavesThatReadingAbsent) {
  const TreeCopy tree;
  auto backend = makeAmdBackend(tree.options());
  ASSERT_TRUE(backend->open().ok());
  tree.write("class/drm/card0/device/gpu_busy_percent", "garbage\n");
  tree.write("class/drm/card0/device/pp_dpm_sclk", "0: 500Mhz\n1:");
  tree.write("class/drm/card0/device/hwmon/hwmon2/temp2_input", "");
  const auto records = backend->poll();
  ASSERT_TRUE(records.ok());
  const DeviceRecord& record = (*records)[0];
  EXPECT_FALSE(record.queryError.has_value());
  EXPECT_FALSE(record.readings.utilizationRatio.has_value());
  EXPECT_FALSE(record.readings.clockMhz.has_value());
  EXPECT_FALSE(record.readings.temperatureCelsius.has_value());
  EXPECT_EQ(record.readings.memoryUtilizationRatio, 0.12);
}

TEST(AmdBackendTest, DriverFromSymlinkOrUevent) {
  const struct {
    std::string name;
    std::string card;
    std::string uevent;  // replaces the card's uevent
    std::size_t expectedGpus;
  } cases[] = {
      // card0 has the driver symlink, so its uevent need not name the driver.
      {"symlink only", "card0", "PCI_ID=1002:73BF\nPCI_SLOT_NAME=0000:03:00.0\n", 2},
      // card1 has no symlink: without DRIVER=amdgpu it is not ours.
      {"no driver at all", "card1", "PCI_ID=1002:73BF\nPCI_SLOT_NAME=0000:0c:00.0\n", 1},
      {"other driver", "card1", "DRIVER=radeon\nPCI_ID=1002:73BF\nPCI_SLOT_NAME=0000:0c:00.0\n", 1},
      {"malformed uevent", "card1", "DRIVER=amdgpu\nPCI_SLOT_NAME=garbage\n", 1},
      // The same PCI function under two card folders is one GPU.
      {"duplicate slot", "card1", "DRIVER=amdgpu\nPCI_ID=1002:73BF\nPCI_SLOT_NAME=0000:03:00.0\n",
       1},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    const TreeCopy tree;
    tree.write("class/drm/" + testCase.card + "/device/uevent", testCase.uevent);
    EXPECT_EQ(openAndPoll(tree.options()).size(), testCase.expectedGpus);
  }
}

TEST(AmdBackendTest, NoAmdgpuCardsIsUnavailable) {
  const TreeCopy tree;
  fs::remove_all(tree.path("class/drm/card0"));
  fs::remove_all(tree.path("class/drm/card1"));
  const fs::path cases[] = {
      tree.path(""),                // only an i915 card, a connector and a render node
      tree.path("does/not/exist"),  // no class/drm at all
  };
  for (const fs::path& sysRoot : cases) {
    SCOPED_TRACE(sysRoot.string());
    auto backend = makeAmdBackend({sysRoot});
    EXPECT_EQ(backend->name(), "amd");
    const Status status = backend->open();
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, ErrorCode::kUnavailable);
    EXPECT_EQ(status.error().message, "no amdgpu devices found");
    EXPECT_FALSE(backend->poll().ok());
  }
}

TEST(AmdBackendTest, RealSysfsOfThisMachineDoesNotCrash) {
  auto backend = makeAmdBackend();
  const Status status = backend->open();
  if (!status.ok()) {
    EXPECT_EQ(status.error().code, ErrorCode::kUnavailable);
    return;
  }
  const auto records = backend->poll();
  ASSERT_TRUE(records.ok());
  for (const DeviceRecord& record : *records) {
    EXPECT_FALSE(record.pciBusId.empty());
    EXPECT_GT(record.memory.totalBytes, 0u);
  }
}

}  // namespace
}  // namespace deviceops::devices
