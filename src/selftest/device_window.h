// The production MemoryWindow: a raw allocation charged to the memory ledger like any client's
// (so a self-test stays inside the device's budget and shows in /api/memory), borrowed from the
// ledger for direct transfers through the device's allocator, and released when the window goes.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "memory/memory_service.h"
#include "selftest/memory_window.h"

namespace deviceops::selftest {

class DeviceWindow final : public MemoryWindow {
 public:
  // Allocates `bytes` on `deviceId` (kind raw, label `label`, owner `owner`) and borrows it.
  // Errors: the ledger's (409 over budget, 507 driver out of memory, 503 no allocator), and
  // kInvalidArgument for an accounting-only device whose allocator cannot transfer.
  static Result<std::unique_ptr<DeviceWindow>> open(memory::MemoryService& memory,
                                                    const std::string& deviceId,
                                                    std::uint64_t bytes, const std::string& owner,
                                                    const std::string& label);
  ~DeviceWindow() override;  // ends the borrow, then releases the allocation

  std::uint64_t size() const override { return borrowed_->requestedBytes(); }
  Status write(std::uint64_t offset, const void* source, std::uint64_t bytes) override;
  Status read(std::uint64_t offset, void* destination, std::uint64_t bytes) override;
  Status copy(std::uint64_t destination, std::uint64_t source, std::uint64_t bytes) override;

  const std::string& allocationId() const { return allocationId_; }
  std::string_view allocatorKind() const { return borrowed_->allocator().kind(); }
  // The largest block size the device's allocator transfers through (simulated devices back only
  // a prefix of each block), or nullopt when there is no such limit.
  std::optional<std::uint64_t> transferLimit() const {
    return borrowed_->allocator().transferLimitBytes();
  }

 private:
  DeviceWindow(memory::MemoryService& memory, std::string allocationId,
               memory::BorrowedBlock borrowed)
      : memory_(memory),
        allocationId_(std::move(allocationId)),
        borrowed_(std::in_place, std::move(borrowed)) {}

  memory::MemoryService& memory_;
  std::string allocationId_;
  std::optional<memory::BorrowedBlock> borrowed_;
};

}  // namespace deviceops::selftest
