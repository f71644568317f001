#include "selftest/peaks.h"

#include <gtest/gtest.h>

namespace deviceops::selftest {
namespace {

TEST(PeaksTest, PcieRatesPerGenerationAndWidth) {
  EXPECT_DOUBLE_EQ(*pcieBytesPerSecond(1, 1), 250e6);
  EXPECT_DOUBLE_EQ(*pcieBytesPerSecond(2, 16), 8e9);
  EXPECT_NEAR(*pcieBytesPerSecond(3, 16), 15.754e9, 1e6);
  EXPECT_NEAR(*pcieBytesPerSecond(4, 16), 31.508e9, 1e6);
  EXPECT_NEAR(*pcieBytesPerSecond(5, 16), 63.015e9, 1e6);  // an H100 PCIe/SXM host link
  EXPECT_NEAR(*pcieBytesPerSecond(6, 16), 121e9, 1e6);
  EXPECT_FALSE(pcieBytesPerSecond(0, 16).has_value());
  EXPECT_FALSE(pcieBytesPerSecond(7, 16).has_value());
  EXPECT_FALSE(pcieBytesPerSecond(4, 0).has_value());
  EXPECT_FALSE(pcieBytesPerSecond(4, 64).has_value());
}

TEST(PeaksTest, TheHostLinkPrefersTheMaximumLinkOverTheIdleOne) {
  devices::Readings readings;
  EXPECT_FALSE(hostLinkPeak(readings).has_value());
  readings.pcieLinkGeneration = 1;  // an idle GPU drops its link
  readings.pcieLinkWidth = 16;
  EXPECT_DOUBLE_EQ(*hostLinkPeak(readings), 4e9);
  readings.pcieLinkGenerationMax = 5;
  readings.pcieLinkWidthMax = 16;
  EXPECT_NEAR(*hostLinkPeak(readings), 63.015e9, 1e6);
}

}  // namespace
}  // namespace deviceops::selftest
