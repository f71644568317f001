#include "daemon/allocators.h"

#include <fmt/format.h>

#include <algorithm>

#include "devices/allocator.h"

namespace deviceops::daemon {
namespace {

Result<std::unique_ptr<devices::DeviceAllocator>> simulatedAllocator(
    const std::shared_ptr<devices::SimulatedFleet>& fleet, const devices::DeviceRecord& record) {
  const std::optional<std::size_t> index = devices::simulatedFleetIndex(record);
  if (fleet != nullptr && index && *index < fleet->size()) {
    return devices::makeSimulatedAllocator(fleet, *index);
  }
  return devices::makeSimulatedAllocator(record.memory.totalBytes);
}

}  // namespace

memory::AllocatorFactory allocatorFactory(std::shared_ptr<devices::SimulatedFleet> simulatedFleet) {
  return [simulatedFleet = std::move(simulatedFleet)](
             const devices::DeviceView& view) -> Result<std::unique_ptr<devices::DeviceAllocator>> {
    const devices::DeviceRecord& record = view.record;
    if (record.simulated) return simulatedAllocator(simulatedFleet, record);
    if (record.type == devices::DeviceType::kCpu) return devices::makeCpuAllocator();
    const auto has = [&](std::string_view backend) {
      return std::find(view.backends.begin(), view.backends.end(), backend) != view.backends.end();
    };
    if (has("nvidia") && !record.uuid.empty()) return devices::makeCudaAllocator(record.uuid);
    if (has("vulkan") && !record.uuid.empty()) return devices::makeVulkanAllocator(record.uuid);
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("device {} has no memory allocator: it needs the nvidia or the "
                                 "vulkan backend",
                                 view.id));
  };
}

}  // namespace deviceops::daemon
