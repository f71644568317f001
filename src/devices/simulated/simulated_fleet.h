// SimulatedFleet: the state the simulated backend and the simulated allocators of the same
// devices share, so that a fault acted out by one is seen by the other (a device that vanishes
// after N transfers also disappears from the backend's polls). Created once from the
// configuration (SimulatedBackendOptions) and held by shared_ptr by the backend and by every
// simulated allocator made from it.
//
// Thread-safety: every method may be called from any thread concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/result.h"
#include "devices/allocator.h"
#include "devices/simulated/simulated_backend.h"

namespace deviceops::devices {

class SimulatedFleet {
 public:
  explicit SimulatedFleet(SimulatedBackendOptions options);
  SimulatedFleet(const SimulatedFleet&) = delete;
  SimulatedFleet& operator=(const SimulatedFleet&) = delete;

  std::size_t size() const { return specs_.size(); }
  // Precondition for every per-device method: index < size().
  const SimulatedDeviceSpec& spec(std::size_t index) const { return specs_[index]; }

  // --- Allocator side.
  bool vanished(std::size_t index) const;
  // kUnavailable ("simulated device <index> vanished ...") once the device has vanished.
  Status checkPresent(std::size_t index) const;
  // Counts one successful transfer; the vanishAfterTransfers-th makes the device vanish.
  void countTransfer(std::size_t index);
  // Honours the bandwidth cap (if any): sleeps until a transfer of `bytes` that started at
  // `started` has taken at least bytes / cap, the device's transfers queuing behind each other
  // (concurrent transfers share the cap).
  void throttle(std::size_t index, std::uint64_t bytes,
                std::chrono::steady_clock::time_point started);

  // --- Backend side.
  // Called at the start of every poll. Returns true at once until the poll number exceeds the
  // smallest hangAfterPolls of any device; from then on blocks until interruptPolls(), and
  // returns false. After interruptPolls() it returns false at once.
  bool enterPoll();
  // Wakes every poll blocked in enterPoll() and makes later ones return false at once.
  void interruptPolls();
  // Polls entered so far.
  std::uint64_t polls() const;

 private:
  struct DeviceState {
    std::atomic<std::uint64_t> transfers{0};
    std::atomic<bool> vanished{false};
    std::mutex linkMutex;                             // guards busyUntil
    std::chrono::steady_clock::time_point busyUntil;  // when the capped link is free again
  };

  const std::vector<SimulatedDeviceSpec> specs_;
  std::vector<std::unique_ptr<DeviceState>> states_;  // one per spec
  mutable std::mutex pollMutex_;                      // guards polls_, interrupted_
  std::condition_variable pollChanged_;
  std::uint64_t polls_ = 0;
  bool interrupted_ = false;
};

// The fleet index of a device the simulated backend reported (its localKey; also
// properties.index before the inventory nests properties by backend), as it appears in an
// inventory snapshot. nullopt for any other device.
std::optional<std::size_t> simulatedFleetIndex(const DeviceRecord& record);

// A simulated allocator for device `index` of `fleet`: capacity spec.memoryBytes, transfers
// reaching spec.backingBytes of each block, faults acted out. kInvalidArgument when `fleet` is
// null or `index` out of range.
Result<std::unique_ptr<DeviceAllocator>> makeSimulatedAllocator(
    std::shared_ptr<SimulatedFleet> fleet, std::size_t index);

}  // namespace deviceops::devices
