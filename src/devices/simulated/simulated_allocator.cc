// The simulated allocator: accounting only, for tests of multi-device logic. Blocks have no
// memory behind them (hostAddress is null, handle a unique non-zero token).
#include <fmt/format.h>

#include <atomic>

#include "devices/allocator.h"

namespace deviceops::devices {
namespace {

class SimulatedAllocator final : public DeviceAllocator {
 public:
  explicit SimulatedAllocator(std::uint64_t capacityBytes) : capacityBytes_(capacityBytes) {}

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

 private:
  const std::uint64_t capacityBytes_;
  std::atomic<std::uint64_t> liveBytes_{0};  // never above capacityBytes_
  std::atomic<std::uintptr_t> nextHandle_{1};
};

}  // namespace

Result<std::unique_ptr<DeviceAllocator>> makeSimulatedAllocator(std::uint64_t capacityBytes) {
  return std::unique_ptr<DeviceAllocator>(std::make_unique<SimulatedAllocator>(capacityBytes));
}

}  // namespace deviceops::devices
