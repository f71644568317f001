// Merging records that several backends report for the same physical device, and the stable
// device ids (documented in docs/ARCHITECTURE.md, "Device ids"):
//   - a device with a PCI address:      "gpu-" + address with ':' and '.' as '-' (gpu-0000-03-00-0)
//   - else one with a UUID:             "gpu-" + first 12 hex digits of the UUID (gpu-3f2a9c1e0b7d)
//   - the CPU:                          "cpu" + local key                           (cpu0)
//   - simulated devices:                "sim-" + index                              (sim-0)
//   - anything else:                    backend + "-" + local key
// PCI addresses and UUIDs come from the hardware, so ids survive restarts without a store.
#pragma once

#include <string>
#include <vector>

#include "devices/device.h"

namespace deviceops::devices {

struct MergedDevice {
  std::string id;
  DeviceRecord record;                // the primary backend's record, gaps filled from the others
  std::vector<std::string> backends;  // primary first
};

// Lower = preferred as the primary source of a merged device.
int backendPriority(std::string_view backend);

std::string deviceIdFor(const DeviceRecord& record);

// Groups records sharing a PCI address or a UUID (transitively). Output is sorted: CPUs first,
// then GPUs by id. Properties of each backend end up under properties[<backend>]. Only the
// primary backend's queryError makes the device lost; a secondary's is kept in its properties.
// Ids are unique: a clash (which real hardware never produces) gets a "-2", "-3"... suffix.
std::vector<MergedDevice> mergeRecords(const std::vector<DeviceRecord>& records);

}  // namespace deviceops::devices
