// MemoryService: the one ledger of every byte the service holds on every device.
//
// Raw allocations (the /api/memory endpoints), loaded models and training jobs all charge it
// (AllocationKind). Each device has a budget = total x budgetFraction - reserveBytes; a request
// that would exceed the budget is refused with kConflict, one that exceeds what the driver
// reports free with kResourceExhausted, both with the numbers in details. Every allocation is a
// real block from the device's allocator through its pool, recorded in the store before it is
// acknowledged; leases (ttl) are reclaimed by a reaper thread; stop() releases everything.
// After a crash, start() marks records left "held" as released with reason "restart": the OS
// and drivers reclaimed the memory with the process, so no phantom allocation remains.
//
// Thread-safety: every public method is safe to call concurrently. No MemoryService mutex is
// held across a driver call, so a hung driver stalls only the calls that need that driver:
//   - Per device, one mutex guards the held set and admission. Admission reserves the bytes
//     under it, asks the driver for its free memory outside it, then keeps or rolls back the
//     reservation under it; blocks are taken from the pool and given back outside it.
//   - A device's allocator is opened (cuInit, vkCreateDevice: a driver call) on first use under
//     a separate per-device open mutex that only allocate() and openDevice() wait on; status()
//     and optimize() never do: before the open completes they report the ledger alone
//     (allocatorKind empty).
//   - status() reads driver free memory with the allocator's own driverFreeBytes(), live
//     (the model registry measures model loads with it), outside every MemoryService lock: it
//     never waits for another request's driver call through this service, only for its own
//     reading. Before the allocator is open it reports the inventory snapshot's value.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "common/events.h"
#include "devices/allocator.h"
#include "devices/inventory.h"
#include "memory/allocation.h"
#include "memory/ledger_store.h"
#include "memory/pool.h"

namespace deviceops::memory {

struct MemoryOptions {
  double budgetFraction = 0.9;                // of a GPU's total memory
  std::uint64_t reserveBytes = 256ull << 20;  // kept free on every GPU
  double cpuBudgetFraction = 0.5;             // of RAM, for the CPU device
  PoolStrategy strategy = PoolStrategy::kPool;
  double maxCachedFraction = 0.25;  // pool cache bound, fraction of the budget
  std::chrono::milliseconds reaperInterval{1000};
  std::chrono::seconds maxTtl{7 * 24 * 3600};
};

struct AllocateRequest {
  std::string deviceId;  // id, UUID or PCI bus id
  std::uint64_t bytes = 0;
  AllocationKind kind = AllocationKind::kRaw;
  std::string label;
  std::string owner = "anonymous";
  std::optional<std::chrono::seconds> ttl;
  bool pinned = false;
  bool verify = false;
  // Charge the ledger and the budget and record it, but take no block from the allocator: the
  // bytes are held by someone else (e.g. ONNX Runtime for a model). The driver-free check is
  // skipped (those bytes are already out of the driver's free memory); the budget still applies.
  bool accountOnly = false;
  // When refused for budget or driver-free reasons, call the reclaimer (setReclaimer) once and
  // retry once. The model registry turns this off for its own charges (it evicts by itself).
  bool reclaim = true;
};

// Frees bytes on a device when an allocation does not fit (e.g. by evicting idle models).
// Returns the bytes it freed. Called without any MemoryService lock held.
using Reclaimer =
    std::function<std::uint64_t(const std::string& deviceId, std::uint64_t bytesNeeded)>;

struct AllocateResult {
  AllocationRecord record;
  std::uint64_t blockBytes = 0;  // held from the driver for it (size class)
  bool fromPool = false;
  std::optional<devices::VerifyReport> verify;
  std::string allocatorKind;
};

struct DeviceMemoryStatus {
  std::string deviceId;
  std::string allocatorKind;  // empty until the first allocation opened it
  bool simulated = false;
  std::uint64_t totalBytes = 0;
  std::optional<std::uint64_t> driverUsedBytes;
  std::optional<std::uint64_t> driverFreeBytes;
  std::uint64_t budgetBytes = 0;
  std::uint64_t heldBytes = 0;  // by this service, all kinds
  std::map<std::string, std::uint64_t> heldBytesByKind;
  std::uint64_t availableBytes = 0;  // to new requests: min(budget - held, driver free + cache)
  std::uint64_t allocationCount = 0;
  std::uint64_t backendLiveBytes = 0;  // what the allocator holds from the driver
  PoolStats pool;
  PoolStrategy strategy = PoolStrategy::kPool;
};

struct OptimizeResult {
  std::string deviceId;
  std::uint64_t releasedBytes = 0;
  PoolStats pool;
};

// Opens the allocator of a device, on its first allocation (or openDevice). Called without any
// MemoryService lock held, at most once at a time per device; returns kUnavailable (with the
// reason) when the device has no allocator. The daemon's factory: src/daemon/allocators.h.
using AllocatorFactory = std::function<Result<std::unique_ptr<devices::DeviceAllocator>>(
    const devices::DeviceView& device)>;

// A held allocation's memory lent out for direct transfers (self-tests and benchmarks write and
// read their own allocations through the device's allocator). While any borrow of an allocation
// lives, release() of it is refused with kConflict, so the block cannot go back to the driver
// under a transfer. Move-only; the borrow ends when it is destroyed. Must not outlive the
// MemoryService.
class BorrowedBlock {
 public:
  BorrowedBlock(devices::DeviceAllocator& allocator, devices::Block block,
                std::uint64_t requestedBytes, std::function<void()> end)
      : allocator_(&allocator),
        block_(block),
        requestedBytes_(requestedBytes),
        end_(std::move(end)) {}
  BorrowedBlock(BorrowedBlock&& other) noexcept
      : allocator_(other.allocator_),
        block_(other.block_),
        requestedBytes_(other.requestedBytes_),
        end_(std::exchange(other.end_, nullptr)) {}
  BorrowedBlock& operator=(BorrowedBlock&&) = delete;
  BorrowedBlock(const BorrowedBlock&) = delete;
  BorrowedBlock& operator=(const BorrowedBlock&) = delete;
  ~BorrowedBlock() {
    if (end_) end_();
  }

  devices::DeviceAllocator& allocator() const { return *allocator_; }
  // block().bytes is the size class held from the driver; requestedBytes() what was asked for.
  const devices::Block& block() const { return block_; }
  std::uint64_t requestedBytes() const { return requestedBytes_; }

 private:
  devices::DeviceAllocator* allocator_;
  devices::Block block_;
  std::uint64_t requestedBytes_;
  std::function<void()> end_;
};

class MemoryService {
 public:
  MemoryService(const devices::Inventory& inventory, std::unique_ptr<LedgerStore> store,
                MemoryOptions options, AllocatorFactory factory);
  ~MemoryService();
  MemoryService(const MemoryService&) = delete;
  MemoryService& operator=(const MemoryService&) = delete;

  // Reconciles the store (held -> released "restart") and starts the lease reaper.
  Result<std::size_t> start();
  // Releases every held allocation (reason "shutdown"), trims pools, stops the reaper.
  void stop();

  // Refused over budget: kConflict; over the driver's free memory: kResourceExhausted (both with
  // the numbers, and a "memory.refused" event). Before refusing, the installed reclaimer (when
  // request.reclaim) gets one chance.
  Result<AllocateResult> allocate(const AllocateRequest& request);
  // The same, but an admission refusal calls `reclaim` (instead of the installed reclaimer,
  // whatever request.reclaim says) once with the shortfall in bytes, and admission is retried
  // once. The model registry charges models with its own eviction this way. `reclaim` is called
  // without any MemoryService lock held; an empty one means: no reclaim.
  Result<AllocateResult> allocate(const AllocateRequest& request, const Reclaimer& reclaim);
  // Installs (or, with an empty function, removes) the reclaimer. The reclaimer must outlive its
  // installation; remove it before destroying what it calls.
  void setReclaimer(Reclaimer reclaimer);
  // Where "memory.refused" events go; null: nowhere. The sink must outlive its installation.
  void setEventSink(EventSink* events);
  // kNotFound for an unknown or already released id; nothing reaches the driver then.
  Result<AllocationRecord> release(const std::string& allocationId,
                                   const std::string& reason = "freed");
  Result<AllocationRecord> find(const std::string& allocationId);
  // Lends a held allocation's block (see BorrowedBlock). kNotFound for an unknown or released
  // id; kInvalidArgument for an account-only allocation (a model's: no block to lend).
  Result<BorrowedBlock> borrow(const std::string& allocationId);
  Result<std::vector<AllocationRecord>> list(const AllocationFilter& filter);
  Result<DeviceMemoryStatus> status(const std::string& deviceId);
  // Opens the device's allocator now rather than on its first allocation, so that status()
  // reads the driver's free memory live (the model registry measures model loads with it).
  Status openDevice(const std::string& deviceId);
  Result<OptimizeResult> optimize(const std::string& deviceId);
  // Releases leases whose expiry has passed; returns how many. Called by the reaper.
  std::size_t reapExpired();

 private:
  struct DeviceSlot;
  // Why admission refused: the error for the client (its details carry the numbers) and, typed,
  // the bytes missing for the request to fit (what a reclaimer is asked to free).
  struct Refusal {
    Error error;
    std::uint64_t shortfallBytes = 0;
  };
  Result<std::shared_ptr<DeviceSlot>> slotFor(const std::string& deviceKey, bool open);
  // Opens the slot's allocator and pool once (under slot.openMutex, no other lock held).
  Status openSlot(DeviceSlot& slot, const devices::DeviceView* view);
  std::uint64_t budgetFor(const DeviceSlot& slot) const;
  // Admission: reserves request.bytes under the slot's mutex, checks the driver's free memory
  // outside it, and rolls the reservation back on a refusal. Precondition: the slot is open.
  std::optional<Refusal> admit(DeviceSlot& slot, const AllocateRequest& request);
  // admit(), and on a refusal `reclaim` (when set) once with the shortfall, then admit() again.
  std::optional<Refusal> admitOrReclaim(DeviceSlot& slot, const AllocateRequest& request,
                                        const Reclaimer& reclaim);
  void publishRefusal(const DeviceSlot& slot, const AllocateRequest& request,
                      const Refusal& refusal);

  const devices::Inventory& inventory_;
  std::unique_ptr<LedgerStore> store_;
  MemoryOptions options_;
  AllocatorFactory factory_;
  std::mutex mutex_;                                          // guards slots_, owners_
  std::map<std::string, std::shared_ptr<DeviceSlot>> slots_;  // device id -> slot
  std::map<std::string, std::string> owners_;                 // allocation id -> device id
  std::mutex hooksMutex_;                                     // guards reclaimer_
  Reclaimer reclaimer_;
  std::atomic<EventSink*> events_{nullptr};
  std::thread reaper_;
  std::mutex reaperMutex_;
  std::condition_variable reaperWake_;
  bool stopping_ = false;  // guarded by reaperMutex_
};

}  // namespace deviceops::memory
