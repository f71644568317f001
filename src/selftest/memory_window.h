// MemoryWindow: one range of device memory as a self-test sees it, and Stop: when a long self-test
// ends early. Memory pattern tests (memtest.h) and transfer benchmarks (bandwidth.h) run only
// through this interface, so they work the same on every device and on a host buffer in tests.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/result.h"

namespace deviceops::selftest {

// One range [0, size()) of device memory. Production: an adapter over a devices::DeviceAllocator
// and one of its blocks; tests: a host buffer (testing/host_window.h).
//
// Offsets and byte counts are in bytes. Preconditions for every method: offset + bytes <= size()
// (for copy: both ranges inside the window and not overlapping); a caller that breaks them gets
// kInvalidArgument from well-behaved implementations. A transfer that fails on the device returns
// the device's error (typically kInternal or kUnavailable); what the range holds afterwards is
// unspecified.
//
// Thread-safety: none; one self-test uses one window at a time. Ownership: the window does not
// own `source` / `destination`; they must hold `bytes` bytes for the duration of the call.
class MemoryWindow {
 public:
  virtual ~MemoryWindow() = default;
  // Bytes in the window.
  virtual std::uint64_t size() const = 0;
  // Host -> device: copies `bytes` bytes from `source` to [offset, offset + bytes).
  virtual Status write(std::uint64_t offset, const void* source, std::uint64_t bytes) = 0;
  // Device -> host: copies [offset, offset + bytes) into `destination`.
  virtual Status read(std::uint64_t offset, void* destination, std::uint64_t bytes) = 0;
  // Device -> device inside the window: [source, source + bytes) to [destination, ... + bytes).
  // The ranges do not overlap.
  virtual Status copy(std::uint64_t destination, std::uint64_t source, std::uint64_t bytes) = 0;
};

// When to stop early. Self-tests check due() between chunks (never inside a transfer), so a due
// Stop ends a test within one chunk's time. `cancelled`, when set, is not owned and must outlive
// the test; it may be set from any thread (read with acquire loads).
struct Stop {
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  const std::atomic<bool>* cancelled = nullptr;

  bool isCancelled() const {
    return cancelled != nullptr && cancelled->load(std::memory_order_acquire);
  }
  // True when cancelled or when the deadline has passed.
  bool due() const { return isCancelled() || std::chrono::steady_clock::now() >= deadline; }
};

}  // namespace deviceops::selftest
