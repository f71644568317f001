// The simulated allocator: accounting only, for tests of multi-device logic. Blocks have no
// memory behind them (hostAddress is null, handle a unique non-zero token), except a host
// "shadow" of their first backingBytes, made on the block's first transfer. The device's faults
// (simulated_backend.h) act in its transfers: stuck and flipping bits in what read() returns,
// the bandwidth cap, and vanishing.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

#include "devices/allocator.h"
#include "devices/simulated/simulated_fleet.h"

namespace deviceops::devices {
namespace {

using SteadyClock = std::chrono::steady_clock;

class SimulatedAllocator final : public DeviceAllocator {
 public:
  SimulatedAllocator(std::shared_ptr<SimulatedFleet> fleet, std::size_t index)
      : fleet_(std::move(fleet)),
        index_(index),
        spec_(fleet_->spec(index)),
        capacityBytes_(spec_.memoryBytes) {}

  std::string_view kind() const override { return "simulated"; }
  bool accountingOnly() const override { return true; }

  Result<Block> allocate(std::uint64_t bytes, const AllocationOptions& options) override {
    if (Status valid = checkAllocationRequest(bytes, options, "a simulated device cannot pin");
        !valid.ok()) {
      return valid.error();
    }
    RETURN_IF_ERROR(fleet_->checkPresent(index_));
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
    RETURN_IF_ERROR(fleet_->checkPresent(index_));
    return makeError(ErrorCode::kInvalidArgument,
                     "verify is not possible on a simulated device: it has no memory to test");
  }

  std::optional<std::uint64_t> driverFreeBytes() override {
    if (fleet_->vanished(index_)) return std::nullopt;
    return capacityBytes_ - liveBytes_.load(std::memory_order_relaxed);
  }

  std::uint64_t liveBytes() const override { return liveBytes_.load(std::memory_order_relaxed); }

  Status write(const Block& block, std::uint64_t offset, const void* source,
               std::uint64_t bytes) override {
    const auto started = SteadyClock::now();
    RETURN_IF_ERROR(fleet_->checkPresent(index_));
    ASSIGN_OR_RETURN(Shadow * shadow, shadowFor(block, offset, bytes));
    if (bytes > 0) std::memcpy(shadow->bytes.get() + offset, source, bytes);
    return finish(bytes, started);
  }

  Status read(const Block& block, std::uint64_t offset, void* destination,
              std::uint64_t bytes) override {
    const auto started = SteadyClock::now();
    RETURN_IF_ERROR(fleet_->checkPresent(index_));
    ASSIGN_OR_RETURN(Shadow * shadow, shadowFor(block, offset, bytes));
    if (bytes > 0) {
      auto* out = static_cast<unsigned char*>(destination);
      std::memcpy(out, shadow->bytes.get() + offset, bytes);
      applyBitFaults(*shadow, offset, out, bytes);
    }
    return finish(bytes, started);
  }

  Status copy(const Block& destination, std::uint64_t destinationOffset, const Block& source,
              std::uint64_t sourceOffset, std::uint64_t bytes) override {
    const auto started = SteadyClock::now();
    RETURN_IF_ERROR(fleet_->checkPresent(index_));
    ASSIGN_OR_RETURN(Shadow * to, shadowFor(destination, destinationOffset, bytes));
    ASSIGN_OR_RETURN(Shadow * from, shadowFor(source, sourceOffset, bytes));
    if (bytes > 0) {
      std::memmove(to->bytes.get() + destinationOffset, from->bytes.get() + sourceOffset, bytes);
    }
    return finish(bytes, started);
  }

  std::optional<std::uint64_t> transferLimitBytes() const override { return spec_.backingBytes; }

 private:
  struct Shadow {
    std::unique_ptr<unsigned char[]> bytes;
    std::uint64_t flippingReads = 0;  // reads that covered the flipping bit so far
  };

  // The block's shadow, made (zero-filled) on first use, once [offset, offset + bytes) is known
  // to lie inside the block and inside its shadow. Null for an empty transfer.
  Result<Shadow*> shadowFor(const Block& block, std::uint64_t offset, std::uint64_t bytes) {
    RETURN_IF_ERROR(checkTransferRange(block.bytes, offset, bytes));
    if (bytes == 0) return static_cast<Shadow*>(nullptr);  // even past the shadow
    const std::uint64_t shadowBytes = std::min(block.bytes, spec_.backingBytes);
    if (offset + bytes > shadowBytes) {
      return makeError(
          ErrorCode::kInvalidArgument,
          fmt::format("the simulated device backs only the first {} bytes of a block "
                      "with host memory; a transfer of {} bytes at offset {} goes "
                      "beyond",
                      spec_.backingBytes, bytes, offset),
          {{"backingBytes", spec_.backingBytes}, {"offset", offset}, {"bytes", bytes}});
    }
    std::lock_guard lock(mutex_);
    Shadow& shadow = shadows_[block.handle];
    if (shadow.bytes == nullptr) {
      shadow.bytes.reset(new (std::nothrow) unsigned char[shadowBytes]());
      if (shadow.bytes == nullptr) {
        shadows_.erase(block.handle);
        return makeError(ErrorCode::kResourceExhausted,
                         fmt::format("cannot allocate the {}-byte host shadow of a simulated block",
                                     shadowBytes));
      }
    }
    return &shadow;
  }

  // The stuck and flipping bits, on `out` (block bytes [offset, offset + bytes) as read).
  void applyBitFaults(Shadow& shadow, std::uint64_t offset, unsigned char* out,
                      std::uint64_t bytes) {
    auto covered = [&](const SimulatedBit& bit) -> unsigned char* {
      const std::uint64_t at = bit.byteOffset();
      return at >= offset && at - offset < bytes ? out + (at - offset) : nullptr;
    };
    const SimulatedFaults& faults = spec_.faults;
    if (faults.stuckBit) {
      if (unsigned char* byte = covered(*faults.stuckBit)) {
        const unsigned char mask = faults.stuckBit->mask();
        *byte = faults.stuckValue != 0 ? (*byte | mask) : (*byte & ~mask);
      }
    }
    if (faults.flippingBit) {
      if (unsigned char* byte = covered(*faults.flippingBit)) {
        std::uint64_t reads = 0;
        {
          std::lock_guard lock(mutex_);
          reads = ++shadow.flippingReads;
        }
        if (reads % 2 == 1) *byte ^= faults.flippingBit->mask();
      }
    }
  }

  // After a transfer's work: the bandwidth cap, then the transfer counts (vanishing).
  Status finish(std::uint64_t bytes, SteadyClock::time_point started) {
    fleet_->throttle(index_, bytes, started);
    fleet_->countTransfer(index_);
    return Status::success();
  }

  const std::shared_ptr<SimulatedFleet> fleet_;
  const std::size_t index_;
  const SimulatedDeviceSpec& spec_;  // owned by fleet_
  const std::uint64_t capacityBytes_;
  std::atomic<std::uint64_t> liveBytes_{0};  // never above capacityBytes_
  std::atomic<std::uintptr_t> nextHandle_{1};
  std::mutex mutex_;  // guards shadows_ (the map) and each Shadow's flippingReads
  std::map<std::uintptr_t, Shadow> shadows_;  // block handle -> shadow
};

}  // namespace

Result<std::unique_ptr<DeviceAllocator>> makeSimulatedAllocator(
    std::shared_ptr<SimulatedFleet> fleet, std::size_t index) {
  if (fleet == nullptr || index >= fleet->size()) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("no simulated device {} in the fleet", index));
  }
  return std::unique_ptr<DeviceAllocator>(
      std::make_unique<SimulatedAllocator>(std::move(fleet), index));
}

Result<std::unique_ptr<DeviceAllocator>> makeSimulatedAllocator(std::uint64_t capacityBytes) {
  SimulatedDeviceSpec spec;
  spec.memoryBytes = capacityBytes;
  SimulatedBackendOptions options;
  options.devices.push_back(spec);
  return makeSimulatedAllocator(std::make_shared<SimulatedFleet>(std::move(options)), 0);
}

}  // namespace deviceops::devices
