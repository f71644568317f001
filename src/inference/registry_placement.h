// Placement and memory measurement for the model registry (internal to the registry).
//
// choosePlacement(): the devices a model goes on and the execution provider on each. Pinned
// devices (ids, UUIDs or PCI ids) are taken as given; otherwise the `replicas` devices with the
// most MemoryService::status().availableBytes among those that can run a provider of this ONNX
// Runtime build (simulated and lost devices are never chosen automatically). Provider by device:
// cpu -> cpu, nvidia -> cuda, amd -> rocm (or migraphx), simulated -> cpu (a simulated device runs
// its models on the host, charged to its own ledger). An asked-for provider the device cannot run
// is kInvalidArgument.
//
// Memory is measured as process RSS for models that run on the host (cpu provider) and as the
// device's used memory (total - driver free) for the others.
// Thread-safe: no shared state beyond what the inventory and the MemoryService guard.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "devices/inventory.h"
#include "inference/registry.h"
#include "memory/memory_service.h"

namespace deviceops::inference {

struct PlacementTarget {
  std::string deviceId;
  Provider provider = Provider::kCpu;
  int deviceOrdinal = 0;  // CUDA/ROCm ordinal
};

Result<std::vector<PlacementTarget>> choosePlacement(const devices::InventorySnapshot& snapshot,
                                                     memory::MemoryService& memory,
                                                     const LoadRequest& request);

// Resident set size of this process in bytes (/proc/self/statm); 0 if it cannot be read.
std::uint64_t processResidentBytes();

// What memory a model on `target` takes is measured in: "rss" for the host, else the device id.
std::string measurementSource(const PlacementTarget& target);
// Current used bytes of a measurement source ("rss" or a device id); nullopt if unknown.
std::optional<std::uint64_t> usedBytes(memory::MemoryService& memory, const std::string& source);

}  // namespace deviceops::inference
