#include "selftest/peaks.h"

#include <array>

namespace deviceops::selftest {

std::optional<double> pcieBytesPerSecond(int generation, int width) {
  static constexpr std::array<double, 6> kPerLane = {
      2.5e9 * 8 / 10 / 8,    // gen 1
      5e9 * 8 / 10 / 8,      // gen 2
      8e9 * 128 / 130 / 8,   // gen 3
      16e9 * 128 / 130 / 8,  // gen 4
      32e9 * 128 / 130 / 8,  // gen 5
      64e9 * 242 / 256 / 8,  // gen 6
  };
  if (generation < 1 || generation > 6 || width < 1 || width > 32) return std::nullopt;
  return kPerLane[static_cast<std::size_t>(generation - 1)] * width;
}

std::optional<double> hostLinkPeak(const devices::Readings& readings) {
  const std::optional<int> generation =
      readings.pcieLinkGenerationMax ? readings.pcieLinkGenerationMax : readings.pcieLinkGeneration;
  const std::optional<int> width =
      readings.pcieLinkWidthMax ? readings.pcieLinkWidthMax : readings.pcieLinkWidth;
  if (!generation || !width) return std::nullopt;
  return pcieBytesPerSecond(*generation, *width);
}

}  // namespace deviceops::selftest
