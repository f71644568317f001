#include "memory/memory_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>

#include "common/byte_size.h"

namespace deviceops::memory {
namespace {

using Clock = std::chrono::system_clock;

std::string newAllocationId() {
  static std::mutex mutex;
  static std::mt19937_64 generator{std::random_device{}()};
  std::lock_guard lock(mutex);
  return fmt::format("alloc-{:016x}", generator());
}

nlohmann::json numbers(std::uint64_t requested, std::uint64_t available, std::uint64_t budget,
                       std::uint64_t held) {
  return {{"requestedBytes", requested},
          {"availableBytes", available},
          {"budgetBytes", budget},
          {"heldBytes", held}};
}

}  // namespace

struct MemoryService::DeviceSlot {
  // Set when the slot is made, never changed.
  std::string deviceId;
  bool simulated = false;
  bool isCpu = false;
  std::uint64_t totalBytes = 0;

  // Opening: openMutex serialises the factory call (a driver call); only allocate() and
  // openDevice() wait on it. `opened` is set (release) after allocator and pool exist; from then
  // on both pointers are immutable and read without a lock after opened.load(acquire).
  std::mutex openMutex;
  std::atomic<bool> opened{false};
  std::unique_ptr<devices::DeviceAllocator> allocator;
  std::unique_ptr<MemoryPool> pool;  // declared after the allocator: destroyed first

  std::mutex mutex;  // guards everything below; never held across a driver call
  struct Held {
    AllocationRecord record;
    PooledBlock block;
    bool accountOnly = false;  // no block: the bytes are held outside this service
    int borrows = 0;           // live BorrowedBlocks: release() refuses while > 0
  };
  std::map<std::string, Held> held;
  std::uint64_t heldBytes = 0;
  std::uint64_t reservingBytes = 0;  // admitted, allocation in progress
  std::map<std::string, std::uint64_t> heldByKind;

  bool isOpen() const { return opened.load(std::memory_order_acquire); }
};

MemoryService::MemoryService(const devices::Inventory& inventory,
                             std::unique_ptr<LedgerStore> store, MemoryOptions options,
                             AllocatorFactory factory)
    : inventory_(inventory),
      store_(std::move(store)),
      options_(options),
      factory_(std::move(factory)) {}

MemoryService::~MemoryService() { stop(); }

Result<std::size_t> MemoryService::start() {
  Result<std::size_t> reconciled = store_->releaseAllHeld(Clock::now(), "restart");
  if (!reconciled.ok()) return reconciled.error();
  if (*reconciled > 0) {
    spdlog::warn("memory ledger: {} allocations of a previous run marked released (restart)",
                 *reconciled);
  }
  reaper_ = std::thread([this] {
    std::unique_lock lock(reaperMutex_);
    while (!stopping_) {
      reaperWake_.wait_for(lock, options_.reaperInterval, [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      reapExpired();
      lock.lock();
    }
  });
  return reconciled;
}

void MemoryService::stop() {
  {
    std::lock_guard lock(reaperMutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  reaperWake_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  std::vector<std::string> ids;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, device] : owners_) ids.push_back(id);
  }
  for (const std::string& id : ids) (void)release(id, "shutdown");
  std::vector<std::shared_ptr<DeviceSlot>> slots;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, slot] : slots_) slots.push_back(slot);
  }
  for (const auto& slot : slots) {
    if (slot->isOpen()) slot->pool->trim();  // driver calls: no lock of ours held
  }
}

std::uint64_t MemoryService::budgetFor(const DeviceSlot& slot) const {
  const double total = static_cast<double>(slot.totalBytes);
  if (slot.isCpu) return static_cast<std::uint64_t>(total * options_.cpuBudgetFraction);
  const double budget =
      total * options_.budgetFraction - static_cast<double>(options_.reserveBytes);
  return budget > 0 ? static_cast<std::uint64_t>(budget) : 0;
}

Result<std::shared_ptr<MemoryService::DeviceSlot>> MemoryService::slotFor(
    const std::string& deviceKey, bool open) {
  auto snapshot = inventory_.snapshot();
  const devices::DeviceView* view = snapshot->find(deviceKey);
  std::shared_ptr<DeviceSlot> slot;
  {
    std::lock_guard lock(mutex_);
    if (view == nullptr) {
      auto existing = slots_.find(deviceKey);
      if (existing == slots_.end()) {
        return makeError(
            ErrorCode::kNotFound,
            fmt::format("no device with id '{}'; GET /api/device lists them", deviceKey),
            {{"deviceId", deviceKey}});
      }
      slot = existing->second;
    } else {
      auto& entry = slots_[view->id];
      if (!entry) {
        entry = std::make_shared<DeviceSlot>();
        entry->deviceId = view->id;
        entry->simulated = view->record.simulated;
        entry->isCpu = view->record.type == devices::DeviceType::kCpu;
        entry->totalBytes = view->record.memory.totalBytes;
      }
      slot = entry;
    }
  }
  if (!open || slot->isOpen()) return slot;
  if (Status opened = openSlot(*slot, view); !opened.ok()) return opened.error();
  return slot;
}

Status MemoryService::openSlot(DeviceSlot& slot, const devices::DeviceView* view) {
  std::lock_guard openLock(slot.openMutex);
  if (slot.isOpen()) return Status::success();  // another caller opened it meanwhile
  if (view == nullptr) {
    return makeError(ErrorCode::kUnavailable, "device " + slot.deviceId + " is no longer present");
  }
  Result<std::unique_ptr<devices::DeviceAllocator>> allocator = factory_(*view);  // driver call
  if (!allocator.ok()) return allocator.error();
  slot.allocator = std::move(allocator.value());
  const auto maxCached =
      static_cast<std::uint64_t>(static_cast<double>(budgetFor(slot)) * options_.maxCachedFraction);
  slot.pool = std::make_unique<MemoryPool>(*slot.allocator, options_.strategy, maxCached);
  slot.opened.store(true, std::memory_order_release);
  spdlog::info("memory: opened {} allocator for {}", slot.allocator->kind(), slot.deviceId);
  return Status::success();
}

std::optional<MemoryService::Refusal> MemoryService::admit(DeviceSlot& slot,
                                                           const AllocateRequest& request) {
  const std::uint64_t budget = budgetFor(slot);
  {
    std::lock_guard lock(slot.mutex);
    const std::uint64_t committed = slot.heldBytes + slot.reservingBytes;
    const std::uint64_t available = budget > committed ? budget - committed : 0;
    if (request.bytes > available) {
      Error error = makeError(
          ErrorCode::kConflict,
          fmt::format("{} bytes requested on {}, but only {} of its budget of {} bytes are "
                      "available ({} held by this service)",
                      request.bytes, slot.deviceId, available, budget, slot.heldBytes),
          numbers(request.bytes, available, budget, slot.heldBytes));
      return Refusal{std::move(error), request.bytes - available};
    }
    slot.reservingBytes += request.bytes;  // concurrent admissions see it from now on
  }
  if (request.accountOnly) return std::nullopt;  // those bytes are already out of driver free
  // Asked outside the lock: a hung driver must not block the device's other requests.
  const std::optional<std::uint64_t> driverFree = slot.allocator->driverFreeBytes();
  const std::uint64_t cached = slot.pool->stats().cachedBytes;
  if (!driverFree || request.bytes <= *driverFree + cached) return std::nullopt;
  std::lock_guard lock(slot.mutex);
  slot.reservingBytes -= request.bytes;
  const std::uint64_t available = *driverFree + cached;
  nlohmann::json details = numbers(request.bytes, available, budget, slot.heldBytes);
  details["driverFreeBytes"] = *driverFree;
  Error error = makeError(ErrorCode::kResourceExhausted,
                          fmt::format("{} bytes requested on {}, but the driver reports only {} "
                                      "bytes free",
                                      request.bytes, slot.deviceId, *driverFree),
                          std::move(details));
  return Refusal{std::move(error), request.bytes - available};
}

std::optional<MemoryService::Refusal> MemoryService::admitOrReclaim(DeviceSlot& slot,
                                                                    const AllocateRequest& request,
                                                                    const Reclaimer& reclaim) {
  std::optional<Refusal> refused = admit(slot, request);
  if (!refused || !reclaim) return refused;
  const std::uint64_t freed = reclaim(slot.deviceId, refused->shortfallBytes);
  if (freed > 0) {
    spdlog::info("memory: reclaimed {} bytes on {} for a request of {} bytes", freed, slot.deviceId,
                 request.bytes);
  }
  return admit(slot, request);
}

void MemoryService::publishRefusal(const DeviceSlot& slot, const AllocateRequest& request,
                                   const Refusal& refusal) {
  EventSink* events = events_.load();
  if (events == nullptr) return;
  Event event;
  event.type = "memory.refused";
  event.deviceId = slot.deviceId;
  event.severity = "warning";
  event.message = refusal.error.message;
  event.details = refusal.error.details;
  event.details["kind"] = std::string(allocationKindName(request.kind));
  event.details["owner"] = request.owner;
  event.details["label"] = request.label;
  events->publish(std::move(event));
}

void MemoryService::setReclaimer(Reclaimer reclaimer) {
  std::lock_guard lock(hooksMutex_);
  reclaimer_ = std::move(reclaimer);
}

void MemoryService::setEventSink(EventSink* events) { events_.store(events); }

Result<AllocateResult> MemoryService::allocate(const AllocateRequest& request) {
  Reclaimer installed;
  if (request.reclaim) {
    std::lock_guard lock(hooksMutex_);
    installed = reclaimer_;
  }
  return allocate(request, installed);
}

Result<AllocateResult> MemoryService::allocate(const AllocateRequest& request,
                                               const Reclaimer& reclaim) {
  if (request.bytes == 0 || request.bytes > kMaxByteSize) {
    return makeError(ErrorCode::kInvalidArgument, "sizeBytes must be between 1 and 2^53 bytes",
                     {{"requestedBytes", request.bytes}});
  }
  if (request.ttl && (request.ttl->count() < 1 || *request.ttl > options_.maxTtl)) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("ttlSeconds must be between 1 and {}", options_.maxTtl.count()));
  }
  Result<std::shared_ptr<DeviceSlot>> found = slotFor(request.deviceId, true);
  if (!found.ok()) return found.error();
  DeviceSlot& slot = **found;
  if (request.bytes > slot.totalBytes) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} bytes is more than device {} has in total ({} bytes)",
                                 request.bytes, slot.deviceId, slot.totalBytes),
                     {{"requestedBytes", request.bytes}, {"totalBytes", slot.totalBytes}});
  }
  if (request.pinned && !slot.isCpu) {
    return makeError(ErrorCode::kInvalidArgument, "pinned applies to the cpu device only");
  }
  if (request.verify && request.accountOnly) {
    return makeError(ErrorCode::kInvalidArgument,
                     "verify is not possible for an account-only charge (no block behind it)");
  }
  if (request.verify && slot.allocator->accountingOnly()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "verify is not possible on a simulated device (no memory behind it)");
  }
  if (std::optional<Refusal> refused = admitOrReclaim(slot, request, reclaim)) {
    publishRefusal(slot, request, *refused);
    return std::move(refused->error);
  }
  const auto unreserve = [&slot, &request] {
    std::lock_guard lock(slot.mutex);
    slot.reservingBytes -= request.bytes;
  };

  Result<PooledBlock> block = PooledBlock{};
  if (!request.accountOnly) block = slot.pool->acquire(request.bytes, {request.pinned});
  if (!block.ok()) {
    unreserve();
    Error error = block.error();
    error.details["requestedBytes"] = request.bytes;
    error.details["deviceId"] = slot.deviceId;
    return error;
  }
  AllocateResult result;
  result.blockBytes = block->block.bytes;
  result.fromPool = block->fromCache;
  result.allocatorKind = request.accountOnly ? "account-only" : std::string(slot.allocator->kind());
  if (request.verify) {
    Result<devices::VerifyReport> report = slot.allocator->verify(block->block);
    if (!report.ok()) {
      slot.pool->giveBack(*block);
      unreserve();
      return report.error();
    }
    result.verify = *report;
  }
  AllocationRecord& record = result.record;
  record.id = newAllocationId();
  record.deviceId = slot.deviceId;
  record.bytes = request.bytes;
  record.kind = request.kind;
  record.label = request.label;
  record.owner = request.owner;
  record.createdAt = Clock::now();
  if (request.ttl) record.expiresAt = record.createdAt + *request.ttl;
  record.pinned = request.pinned;
  record.simulated = slot.allocator->accountingOnly();
  if (Status stored = store_->insert(record); !stored.ok()) {
    if (!request.accountOnly) slot.pool->giveBack(*block);
    unreserve();
    return makeError(
        ErrorCode::kUnavailable,
        "the allocation could not be recorded, so it was undone: " + stored.error().message);
  }
  {
    std::lock_guard lock(slot.mutex);
    slot.reservingBytes -= request.bytes;
    slot.heldBytes += request.bytes;
    slot.heldByKind[std::string(allocationKindName(record.kind))] += request.bytes;
    slot.held[record.id] = DeviceSlot::Held{record, *block, request.accountOnly};
  }
  std::lock_guard lock(mutex_);
  owners_[record.id] = slot.deviceId;
  return result;
}

Result<AllocationRecord> MemoryService::release(const std::string& allocationId,
                                                const std::string& reason) {
  std::shared_ptr<DeviceSlot> slot;
  {
    std::lock_guard lock(mutex_);
    auto owner = owners_.find(allocationId);
    if (owner != owners_.end()) {
      slot = slots_.at(owner->second);
      owners_.erase(owner);  // claims it: a concurrent second release finds nothing
    }
  }
  if (!slot) {
    Result<std::optional<AllocationRecord>> known = store_->find(allocationId);
    if (known.ok() && known->has_value()) {
      return makeError(ErrorCode::kNotFound,
                       fmt::format("allocation {} was already released ({})", allocationId,
                                   (*known)->releaseReason),
                       {{"allocationId", allocationId}, {"state", "released"}});
    }
    return makeError(ErrorCode::kNotFound, "no allocation with id '" + allocationId + "'",
                     {{"allocationId", allocationId}});
  }
  DeviceSlot::Held held;
  {
    std::unique_lock lock(slot->mutex);
    auto it = slot->held.find(allocationId);
    if (it->second.borrows > 0) {
      lock.unlock();
      {
        std::lock_guard ownersLock(mutex_);
        owners_.emplace(allocationId, slot->deviceId);  // not released after all
      }
      return makeError(ErrorCode::kConflict,
                       fmt::format("allocation {} is in use by a running self-test; cancel the "
                                   "run (or wait for it) to release it",
                                   allocationId),
                       {{"allocationId", allocationId}});
    }
    held = std::move(it->second);
    slot->held.erase(it);
    slot->heldBytes -= held.record.bytes;
    slot->heldByKind[std::string(allocationKindName(held.record.kind))] -= held.record.bytes;
  }
  if (!held.accountOnly) slot->pool->giveBack(held.block);
  const auto now = Clock::now();
  if (Status stored = store_->markReleased(allocationId, now, reason); !stored.ok()) {
    spdlog::error("memory ledger: release of {} not recorded: {}", allocationId,
                  stored.error().message);
  }
  held.record.state = AllocationState::kReleased;
  held.record.releasedAt = now;
  held.record.releaseReason = reason;
  return held.record;
}

Result<BorrowedBlock> MemoryService::borrow(const std::string& allocationId) {
  std::shared_ptr<DeviceSlot> slot;
  {
    std::lock_guard lock(mutex_);
    auto owner = owners_.find(allocationId);
    if (owner != owners_.end()) slot = slots_.at(owner->second);
  }
  if (!slot) {
    return makeError(ErrorCode::kNotFound,
                     "no held allocation with id '" + allocationId + "' to borrow",
                     {{"allocationId", allocationId}});
  }
  std::lock_guard lock(slot->mutex);
  auto it = slot->held.find(allocationId);
  if (it == slot->held.end()) {
    return makeError(ErrorCode::kNotFound, "allocation '" + allocationId + "' was released",
                     {{"allocationId", allocationId}});
  }
  if (it->second.accountOnly) {
    return makeError(ErrorCode::kInvalidArgument,
                     "allocation '" + allocationId +
                         "' is account-only (its bytes are held outside the ledger's allocator)",
                     {{"allocationId", allocationId}});
  }
  ++it->second.borrows;
  return BorrowedBlock(*slot->allocator, it->second.block.block, it->second.record.bytes,
                       [slot, allocationId] {
                         std::lock_guard endLock(slot->mutex);
                         auto held = slot->held.find(allocationId);
                         if (held != slot->held.end()) --held->second.borrows;
                       });
}

Result<AllocationRecord> MemoryService::find(const std::string& allocationId) {
  Result<std::optional<AllocationRecord>> found = store_->find(allocationId);
  if (!found.ok()) return found.error();
  if (!found->has_value()) {
    return makeError(ErrorCode::kNotFound, "no allocation with id '" + allocationId + "'",
                     {{"allocationId", allocationId}});
  }
  return **found;
}

Result<std::vector<AllocationRecord>> MemoryService::list(const AllocationFilter& filter) {
  return store_->list(filter);
}

Result<DeviceMemoryStatus> MemoryService::status(const std::string& deviceId) {
  Result<std::shared_ptr<DeviceSlot>> found = slotFor(deviceId, false);
  if (!found.ok()) return found.error();
  DeviceSlot& slot = **found;
  DeviceMemoryStatus status;
  auto snapshot = inventory_.snapshot();
  if (const devices::DeviceView* view = snapshot->find(slot.deviceId)) {
    status.driverUsedBytes = view->record.memory.usedBytes;
    status.driverFreeBytes = view->record.memory.freeBytes;
  }
  status.deviceId = slot.deviceId;
  status.simulated = slot.simulated;
  status.totalBytes = slot.totalBytes;
  status.budgetBytes = budgetFor(slot);
  status.heldBytesByKind = {{"raw", 0}, {"model", 0}, {"training", 0}};
  status.strategy = options_.strategy;
  {
    std::lock_guard lock(slot.mutex);
    status.heldBytes = slot.heldBytes;
    for (const auto& [kind, bytes] : slot.heldByKind) status.heldBytesByKind[kind] = bytes;
    status.allocationCount = slot.held.size();
    const std::uint64_t committed = slot.heldBytes + slot.reservingBytes;
    status.availableBytes = status.budgetBytes > committed ? status.budgetBytes - committed : 0;
  }
  if (!slot.isOpen()) return status;  // opening (perhaps hung) or never used: the ledger alone
  // Outside the slot's mutex: the allocator and the pool answer for themselves.
  status.allocatorKind = std::string(slot.allocator->kind());
  status.backendLiveBytes = slot.allocator->liveBytes();
  status.pool = slot.pool->stats();
  if (auto driverFree = slot.allocator->driverFreeBytes()) {
    status.driverFreeBytes = driverFree;
    status.availableBytes = std::min(status.availableBytes, *driverFree + status.pool.cachedBytes);
  }
  return status;
}

Status MemoryService::openDevice(const std::string& deviceId) {
  Result<std::shared_ptr<DeviceSlot>> found = slotFor(deviceId, true);
  if (!found.ok()) return found.error();
  return {};
}

Result<OptimizeResult> MemoryService::optimize(const std::string& deviceId) {
  Result<std::shared_ptr<DeviceSlot>> found = slotFor(deviceId, false);
  if (!found.ok()) return found.error();
  DeviceSlot& slot = **found;
  OptimizeResult result;
  result.deviceId = slot.deviceId;
  if (slot.isOpen()) {  // never waits on an open in progress: nothing is cached before it
    result.releasedBytes = slot.pool->trim();
    result.pool = slot.pool->stats();
  }
  return result;
}

std::size_t MemoryService::reapExpired() {
  const auto now = Clock::now();
  std::vector<std::string> expired;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, slot] : slots_) {
      std::lock_guard slotLock(slot->mutex);
      for (const auto& [allocationId, held] : slot->held) {
        if (held.record.expiresAt && *held.record.expiresAt <= now) {
          expired.push_back(allocationId);
        }
      }
    }
  }
  std::size_t released = 0;
  for (const std::string& id : expired) {
    if (release(id, "expired").ok()) ++released;
  }
  if (released > 0) spdlog::info("memory: {} expired leases reclaimed", released);
  return released;
}

}  // namespace deviceops::memory
