// The simulated allocator: accounting only, for tests of multi-device logic. Blocks have no
// memory behind them (hostAddress is null, handle a unique non-zero token), except a host
// "shadow" of their first backingBytes, made on the block's first transfer.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include "devices/allocator.h"

namespace deviceops::devices {
namespace {

class SimulatedAllocator final : public DeviceAllocator {
 public:
  SimulatedAllocator(std::uint64_t capacityBytes, std::uint64_t backingBytes)
      : capacityBytes_(capacityBytes), backingBytes_(backingBytes) {}

  std::string_view kind() const override { return "simulated"; }
  bool accountingOnly() const override { return true; }

  Result<Block> allocate(std::uint64_t bytes, const AllocationOptions& options) override {
    if (Status valid = checkAllocationRequest(bytes, options, "a simulated device cannot pin");
        !valid.ok()) {
      return valid.error();
    }
    // Reserve with compare-and-swap so that concurrent callers never overshoot the capacity.
    std::uint64_t live = liveBytes_.load(std::memory_order_relaxed);
    do {
      if (bytes > capacityBytes_ - live) {
        return makeError(ErrorCode::kResourceExhausted,
                         fmt::format("the simulated device holds {} of {} bytes; {} more do not "
                                     "fit",
                                     live, capacityBytes_, bytes),
                         {{"capacityBytes", capacityBytes_}, {"liveBytes", live}});
      }
    } while (!liveBytes_.compare_exchange_weak(live, live + bytes, std::memory_order_relaxed));
    Block block;
    block.bytes = bytes;
    block.handle = nextHandle_.fetch_add(1, std::memory_order_relaxed);
    return block;
  }

  void release(const Block& block) override {
    {
      std::lock_guard lock(mutex_);
      shadows_.erase(block.handle);
    }
    liveBytes_.fetch_sub(block.bytes, std::memory_order_relaxed);
  }

  Result<VerifyReport> verify(const Block&) override {
    return makeError(ErrorCode::kInvalidArgument,
                     "verify is not possible on a simulated device: it has no memory to test");
  }

  std::optional<std::uint64_t> driverFreeBytes() override {
    return capacityBytes_ - liveBytes_.load(std::memory_order_relaxed);
  }

  std::uint64_t liveBytes() const override { return liveBytes_.load(std::memory_order_relaxed); }

  Status write(const Block& block, std::uint64_t offset, const void* source,
               std::uint64_t bytes) override {
    ASSIGN_OR_RETURN(unsigned char* shadow, shadowFor(block, offset, bytes));
    if (bytes > 0) std::memcpy(shadow + offset, source, bytes);
    return Status::success();
  }

  Status read(const Block& block, std::uint64_t offset, void* destination,
              std::uint64_t bytes) override {
    ASSIGN_OR_RETURN(unsigned char* shadow, shadowFor(block, offset, bytes));
    if (bytes > 0) std::memcpy(destination, shadow + offset, bytes);
    return Status::success();
  }

  Status copy(const Block& destination, std::uint64_t destinationOffset, const Block& source,
              std::uint64_t sourceOffset, std::uint64_t bytes) override {
    ASSIGN_OR_RETURN(unsigned char* to, shadowFor(destination, destinationOffset, bytes));
    ASSIGN_OR_RETURN(unsigned char* from, shadowFor(source, sourceOffset, bytes));
    if (bytes > 0) std::memmove(to + destinationOffset, from + sourceOffset, bytes);
    return Status::success();
  }

  std::optional<std::uint64_t> transferLimitBytes() const override { return backingBytes_; }

 private:
  // The block's shadow, made (zero-filled) on first use, once [offset, offset + bytes) is known
  // to lie inside the block and inside its shadow.
  Result<unsigned char*> shadowFor(const Block& block, std::uint64_t offset, std::uint64_t bytes) {
    RETURN_IF_ERROR(checkTransferRange(block.bytes, offset, bytes));
    if (bytes == 0) return static_cast<unsigned char*>(nullptr);  // even past the shadow
    const std::uint64_t shadowBytes = std::min(block.bytes, backingBytes_);
    if (offset + bytes > shadowBytes) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("the simulated device backs only the first {} bytes of a block "
                                   "with host memory; a transfer of {} bytes at offset {} goes "
                                   "beyond",
                                   backingBytes_, bytes, offset),
                       {{"backingBytes", backingBytes_}, {"offset", offset}, {"bytes", bytes}});
    }
    std::lock_guard lock(mutex_);
    std::unique_ptr<unsigned char[]>& shadow = shadows_[block.handle];
    if (shadow == nullptr) {
      shadow.reset(new (std::nothrow) unsigned char[shadowBytes]());
      if (shadow == nullptr) {
        shadows_.erase(block.handle);
        return makeError(ErrorCode::kResourceExhausted,
                         fmt::format("cannot allocate the {}-byte host shadow of a simulated block",
                                     shadowBytes));
      }
    }
    return shadow.get();
  }

  const std::uint64_t capacityBytes_;
  const std::uint64_t backingBytes_;
  std::mutex mutex_;  // guards shadows_ (the map; each shadow is used by its block's caller)
  std::map<std::uintptr_t, std::unique_ptr<unsigned char[]>> shadows_;  // block handle -> shadow
  std::atomic<std::uint64_t> liveBytes_{0};  // never above capacityBytes_
  std::atomic<std::uintptr_t> nextHandle_{1};
};

}  // namespace

Result<std::unique_ptr<DeviceAllocator>> makeSimulatedAllocator(std::uint64_t capacityBytes) {
  return std::unique_ptr<DeviceAllocator>(
      std::make_unique<SimulatedAllocator>(capacityBytes, 64ULL << 20));
}

}  // namespace deviceops::devices
