// Test doubles for unit tests of memory logic (pool, ledger). Not real allocators: the real ones
// are tested in *_allocator_test.cc and through the daemon in tests/.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "devices/allocator.h"
#include "memory/ledger_store.h"

namespace deviceops::memory::testing {

// Hands out numbered handles up to a capacity; counts driver calls. Transfers reach the first
// `transferBackingBytes` of each block (a zero-filled host buffer made on the block's first
// transfer, freed on release); ranges beyond are kInvalidArgument, like the simulated allocator.
class CountingAllocatorDouble final : public devices::DeviceAllocator {
 public:
  explicit CountingAllocatorDouble(std::uint64_t capacity,
                                   std::uint64_t transferBackingBytes = 1 << 20)
      : capacity_(capacity), transferBackingBytes_(transferBackingBytes) {}
  std::string_view kind() const override { return "counting-double"; }
  Result<devices::Block> allocate(std::uint64_t bytes,
                                  const devices::AllocationOptions& options) override {
    std::lock_guard lock(mutex_);
    ++allocations;
    if (live_ + bytes > capacity_) {
      return makeError(ErrorCode::kResourceExhausted, "double: out of memory");
    }
    live_ += bytes;
    devices::Block block{bytes, ++nextHandle_, nullptr, options.pinned};
    outstanding_[block.handle] = bytes;
    return block;
  }
  void release(const devices::Block& block) override {
    std::lock_guard lock(mutex_);
    ++releases;
    auto it = outstanding_.find(block.handle);
    if (it == outstanding_.end()) {
      ++invalidReleases;  // a double free reached the "driver"
      return;
    }
    live_ -= it->second;
    outstanding_.erase(it);
    backing_.erase(block.handle);
  }
  Result<devices::VerifyReport> verify(const devices::Block& block) override {
    devices::VerifyReport report;
    report.bytesTested = block.bytes;
    report.writeSeconds = report.readSeconds = 1e-3;
    return report;
  }
  std::optional<std::uint64_t> driverFreeBytes() override {
    std::lock_guard lock(mutex_);
    return capacity_ - live_;
  }
  std::uint64_t liveBytes() const override {
    std::lock_guard lock(mutex_);
    return live_;
  }
  Status write(const devices::Block& block, std::uint64_t offset, const void* source,
               std::uint64_t bytes) override {
    std::lock_guard lock(mutex_);
    auto backing = backingFor(block, offset, bytes);
    if (!backing.ok()) return backing.error();
    if (bytes > 0) std::memcpy(*backing + offset, source, bytes);
    ++transfers;
    return Status::success();
  }
  Status read(const devices::Block& block, std::uint64_t offset, void* destination,
              std::uint64_t bytes) override {
    std::lock_guard lock(mutex_);
    auto backing = backingFor(block, offset, bytes);
    if (!backing.ok()) return backing.error();
    if (bytes > 0) std::memcpy(destination, *backing + offset, bytes);
    ++transfers;
    return Status::success();
  }
  Status copy(const devices::Block& destination, std::uint64_t destinationOffset,
              const devices::Block& source, std::uint64_t sourceOffset,
              std::uint64_t bytes) override {
    std::lock_guard lock(mutex_);
    auto to = backingFor(destination, destinationOffset, bytes);
    if (!to.ok()) return to.error();
    auto from = backingFor(source, sourceOffset, bytes);
    if (!from.ok()) return from.error();
    if (bytes > 0) std::memmove(*to + destinationOffset, *from + sourceOffset, bytes);
    ++transfers;
    return Status::success();
  }
  std::optional<std::uint64_t> transferLimitBytes() const override { return transferBackingBytes_; }
  std::atomic<int> allocations{0};
  std::atomic<int> releases{0};
  std::atomic<int> invalidReleases{0};
  std::atomic<int> transfers{0};  // successful write/read/copy calls

 private:
  // The block's host buffer (made on first use), after the range checks. Precondition: mutex_.
  Result<unsigned char*> backingFor(const devices::Block& block, std::uint64_t offset,
                                    std::uint64_t bytes) {
    RETURN_IF_ERROR(devices::checkTransferRange(block.bytes, offset, bytes));
    if (bytes == 0) return static_cast<unsigned char*>(nullptr);
    const std::uint64_t backed = std::min(block.bytes, transferBackingBytes_);
    if (offset + bytes > backed) {
      return makeError(ErrorCode::kInvalidArgument, "double: transfers reach only the first " +
                                                        std::to_string(transferBackingBytes_) +
                                                        " bytes of a block");
    }
    if (outstanding_.count(block.handle) == 0) {
      return makeError(ErrorCode::kInvalidArgument, "double: not a live block");
    }
    std::vector<unsigned char>& buffer = backing_[block.handle];
    if (buffer.empty()) buffer.resize(backed);
    return buffer.data();
  }

  mutable std::mutex mutex_;
  std::uint64_t capacity_;
  const std::uint64_t transferBackingBytes_;
  std::uint64_t live_ = 0;
  std::uintptr_t nextHandle_ = 0;
  std::map<std::uintptr_t, std::uint64_t> outstanding_;
  std::map<std::uintptr_t, std::vector<unsigned char>> backing_;  // block handle -> host buffer
};

// A stand-in for one hung driver call: a test closes the gate, the next driver call of a double
// that reaches it waits there, the test observes that (waitForWaiter) and opens the gate again.
// While one call waits, other calls pass (a driver whose one call hangs still answers others).
// The held call goes on after `maxWait` anyway, so that a failing test ends instead of hanging.
// Thread-safety: every method may be called concurrently.
class DriverGateDouble {
 public:
  explicit DriverGateDouble(std::chrono::milliseconds maxWait = std::chrono::seconds(5))
      : maxWait_(maxWait) {}
  void close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  void open() {
    {
      std::lock_guard lock(mutex_);
      closed_ = false;
    }
    changed_.notify_all();
  }
  // Called by a double: the first call while the gate is closed waits until it opens (at most
  // maxWait); any other call returns at once.
  void pass() {
    std::unique_lock lock(mutex_);
    if (!closed_ || waiting_ > 0) return;
    ++waiting_;
    changed_.notify_all();
    changed_.wait_for(lock, maxWait_, [this] { return !closed_; });
    --waiting_;
  }
  // True once a call waits at the gate, false after `timeout` without one.
  bool waitForWaiter(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [this] { return waiting_ > 0; });
  }

 private:
  const std::chrono::milliseconds maxWait_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool closed_ = false;  // guarded by mutex_
  int waiting_ = 0;      // guarded by mutex_
};

// A CountingAllocatorDouble whose `gated` driver call (allocate: cuMemAlloc, or
// driverFreeBytes: cuMemGetInfo) first passes `gate`: while the gate is closed, one such call
// hangs.
class GatedAllocatorDouble final : public devices::DeviceAllocator {
 public:
  enum class Call { kAllocate, kDriverFreeBytes };
  GatedAllocatorDouble(std::uint64_t capacity, DriverGateDouble& gate, Call gated)
      : inner_(capacity), gate_(gate), gated_(gated) {}
  std::string_view kind() const override { return "gated-double"; }
  Result<devices::Block> allocate(std::uint64_t bytes,
                                  const devices::AllocationOptions& options) override {
    if (gated_ == Call::kAllocate) gate_.pass();
    return inner_.allocate(bytes, options);
  }
  void release(const devices::Block& block) override { inner_.release(block); }
  Result<devices::VerifyReport> verify(const devices::Block& block) override {
    return inner_.verify(block);
  }
  std::optional<std::uint64_t> driverFreeBytes() override {
    if (gated_ == Call::kDriverFreeBytes) gate_.pass();
    return inner_.driverFreeBytes();
  }
  std::uint64_t liveBytes() const override { return inner_.liveBytes(); }
  Status write(const devices::Block& block, std::uint64_t offset, const void* source,
               std::uint64_t bytes) override {
    return inner_.write(block, offset, source, bytes);
  }
  Status read(const devices::Block& block, std::uint64_t offset, void* destination,
              std::uint64_t bytes) override {
    return inner_.read(block, offset, destination, bytes);
  }
  Status copy(const devices::Block& destination, std::uint64_t destinationOffset,
              const devices::Block& source, std::uint64_t sourceOffset,
              std::uint64_t bytes) override {
    return inner_.copy(destination, destinationOffset, source, sourceOffset, bytes);
  }
  std::optional<std::uint64_t> transferLimitBytes() const override {
    return inner_.transferLimitBytes();
  }

 private:
  CountingAllocatorDouble inner_;
  DriverGateDouble& gate_;
  const Call gated_;
};

// Keeps records in memory; `failInserts` makes insert() fail.
class InMemoryLedgerStoreDouble final : public LedgerStore {
 public:
  Status insert(const AllocationRecord& record) override {
    std::lock_guard lock(mutex_);
    if (failInserts) return makeError(ErrorCode::kUnavailable, "double: store down");
    records_[record.id] = record;
    return Status::success();
  }
  Status markReleased(const std::string& id, SystemTime at, const std::string& reason) override {
    std::lock_guard lock(mutex_);
    auto it = records_.find(id);
    if (it == records_.end() || it->second.state != AllocationState::kHeld) {
      return makeError(ErrorCode::kNotFound, "double: not held");
    }
    it->second.state = AllocationState::kReleased;
    it->second.releasedAt = at;
    it->second.releaseReason = reason;
    return Status::success();
  }
  Result<std::vector<AllocationRecord>> list(const AllocationFilter& filter) override {
    std::lock_guard lock(mutex_);
    std::vector<AllocationRecord> out;
    for (const auto& [id, record] : records_) {
      if (filter.state && record.state != *filter.state) continue;
      if (filter.deviceId && record.deviceId != *filter.deviceId) continue;
      out.push_back(record);
    }
    return out;
  }
  Result<std::optional<AllocationRecord>> find(const std::string& id) override {
    std::lock_guard lock(mutex_);
    auto it = records_.find(id);
    if (it == records_.end()) return std::optional<AllocationRecord>();
    return std::optional<AllocationRecord>(it->second);
  }
  Result<std::size_t> releaseAllHeld(SystemTime at, const std::string& reason) override {
    std::lock_guard lock(mutex_);
    std::size_t count = 0;
    for (auto& [id, record] : records_) {
      if (record.state != AllocationState::kHeld) continue;
      record.state = AllocationState::kReleased;
      record.releasedAt = at;
      record.releaseReason = reason;
      ++count;
    }
    return count;
  }
  std::atomic<bool> failInserts{false};

 private:
  std::mutex mutex_;
  std::map<std::string, AllocationRecord> records_;
};

}  // namespace deviceops::memory::testing
