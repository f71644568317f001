#include "selftest/device_window.h"

#include <spdlog/spdlog.h>

namespace deviceops::selftest {

Result<std::unique_ptr<DeviceWindow>> DeviceWindow::open(memory::MemoryService& memory,
                                                         const std::string& deviceId,
                                                         std::uint64_t bytes,
                                                         const std::string& owner,
                                                         const std::string& label) {
  memory::AllocateRequest request;
  request.deviceId = deviceId;
  request.bytes = bytes;
  request.kind = memory::AllocationKind::kRaw;
  request.owner = owner;
  request.label = label;
  ASSIGN_OR_RETURN(const memory::AllocateResult allocated, memory.allocate(request));
  Result<memory::BorrowedBlock> borrowed = memory.borrow(allocated.record.id);
  if (!borrowed.ok()) {
    (void)memory.release(allocated.record.id, "self-test");
    return borrowed.error();
  }
  return std::unique_ptr<DeviceWindow>(
      new DeviceWindow(memory, allocated.record.id, std::move(borrowed.value())));
}

DeviceWindow::~DeviceWindow() {
  borrowed_.reset();  // the borrow ends first, or release() would refuse
  Result<memory::AllocationRecord> released = memory_.release(allocationId_, "self-test");
  if (!released.ok()) {
    spdlog::warn("self-test: releasing {} failed: {}", allocationId_, released.error().message);
  }
}

Status DeviceWindow::write(std::uint64_t offset, const void* source, std::uint64_t bytes) {
  return borrowed_->allocator().write(borrowed_->block(), offset, source, bytes);
}

Status DeviceWindow::read(std::uint64_t offset, void* destination, std::uint64_t bytes) {
  return borrowed_->allocator().read(borrowed_->block(), offset, destination, bytes);
}

Status DeviceWindow::copy(std::uint64_t destination, std::uint64_t source, std::uint64_t bytes) {
  const devices::Block& block = borrowed_->block();
  return borrowed_->allocator().copy(block, destination, block, source, bytes);
}

}  // namespace deviceops::selftest
