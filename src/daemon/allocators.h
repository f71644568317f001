// The daemon's allocator factory: which DeviceAllocator serves a device, chosen by the backends
// that report it. This is daemon wiring, the one place that knows the backend names; the memory
// ledger takes the factory as a constructor argument and never names a vendor.
#pragma once

#include <memory>

#include "devices/simulated/simulated_fleet.h"
#include "memory/memory_service.h"

namespace deviceops::daemon {

// simulated -> makeSimulatedAllocator(simulatedFleet, simulatedFleetIndex(record)) (the fleet the
// simulated backend reports, so faults and vanishing are shared; without a fleet, or for an index
// it does not hold: a fault-free makeSimulatedAllocator(total)), cpu -> makeCpuAllocator, reported
// by "nvidia" (with a UUID) -> makeCudaAllocator, else by "vulkan" (with a UUID; amd GPUs too) ->
// makeVulkanAllocator; anything else: kUnavailable with the reason. The factory holds the fleet
// (may be null) and is thread-safe.
memory::AllocatorFactory allocatorFactory(std::shared_ptr<devices::SimulatedFleet> simulatedFleet);

}  // namespace deviceops::daemon
