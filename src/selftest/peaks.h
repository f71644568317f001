// Theoretical peaks the self-test figures are compared with.
#pragma once

#include <optional>

#include "devices/device.h"

namespace deviceops::selftest {

// Bytes per second one direction of a PCIe link carries after line encoding: per lane 250 MB/s
// (gen 1, 2.5 GT/s, 8b/10b), 500 (gen 2), 984.6 (gen 3, 8 GT/s, 128b/130b), 1,969 (gen 4),
// 3,938 (gen 5), 7,563 (gen 6, 64 GT/s, FLIT 242/256) times the lanes. nullopt for a generation
// outside 1..6 or a width outside 1..32.
std::optional<double> pcieBytesPerSecond(int generation, int width);

// The host link's peak for a device: its maximum PCIe generation and width where the backend
// reports them (NVML; the current ones drop while the GPU idles), else the current ones.
std::optional<double> hostLinkPeak(const devices::Readings& readings);

}  // namespace deviceops::selftest
