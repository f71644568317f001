#include "devices/cpu/cpu_backend.h"

#include <gtest/gtest.h>
#include <sys/utsname.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace deviceops::devices {
namespace {

namespace fs = std::filesystem;

const fs::path kTestdata = fs::path(DEVICEOPS_SOURCE_DIR) / "src/devices/cpu/testdata";

// A private copy of the recorded tree that a test may change; removed at the end of the test.
class TreeCopy {
 public:
  TreeCopy() {
    std::string pattern = (fs::temp_directory_path() / "cpu_backend_test.XXXXXX").string();
    root_ = ::mkdtemp(pattern.data());
    fs::copy(kTestdata, root_, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  }
  ~TreeCopy() {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }
  TreeCopy(const TreeCopy&) = delete;
  TreeCopy& operator=(const TreeCopy&) = delete;

  CpuBackendOptions options() const { return {root_ / "proc", root_ / "sys"}; }
  fs::path path(const std::string& relative) const { return root_ / relative; }
  void write(const std::string& relative, const std::string& text) const {
    std::ofstream(root_ / relative, std::ios::trunc) << text;
  }

 private:
  fs::path root_;
};

DeviceRecord pollOne(Backend& backend) {
  auto records = backend.poll();
  EXPECT_TRUE(records.ok()) << (records.ok() ? "" : records.error().message);
  if (!records.ok() || records->size() != 1) {
    ADD_FAILURE() << "expected exactly one cpu record";
    return {};
  }
  return records->front();
}

std::string unameMachine() {
  utsname names{};
  return ::uname(&names) == 0 ? names.machine : "";
}

TEST(CpuBackendTest, RecordedTwoSocketTree) {
  auto backend = makeCpuBackend({kTestdata / "proc", kTestdata / "sys"});
  EXPECT_EQ(backend->name(), "cpu");
  ASSERT_TRUE(backend->open().ok());
  const DeviceRecord record = pollOne(*backend);

  EXPECT_EQ(record.backend, "cpu");
  EXPECT_EQ(record.localKey, "0");
  EXPECT_EQ(record.type, DeviceType::kCpu);
  EXPECT_EQ(record.name, "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz");
  EXPECT_EQ(record.vendor, "Intel");
  EXPECT_EQ(record.uuid, "");
  EXPECT_EQ(record.pciBusId, "");
  EXPECT_FALSE(record.simulated);
  EXPECT_FALSE(record.queryError.has_value());

  EXPECT_EQ(record.memory.totalBytes, 197603908ull * 1024);
  EXPECT_EQ(record.memory.freeBytes, 180235616ull * 1024);
  EXPECT_EQ(record.memory.usedBytes, (197603908ull - 180235616ull) * 1024);

  const Readings& readings = record.readings;
  EXPECT_EQ(readings.temperatureCelsius, 47.0);           // hottest coretemp package, hwmon2
  EXPECT_EQ(readings.slowdownTemperatureCelsius, 100.0);  // temp1_crit, TjMax
  EXPECT_FALSE(readings.shutdownTemperatureCelsius.has_value());
  EXPECT_FALSE(readings.utilizationRatio.has_value());  // /proc/stat did not move since open()
  EXPECT_EQ(readings.clockMhz, 2125.0);
  EXPECT_EQ(readings.clockMaxMhz, 3700.0);
  EXPECT_FALSE(readings.powerWatts.has_value());

  const nlohmann::json expected = {
      {"sockets", 2},
      {"cores", 4},
      {"threads", 8},
      {"numaNodes", {0, 1}},
      {"vendorId", "GenuineIntel"},
      {"cpuinfoMhz", 2125.0},
      {"frequencyMaxMhz", 3700.0},
      {"frequencyMinMhz", 1000.0},
      {"temperatureSource", "hwmon"},
      {"architecture", unameMachine()},
  };
  EXPECT_EQ(record.properties, expected) << record.properties.dump(2);
}

TEST(CpuBackendTest, UtilizationComesFromConsecutiveSnapshots) {
  const TreeCopy tree;
  auto backend = makeCpuBackend(tree.options());
  ASSERT_TRUE(backend->open().ok());
  // +300 user, +100 system, +550 idle, +50 iowait since the snapshot open() took: 40% busy.
  tree.write("proc/stat", "cpu  10132453 290696 3084819 46829033 16733 0 25195 0 175628 0\n");
  EXPECT_DOUBLE_EQ(pollOne(*backend).readings.utilizationRatio.value_or(-1), 0.4);
  // No tick elapsed since the previous poll: unknown, not 0.
  EXPECT_FALSE(pollOne(*backend).readings.utilizationRatio.has_value());
  // +1000 idle: idle.
  tree.write("proc/stat", "cpu  10132453 290696 3084819 46830033 16733 0 25195 0 175628 0\n");
  EXPECT_DOUBLE_EQ(pollOne(*backend).readings.utilizationRatio.value_or(-1), 0.0);
}

TEST(CpuBackendTest, FallsBackToThermalZonesWithoutHwmon) {
  const TreeCopy tree;
  fs::remove_all(tree.path("sys/class/hwmon"));
  auto backend = makeCpuBackend(tree.options());
  ASSERT_TRUE(backend->open().ok());
  const DeviceRecord record = pollOne(*backend);
  EXPECT_EQ(record.readings.temperatureCelsius, 48.0);  // hotter of the two x86_pkg_temp zones
  EXPECT_FALSE(record.readings.slowdownTemperatureCelsius.has_value());
  EXPECT_EQ(record.properties["temperatureSource"], "thermalZone");
}

TEST(CpuBackendTest, MissingSysfsLeavesReadingsAbsent) {
  const TreeCopy tree;
  fs::remove_all(tree.path("sys"));
  auto backend = makeCpuBackend(tree.options());
  ASSERT_TRUE(backend->open().ok());
  const DeviceRecord record = pollOne(*backend);
  EXPECT_FALSE(record.readings.temperatureCelsius.has_value());
  EXPECT_FALSE(record.readings.clockMhz.has_value());
  EXPECT_FALSE(record.readings.clockMaxMhz.has_value());
  EXPECT_FALSE(record.properties.contains("numaNodes"));
  EXPECT_FALSE(record.properties.contains("temperatureSource"));
  EXPECT_EQ(record.properties["threads"], 8);
  EXPECT_GT(record.memory.totalBytes, 0u);
}

TEST(CpuBackendTest, WithoutCpuinfoTheNameComesFromTheArchitecture) {
  const TreeCopy tree;
  fs::remove(tree.path("proc/cpuinfo"));
  auto backend = makeCpuBackend(tree.options());
  ASSERT_TRUE(backend->open().ok());
  const DeviceRecord record = pollOne(*backend);
  EXPECT_EQ(record.name, unameMachine() + " CPU");
  EXPECT_EQ(record.vendor, "");
  EXPECT_FALSE(record.properties.contains("threads"));
}

TEST(CpuBackendTest, VendorNamesFromVendorId) {
  const struct {
    std::string vendorId;
    std::string vendor;
  } cases[] = {
      {"GenuineIntel", "Intel"},
      {"AuthenticAMD", "AMD"},
      {"HygonGenuine", "HygonGenuine"},
      {"", ""},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.vendorId);
    const TreeCopy tree;
    tree.write("proc/cpuinfo",
               "processor\t: 0\nvendor_id\t: " + testCase.vendorId + "\nmodel name\t: Some CPU\n");
    auto backend = makeCpuBackend(tree.options());
    ASSERT_TRUE(backend->open().ok());
    EXPECT_EQ(pollOne(*backend).vendor, testCase.vendor);
  }
}

TEST(CpuBackendTest, OpenFailsOnlyWithoutStatOrMeminfo) {
  const struct {
    std::string name;
    std::string file;
    std::optional<std::string> replacement;  // nullopt: delete the file
  } cases[] = {
      {"stat missing", "proc/stat", std::nullopt},
      {"meminfo missing", "proc/meminfo", std::nullopt},
      {"stat garbage", "proc/stat", "not a stat file\n"},
      {"meminfo without MemTotal", "proc/meminfo", "MemFree: 1 kB\n"},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    const TreeCopy tree;
    if (testCase.replacement) {
      tree.write(testCase.file, *testCase.replacement);
    } else {
      fs::remove(tree.path(testCase.file));
    }
    auto backend = makeCpuBackend(tree.options());
    const Status status = backend->open();
    ASSERT_FALSE(status.ok());
    EXPECT_EQ(status.error().code, ErrorCode::kUnavailable);
    EXPECT_FALSE(backend->poll().ok());
  }
}

TEST(CpuBackendTest, PollAfterStatVanishesReportsQueryError) {
  const TreeCopy tree;
  auto backend = makeCpuBackend(tree.options());
  ASSERT_TRUE(backend->open().ok());
  fs::remove(tree.path("proc/stat"));
  const DeviceRecord record = pollOne(*backend);
  ASSERT_TRUE(record.queryError.has_value());
  EXPECT_NE(record.queryError->find("stat"), std::string::npos) << *record.queryError;
  EXPECT_EQ(record.localKey, "0");
}

TEST(CpuBackendTest, PollBeforeOpenIsAnError) {
  auto backend = makeCpuBackend({kTestdata / "proc", kTestdata / "sys"});
  const auto records = backend->poll();
  ASSERT_FALSE(records.ok());
  EXPECT_EQ(records.error().code, ErrorCode::kUnavailable);
}

TEST(CpuBackendTest, RealProcOfThisMachine) {
  auto backend = makeCpuBackend();
  const Status status = backend->open();
  ASSERT_TRUE(status.ok()) << status.error().message;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  (void)pollOne(*backend);
  // Enough time for several scheduler ticks on every CPU.
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  const DeviceRecord record = pollOne(*backend);
  EXPECT_FALSE(record.queryError.has_value());
  EXPECT_FALSE(record.name.empty());
  EXPECT_GE(record.properties.value("threads", 0), 1);
  EXPECT_GT(record.memory.totalBytes, 0u);
  ASSERT_TRUE(record.memory.usedBytes.has_value());
  EXPECT_LE(*record.memory.usedBytes, record.memory.totalBytes);
  ASSERT_TRUE(record.readings.utilizationRatio.has_value());
  EXPECT_GE(*record.readings.utilizationRatio, 0.0);
  EXPECT_LE(*record.readings.utilizationRatio, 1.0);
  if (record.readings.temperatureCelsius) {
    EXPECT_GT(*record.readings.temperatureCelsius, -50.0);
    EXPECT_LT(*record.readings.temperatureCelsius, 150.0);
  }
}

}  // namespace
}  // namespace deviceops::devices
