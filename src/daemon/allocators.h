// The daemon's allocator factory: which DeviceAllocator serves a device, chosen by the backends
// that report it. This is daemon wiring, the one place that knows the backend names; the memory
// ledger takes the factory as a constructor argument and never names a vendor.
#pragma once

#include "memory/memory_service.h"

namespace deviceops::daemon {

// simulated -> makeSimulatedAllocator(total), cpu -> makeCpuAllocator, reported by "nvidia" (with a
// UUID) -> makeCudaAllocator, else by "vulkan" (with a UUID; amd GPUs too) -> makeVulkanAllocator;
// anything else: kUnavailable with the reason. The factory is stateless and thread-safe.
memory::AllocatorFactory allocatorFactory();

}  // namespace deviceops::daemon
