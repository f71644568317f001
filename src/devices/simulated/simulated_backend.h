// Simulated GPUs for tests of multi-device logic. Off by default; every device it reports has
// simulated = true, which the API shows as "simulated": true everywhere.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "devices/device.h"

namespace deviceops::devices {

struct SimulatedDeviceSpec {
  std::string name = "Simulated GPU";
  std::string vendor = "Simulated";
  std::uint64_t memoryBytes = 16ull << 30;
  double temperatureCelsius = 45;
  double slowdownTemperatureCelsius = 90;
  double utilizationRatio = 0;
  std::uint64_t memoryUsedBytes = 0;
};

struct SimulatedBackendOptions {
  std::vector<SimulatedDeviceSpec> devices;
};

std::unique_ptr<Backend> makeSimulatedBackend(SimulatedBackendOptions options);

}  // namespace deviceops::devices
