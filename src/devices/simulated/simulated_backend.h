// Simulated GPUs for tests of multi-device logic and of self-tests. Off by default; every device
// it reports has simulated = true, which the API shows as "simulated": true everywhere.
//
// A simulated device can carry faults (SimulatedFaults) that its allocator's transfers and the
// backend's polls act out, so that tests can prove checks fail when they should. The backend
// and the allocators of the same devices share one SimulatedFleet (simulated_fleet.h).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "devices/device.h"

namespace deviceops::devices {

// One bit of every block of a device: bit `bit` (0..63) of the little-endian 64-bit word that
// starts at block offset `offset`, i.e. bit bit % 8 of the byte at offset + bit / 8.
struct SimulatedBit {
  std::uint64_t offset = 0;
  unsigned bit = 0;
  // The block offset of the byte that holds the bit, and the bit's mask in that byte.
  std::uint64_t byteOffset() const { return offset + bit / 8; }
  unsigned char mask() const { return static_cast<unsigned char>(1u << (bit % 8)); }
};

struct SimulatedFaults {
  // That bit reads as `stuckValue` (0 or 1) whatever was written.
  std::optional<SimulatedBit> stuckBit;
  unsigned stuckValue = 0;
  // That bit reads inverted on the 1st, 3rd, 5th... read of a block that covers it (and right
  // on the 2nd, 4th...): one write-then-read pass sees it, and so does a re-read.
  std::optional<SimulatedBit> flippingBit;
  // Transfers (host to device, device to host, device to device) of the device, together, never
  // go faster than this: each sleeps until its bytes fit the cap.
  std::optional<double> bandwidthCapBytesPerSecond;
  // Reported as volatile uncorrectable (double-bit) ECC errors in every poll (0: none).
  std::uint64_t eccDoubleBitErrors = 0;
  // The backend's polls after this many block until the backend is interrupted or destroyed.
  std::optional<std::uint64_t> hangAfterPolls;
  // After this many successful transfers the device is gone: transfers, allocate and verify
  // answer kUnavailable, and the backend no longer reports it.
  std::optional<std::uint64_t> vanishAfterTransfers;

  bool any() const {
    return stuckBit || flippingBit || bandwidthCapBytesPerSecond || eccDoubleBitErrors > 0 ||
           hangAfterPolls || vanishAfterTransfers;
  }
};

struct SimulatedDeviceSpec {
  std::string name = "Simulated GPU";
  std::string vendor = "Simulated";
  std::uint64_t memoryBytes = 16ull << 30;
  double temperatureCelsius = 45;
  double slowdownTemperatureCelsius = 90;
  double utilizationRatio = 0;
  std::uint64_t memoryUsedBytes = 0;
  // The device's theoretical memory bandwidth (a spec sheet number, reported in MemoryInfo).
  std::optional<double> peakBandwidthBytesPerSecond;
  // How much of each block (from offset 0) transfers reach: a host shadow of this size.
  std::uint64_t backingBytes = 64ull << 20;
  SimulatedFaults faults;
};

struct SimulatedBackendOptions {
  std::vector<SimulatedDeviceSpec> devices;
};

class SimulatedFleet;

// A backend with its own fleet (no allocator shares its state).
std::unique_ptr<Backend> makeSimulatedBackend(SimulatedBackendOptions options);
// A backend reporting `fleet`'s devices (record.properties.index = the fleet index), sharing
// their state (vanish, hang) with the allocators made from the same fleet.
std::unique_ptr<Backend> makeSimulatedBackend(std::shared_ptr<SimulatedFleet> fleet);

}  // namespace deviceops::devices
