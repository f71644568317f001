// MemoryPool: a per-device caching allocator over a devices::DeviceAllocator, so that repeated
// allocate/free of similar sizes does not call the driver each time.
//
// Strategy kPool: requests are rounded up to a size class (4 KiB multiples below 2 MiB, 2 MiB
// multiples above); a released block is kept in the cache and handed out again for any request
// whose class it covers with at most 25% slack (best fit). The cache is bounded
// (maxCachedBytes); beyond it, released blocks go back to the driver. When the driver is out of
// memory, the cache is trimmed and the allocation retried once. Pinned blocks are never cached.
// Strategy kNone: every acquire/giveBack calls the driver; sizes are not rounded.
//
// Thread-safety: all methods are safe to call concurrently (one mutex; driver calls are made
// outside it).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

#include "devices/allocator.h"

namespace deviceops::memory {

enum class PoolStrategy { kNone, kPool };
std::string_view poolStrategyName(PoolStrategy strategy);  // "none" | "pool"

struct PoolStats {
  std::uint64_t reservedBytes = 0;   // held from the driver: in use + cached
  std::uint64_t inUseBytes = 0;      // blocks handed out (their full size)
  std::uint64_t requestedBytes = 0;  // what callers asked for, of the blocks handed out
  std::uint64_t cachedBytes = 0;
  std::uint64_t cachedBlocks = 0;
  std::uint64_t largestCachedBlockBytes = 0;
  // 1 - largest cached block / cached bytes: 0 = one contiguous free block (or none).
  double fragmentationRatio = 0;
  std::uint64_t driverAllocations = 0;  // acquire calls that reached the driver
  std::uint64_t cacheHits = 0;          // acquire calls served from the cache
  std::uint64_t driverReleases = 0;
};

struct PooledBlock {
  devices::Block block;  // block.bytes is the class size actually held
  std::uint64_t requestedBytes = 0;
  bool fromCache = false;
};

class MemoryPool {
 public:
  MemoryPool(devices::DeviceAllocator& allocator, PoolStrategy strategy,
             std::uint64_t maxCachedBytes);
  ~MemoryPool();  // returns cached blocks to the driver; precondition: none in use
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  Result<PooledBlock> acquire(std::uint64_t bytes, const devices::AllocationOptions& options);
  // Precondition: `block` came from acquire() on this pool and was not given back before.
  void giveBack(const PooledBlock& block);
  // Returns every cached block to the driver; returns the bytes released.
  std::uint64_t trim();
  PoolStats stats() const;
  PoolStrategy strategy() const { return strategy_; }

  static std::uint64_t sizeClass(std::uint64_t bytes);

 private:
  std::uint64_t trimLocked(std::vector<devices::Block>& toRelease);

  devices::DeviceAllocator& allocator_;
  const PoolStrategy strategy_;
  const std::uint64_t maxCachedBytes_;
  mutable std::mutex mutex_;                            // guards everything below
  std::multimap<std::uint64_t, devices::Block> cache_;  // size -> cached block
  PoolStats stats_;
};

}  // namespace deviceops::memory
