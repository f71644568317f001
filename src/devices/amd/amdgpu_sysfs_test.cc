#include "devices/amd/amdgpu_sysfs.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace deviceops::devices::amdgpu {
namespace {

TEST(AmdgpuSysfsTest, ClockLevels) {
  const struct {
    std::string name;
    std::string text;
    std::vector<double> levels;
    std::optional<double> current;
    double max;
  } cases[] = {
      {"sclk", "0: 500Mhz \n1: 2250Mhz *\n2: 2575Mhz \n", {500, 2250, 2575}, 2250, 2575},
      {"mclk at top", "0: 96Mhz \n1: 456Mhz \n2: 1000Mhz *\n", {96, 456, 1000}, 1000, 1000},
      {"sleep level", "S: 19Mhz *\n0: 500Mhz\n1: 2482Mhz\n", {19, 500, 2482}, 19, 2482},
      {"no current mark", "0: 500Mhz\n1: 1700Mhz", {500, 1700}, std::nullopt, 1700},
      {"MHz spelling, star glued", "0: 300MHz*\n", {300}, 300, 300},
      {"highest level not last", "0: 800Mhz\n1: 400Mhz *\n", {800, 400}, 400, 800},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    const auto levels = parseClockLevels(testCase.text);
    ASSERT_TRUE(levels.ok()) << levels.error().message;
    EXPECT_EQ(levels->levelsMhz, testCase.levels);
    EXPECT_EQ(levels->currentMhz, testCase.current);
    EXPECT_EQ(levels->maxMhz, testCase.max);
  }
}

TEST(AmdgpuSysfsTest, ClockLevelsRejectMalformedInput) {
  const struct {
    std::string name;
    std::string text;
  } cases[] = {
      {"empty", ""},
      {"only newlines", "\n\n"},
      {"truncated line", "0: 500Mhz\n1:"},
      {"no colon", "500Mhz *\n"},
      {"non-numeric level", "x: 500Mhz\n"},
      {"non-numeric clock", "0: fastMhz\n"},
      {"missing unit", "0: 500\n"},
      {"wrong unit", "0: 500GHz\n"},
      {"negative", "0: -500Mhz\n"},
      {"overflow", "0: 99999999999999999999Mhz\n"},
      {"trailing garbage", "0: 500Mhz * x\n"},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    const auto levels = parseClockLevels(testCase.text);
    ASSERT_FALSE(levels.ok());
    EXPECT_EQ(levels.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(AmdgpuSysfsTest, LinkSpeedGeneration) {
  const struct {
    std::string text;
    std::optional<int> generation;
  } cases[] = {
      {"2.5 GT/s PCIe\n", 1},
      {"5.0 GT/s PCIe\n", 2},
      {"8.0 GT/s PCIe\n", 3},
      {"16.0 GT/s PCIe\n", 4},
      {"32.0 GT/s PCIe\n", 5},
      {"64.0 GT/s PCIe\n", 6},
      {"8 GT/s\n", 3},
      {"5 GT/s", 2},
      {"Unknown\n", std::nullopt},
      {"", std::nullopt},
      {"16.0", std::nullopt},
      {"12.0 GT/s PCIe", std::nullopt},
      {"16.5 GT/s", std::nullopt},
      {"-8.0 GT/s", std::nullopt},
      {"16.00 GT/s", std::nullopt},
      {"99999999999 GT/s", std::nullopt},
      {".5 GT/s", std::nullopt},
      {"8. GT/s", std::nullopt},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE("\"" + testCase.text + "\"");
    EXPECT_EQ(parseLinkSpeedGeneration(testCase.text), testCase.generation);
  }
}

TEST(AmdgpuSysfsTest, LinkWidth) {
  const struct {
    std::string text;
    std::optional<int> width;
  } cases[] = {
      {"16\n", 16},
      {"1", 1},
      {"32\n", 32},
      {"0\n", std::nullopt},
      {"33", std::nullopt},
      {"", std::nullopt},
      {"x16", std::nullopt},
      {"-4", std::nullopt},
      {"99999999999999999999", std::nullopt},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE("\"" + testCase.text + "\"");
    EXPECT_EQ(parseLinkWidth(testCase.text), testCase.width);
  }
}

TEST(AmdgpuSysfsTest, IntegersPercentagesAndPower) {
  const struct {
    std::string text;
    std::optional<std::uint64_t> integer;
    std::optional<double> ratio;
    std::optional<double> watts;
  } cases[] = {
      {"17163091968\n", 17163091968u, std::nullopt, 17163.091968},
      {"37\n", 37u, 0.37, 0.000037},
      {"100", 100u, 1.0, 0.0001},
      {"0\n", 0u, 0.0, 0.0},
      {"101\n", 101u, std::nullopt, 0.000101},
      {"18446744073709551615", 18446744073709551615u, std::nullopt, 18446744073709.551615},
      {"18446744073709551616", std::nullopt, std::nullopt, std::nullopt},
      {"-1\n", std::nullopt, std::nullopt, std::nullopt},
      {"", std::nullopt, std::nullopt, std::nullopt},
      {"12 kB", std::nullopt, std::nullopt, std::nullopt},
      {"0x10", std::nullopt, std::nullopt, std::nullopt},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE("\"" + testCase.text + "\"");
    EXPECT_EQ(parseUnsigned(testCase.text), testCase.integer);
    EXPECT_EQ(parsePercentAsRatio(testCase.text), testCase.ratio);
    const auto watts = parseMicrowattsAsWatts(testCase.text);
    ASSERT_EQ(watts.has_value(), testCase.watts.has_value());
    if (watts) {
      EXPECT_DOUBLE_EQ(*watts, *testCase.watts);
    }
  }
}

TEST(AmdgpuSysfsTest, UniqueId) {
  EXPECT_EQ(parseUniqueId("A1B2C3D4E5F60718\n"), "a1b2c3d4e5f60718");
  EXPECT_EQ(parseUniqueId("0123456789abcdef"), "0123456789abcdef");
  for (const std::string text : {"", "\n", "a1b2c3d4e5f6071", "a1b2c3d4e5f607189",
                                 "g1b2c3d4e5f60718", "a1b2c3d4 e5f60718"}) {
    SCOPED_TRACE("\"" + text + "\"");
    EXPECT_FALSE(parseUniqueId(text).has_value());
  }
}

TEST(AmdgpuSysfsTest, TextLine) {
  EXPECT_EQ(parseTextLine("AMD Instinct MI210\n"), "AMD Instinct MI210");
  EXPECT_EQ(parseTextLine("  113-D4120100-100 \nsecond\n"), "113-D4120100-100");
  EXPECT_EQ(parseTextLine(std::string("Rad\0on\xff", 7)), "Rad?on?");
  EXPECT_FALSE(parseTextLine("").has_value());
  EXPECT_FALSE(parseTextLine("\n").has_value());
  EXPECT_FALSE(parseTextLine("   \nname\n").has_value());
}

TEST(AmdgpuSysfsTest, PciUevent) {
  const auto uevent = parsePciUevent(
      "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:73BF\nPCI_SUBSYS_ID=1DA2:E437\n"
      "PCI_SLOT_NAME=0000:0C:00.0\nMODALIAS=pci:"
      "v00001002d000073BFsv00001DA2sd0000E437bc03sc00i00\n");
  ASSERT_TRUE(uevent.ok()) << uevent.error().message;
  EXPECT_EQ(uevent->driver, "amdgpu");
  EXPECT_EQ(uevent->slotName, "0000:0c:00.0");
  EXPECT_EQ(uevent->vendorId, 0x1002);
  EXPECT_EQ(uevent->deviceId, 0x73BF);
}

TEST(AmdgpuSysfsTest, PciUeventWithoutDriverIsUnbound) {
  const auto uevent = parsePciUevent("PCI_ID=1002:744C\nPCI_SLOT_NAME=0000:03:00.0");
  ASSERT_TRUE(uevent.ok()) << uevent.error().message;
  EXPECT_EQ(uevent->driver, "");
}

TEST(AmdgpuSysfsTest, PciUeventRejectsMalformedInput) {
  const struct {
    std::string name;
    std::string text;
  } cases[] = {
      {"empty", ""},
      {"slot missing", "DRIVER=amdgpu\nPCI_ID=1002:73BF\n"},
      {"id missing", "DRIVER=amdgpu\nPCI_SLOT_NAME=0000:03:00.0\n"},
      {"truncated slot", "PCI_ID=1002:73BF\nPCI_SLOT_NAME=0000:03:0"},
      {"slot not hex", "PCI_ID=1002:73BF\nPCI_SLOT_NAME=0000:0g:00.0\n"},
      {"slot separators", "PCI_ID=1002:73BF\nPCI_SLOT_NAME=0000-03-00-0\n"},
      {"id not hex", "PCI_ID=1002:73BZ\nPCI_SLOT_NAME=0000:03:00.0\n"},
      {"id too long", "PCI_ID=1002:73BF0\nPCI_SLOT_NAME=0000:03:00.0\n"},
      {"id negative", "PCI_ID=-002:73BF\nPCI_SLOT_NAME=0000:03:00.0\n"},
      {"id separator", "PCI_ID=1002-73BF\nPCI_SLOT_NAME=0000:03:00.0\n"},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    EXPECT_FALSE(parsePciUevent(testCase.text).ok());
  }
}

TEST(AmdgpuSysfsTest, MarketingNames) {
  const struct {
    std::uint16_t deviceId;
    std::string name;
  } cases[] = {
      {0x73BF, "AMD Radeon RX 6800/6800 XT / 6900 XT"},
      {0x73DF, "AMD Radeon RX 6700 XT"},
      {0x744C, "AMD Radeon RX 7900 XTX"},
      {0x740F, "AMD Instinct MI210"},
      {0x74A1, "AMD Instinct MI300X"},
      {0x1638, "AMD GPU 1002:1638"},
      {0xABCD, "AMD GPU 1002:abcd"},
      {0x0001, "AMD GPU 1002:0001"},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    EXPECT_EQ(marketingName(testCase.deviceId), testCase.name);
  }
  EXPECT_EQ(formatPciId(0x1002, 0x73BF), "1002:73bf");
}

}  // namespace
}  // namespace deviceops::devices::amdgpu
