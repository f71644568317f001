#include "devices/cpu/procfs.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace deviceops::devices {
namespace {

// /proc/stat ------------------------------------------------------------------------------------

TEST(ProcfsStatTest, ParsesAggregateLineOfCurrentKernel) {
  const auto times = parseProcStat(
      "cpu  10132153 290696 3084719 46828483 16683 0 25195 7 175628 0\n"
      "cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0\n"
      "intr 1462898 0 9\n");
  ASSERT_TRUE(times.ok()) << times.error().message;
  EXPECT_EQ(times->user, 10132153u);
  EXPECT_EQ(times->nice, 290696u);
  EXPECT_EQ(times->system, 3084719u);
  EXPECT_EQ(times->idle, 46828483u);
  EXPECT_EQ(times->iowait, 16683u);
  EXPECT_EQ(times->irq, 0u);
  EXPECT_EQ(times->softirq, 25195u);
  EXPECT_EQ(times->steal, 7u);
  // guest (175628) is already inside user and must not be counted twice.
  EXPECT_EQ(times->total(), 10132153u + 290696u + 3084719u + 46828483u + 16683u + 25195u + 7u);
  EXPECT_EQ(times->idleTotal(), 46828483u + 16683u);
}

TEST(ProcfsStatTest, AcceptsOldKernelWithFourFieldsAndLineNotFirst) {
  const auto times = parseProcStat("intr 5\ncpu  1 2 3 4\n");
  ASSERT_TRUE(times.ok()) << times.error().message;
  EXPECT_EQ(times->total(), 10u);
  EXPECT_EQ(times->iowait, 0u);
}

TEST(ProcfsStatTest, RejectsMalformedInput) {
  const struct {
    std::string name;
    std::string text;
  } cases[] = {
      {"empty", ""},
      {"no aggregate line", "cpu0 1 2 3 4 5\nintr 1\n"},
      {"truncated line", "cpu  1 2 3"},
      {"only the label", "cpu \n"},
      {"non-numeric field", "cpu  1 2 x 4 5\n"},
      {"negative field", "cpu  1 -2 3 4\n"},
      {"field overflows uint64", "cpu  1 2 3 18446744073709551616\n"},
      {"sum overflows uint64", "cpu  18446744073709551615 1 0 0\n"},
      {"binary garbage", std::string("cpu  1\0 2 3 4", 13)},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    const auto times = parseProcStat(testCase.text);
    ASSERT_FALSE(times.ok());
    EXPECT_EQ(times.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(ProcfsStatTest, UtilizationFromDeltas) {
  const CpuTimes earlier{100, 0, 50, 800, 50, 0, 0, 0};
  const struct {
    std::string name;
    CpuTimes later;
    std::optional<double> expected;
  } cases[] = {
      {"40% busy", {400, 0, 150, 1350, 100, 0, 0, 0}, 0.4},
      {"all idle", {100, 0, 50, 1800, 50, 0, 0, 0}, 0.0},
      {"all busy", {600, 100, 250, 800, 50, 10, 20, 20}, 1.0},
      {"no tick elapsed", earlier, std::nullopt},
      {"counters reset", {1, 0, 0, 1, 0, 0, 0, 0}, std::nullopt},
      // iowait going backwards must not push the ratio outside 0..1.
      {"iowait went backwards", {100, 0, 150, 800, 0, 0, 0, 0}, 1.0},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    const auto ratio = cpuUtilizationBetween(earlier, testCase.later);
    ASSERT_EQ(ratio.has_value(), testCase.expected.has_value());
    if (ratio) {
      EXPECT_DOUBLE_EQ(*ratio, *testCase.expected);
    }
  }
}

// /proc/meminfo ---------------------------------------------------------------------------------

TEST(ProcfsMeminfoTest, ConvertsKilobytesToBytes) {
  const auto memory = parseMeminfo(
      "MemTotal:       24684096 kB\nMemFree:        23883036 kB\n"
      "MemAvailable:   24324744 kB\nHugePages_Total:       0\n");
  ASSERT_TRUE(memory.ok()) << memory.error().message;
  EXPECT_EQ(memory->totalBytes, 24684096ull * 1024);
  EXPECT_EQ(memory->availableBytes, 24324744ull * 1024);
}

TEST(ProcfsMeminfoTest, MemAvailableIsOptional) {
  const auto memory = parseMeminfo("MemTotal: 1000 kB\nMemFree: 10 kB\n");
  ASSERT_TRUE(memory.ok()) << memory.error().message;
  EXPECT_EQ(memory->totalBytes, 1024000u);
  EXPECT_FALSE(memory->availableBytes.has_value());
}

TEST(ProcfsMeminfoTest, RejectsMalformedInput) {
  const struct {
    std::string name;
    std::string text;
  } cases[] = {
      {"empty", ""},
      {"MemTotal missing", "MemFree: 10 kB\nMemAvailable: 5 kB\n"},
      {"truncated value", "MemTotal:"},
      {"no unit", "MemTotal: 1000\n"},
      {"wrong unit", "MemTotal: 1000 MB\n"},
      {"non-numeric", "MemTotal: lots kB\n"},
      {"negative", "MemTotal: -1 kB\n"},
      {"overflows uint64", "MemTotal: 99999999999999999999 kB\n"},
      {"overflows once in bytes", "MemTotal: 18014398509481984 kB\n"},
      {"bad MemAvailable", "MemTotal: 10 kB\nMemAvailable: x kB\n"},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    EXPECT_FALSE(parseMeminfo(testCase.text).ok());
  }
}

// /proc/cpuinfo ---------------------------------------------------------------------------------

// Two sockets, two cores each, two threads per core, in the order the kernel enumerates them.
std::string twoSocketCpuinfo() {
  const int physical[] = {0, 1, 0, 1, 0, 1, 0, 1};
  const int core[] = {0, 0, 1, 1, 0, 0, 1, 1};
  std::string text;
  for (int processor = 0; processor < 8; ++processor) {
    text += "processor\t: " + std::to_string(processor) +
            "\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz\n"
            "cpu MHz\t\t: " +
            std::to_string(1000 + processor * 100) + ".500\n" +
            "physical id\t: " + std::to_string(physical[processor]) +
            "\nsiblings\t: 4\ncore id\t\t: " + std::to_string(core[processor]) +
            "\ncpu cores\t: 2\npower management:\n\n";
  }
  return text;
}

TEST(ProcfsCpuinfoTest, CountsSocketsCoresAndThreads) {
  const auto info = parseCpuinfo(twoSocketCpuinfo());
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->modelName, "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz");
  EXPECT_EQ(info->vendorId, "GenuineIntel");
  EXPECT_EQ(info->threads, 8);
  EXPECT_EQ(info->sockets, 2);
  EXPECT_EQ(info->cores, 4);
  ASSERT_TRUE(info->averageMhz.has_value());
  EXPECT_DOUBLE_EQ(*info->averageMhz, 1350.5);
}

TEST(ProcfsCpuinfoTest, ArmStyleWithoutTopologyLeavesItUnknown) {
  const auto info = parseCpuinfo(
      "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n\n"
      "processor\t: 1\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->threads, 2);
  EXPECT_EQ(info->modelName, "");
  EXPECT_FALSE(info->sockets.has_value());
  EXPECT_FALSE(info->cores.has_value());
  EXPECT_FALSE(info->averageMhz.has_value());
}

TEST(ProcfsCpuinfoTest, ReplacesNonPrintableBytesInStrings) {
  const auto info =
      parseCpuinfo(std::string("processor: 0\nmodel name: A\x01\xff"
                               "B\n"));
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->modelName, "A??B");
}

TEST(ProcfsCpuinfoTest, RejectsMalformedInput) {
  const struct {
    std::string name;
    std::string text;
  } cases[] = {
      {"empty", ""},
      {"no processor entry", "model name\t: Something\n"},
      {"truncated processor line", "processor\t:"},
      {"non-numeric processor", "processor\t: zero\n"},
      {"negative physical id", "processor: 0\nphysical id: -1\n"},
      {"core id overflows uint64", "processor: 0\ncore id: 18446744073709551616\n"},
      {"non-numeric cpu MHz", "processor: 0\ncpu MHz: fast\n"},
      {"negative cpu MHz", "processor: 0\ncpu MHz: -1.0\n"},
      {"infinite cpu MHz", "processor: 0\ncpu MHz: 1" + std::string(400, '0') + "\n"},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    EXPECT_FALSE(parseCpuinfo(testCase.text).ok());
  }
}

// Short sysfs values ----------------------------------------------------------------------------

TEST(ProcfsSysfsValueTest, Kilohertz) {
  const struct {
    std::string text;
    std::optional<double> megahertz;
  } cases[] = {
      {"2100000\n", 2100.0},     {"45500", 45.5},         {"-5000\n", std::nullopt},
      {"0\n", std::nullopt},     {"", std::nullopt},      {"\n", std::nullopt},
      {"12ab\n", std::nullopt},  {"1 2\n", std::nullopt}, {"99999999999999999999\n", std::nullopt},
      {"-274000", std::nullopt}, {"1000001", 1000.001},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE("\"" + testCase.text + "\"");
    EXPECT_EQ(parseKilohertzAsMegahertz(testCase.text), testCase.megahertz);
  }
}

TEST(ProcfsSysfsValueTest, FirstLineTrimmedAndPrintable) {
  EXPECT_EQ(parseSysfsLine("  coretemp \nsecond line\n"), "coretemp");
  EXPECT_EQ(parseSysfsLine(""), "");
  EXPECT_EQ(parseSysfsLine(std::string("x86\x7f_pkg", 8)), "x86?_pkg");
}

TEST(ProcfsCpuListTest, ParsesRangesAndSingles) {
  const struct {
    std::string text;
    std::vector<std::uint32_t> expected;
  } cases[] = {
      {"0\n", {0}},
      {"0-1,3\n", {0, 1, 3}},
      {"0-3,8-11", {0, 1, 2, 3, 8, 9, 10, 11}},
      {"5,1-2,2", {1, 2, 5}},
      {"", {}},
      {"\n", {}},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE("\"" + testCase.text + "\"");
    const auto ids = parseCpuList(testCase.text);
    ASSERT_TRUE(ids.ok()) << ids.error().message;
    EXPECT_EQ(*ids, testCase.expected);
  }
}

TEST(ProcfsCpuListTest, RejectsMalformedInput) {
  const std::string cases[] = {
      "a",       "1-",  "-1",           "3-1",          "1,,2",
      "1,",      ",1",  "1-2-3",        "0-4294967296", "18446744073709551616",
      "0-65536", "0 1", "0-4294967295",
  };
  for (const std::string& text : cases) {
    SCOPED_TRACE("\"" + text + "\"");
    EXPECT_FALSE(parseCpuList(text).ok());
  }
}

TEST(ProcfsCpuListTest, AcceptsExactlyTheMaximumNumberOfIds) {
  const auto ids = parseCpuList("0-65535");
  ASSERT_TRUE(ids.ok()) << ids.error().message;
  EXPECT_EQ(ids->size(), kMaxCpuListEntries);
}

// Temperature sensors ---------------------------------------------------------------------------

TEST(ProcfsSensorTest, ThermalZoneRanks) {
  const struct {
    std::string type;
    std::optional<int> rank;
  } cases[] = {
      {"x86_pkg_temp", 0}, {"cpu-thermal", 1},       {"cpu_thermal", 1},
      {"cpu0-thermal", 1}, {"acpitz", std::nullopt}, {"pch_cannonlake", std::nullopt},
      {"", std::nullopt},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.type);
    EXPECT_EQ(cpuThermalZoneRank(testCase.type), testCase.rank);
  }
}

TEST(ProcfsSensorTest, KnownCpuHwmonChips) {
  EXPECT_TRUE(isCpuHwmonChip("coretemp"));
  EXPECT_TRUE(isCpuHwmonChip("k10temp"));
  EXPECT_TRUE(isCpuHwmonChip("zenpower"));
  EXPECT_FALSE(isCpuHwmonChip("amdgpu"));
  EXPECT_FALSE(isCpuHwmonChip("nvme"));
  EXPECT_FALSE(isCpuHwmonChip(""));
}

TEST(ProcfsSensorTest, PicksPackageSensor) {
  const struct {
    std::string name;
    std::string chip;
    std::vector<HwmonSensor> sensors;
    std::optional<int> expected;
  } cases[] = {
      {"coretemp package", "coretemp", {{2, "Core 0"}, {1, "Package id 0"}, {3, "Core 1"}}, 1},
      {"coretemp package not first", "coretemp", {{1, "Core 0"}, {5, "Package id 1"}}, 5},
      {"k10temp Tdie over Tctl", "k10temp", {{1, "Tctl"}, {2, "Tdie"}, {3, "Tccd1"}}, 2},
      {"k10temp Tctl only", "k10temp", {{3, "Tccd1"}, {1, "Tctl"}}, 1},
      {"zenpower", "zenpower", {{1, "Tdie"}, {2, "Tctl"}}, 1},
      {"no labels: lowest index", "k10temp", {{4, ""}, {2, ""}}, 2},
      {"no sensors", "coretemp", {}, std::nullopt},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    EXPECT_EQ(pickPackageSensor(testCase.chip, testCase.sensors), testCase.expected);
  }
}

}  // namespace
}  // namespace deviceops::devices
