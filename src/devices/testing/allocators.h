// An allocator factory for tests of components above the ledger (inference, telemetry,
// training, benchmarks) whose inventories hold only the cpu and simulated devices: the real cpu
// allocator for the cpu, the simulated allocator for simulated devices, kUnavailable otherwise.
// The daemon's own factory (src/daemon/allocators.h) also knows the GPU vendors.
#pragma once

#include <memory>

#include "devices/allocator.h"
#include "devices/inventory.h"

namespace deviceops::devices::testing {

inline Result<std::unique_ptr<DeviceAllocator>> makeCpuOrSimulatedAllocator(
    const DeviceView& view) {
  if (view.record.simulated) return makeSimulatedAllocator(view.record.memory.totalBytes);
  if (view.record.type == DeviceType::kCpu) return makeCpuAllocator();
  return makeError(ErrorCode::kUnavailable,
                   "test factory: no allocator for " + view.id + " (cpu and simulated only)");
}

}  // namespace deviceops::devices::testing
