#include "memory/pool.h"

#include <spdlog/spdlog.h>

namespace deviceops::memory {
namespace {

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kLargeGranule = 2ull << 20;

std::uint64_t roundUp(std::uint64_t value, std::uint64_t granule) {
  return (value + granule - 1) / granule * granule;
}

}  // namespace

std::string_view poolStrategyName(PoolStrategy strategy) {
  return strategy == PoolStrategy::kPool ? "pool" : "none";
}

std::uint64_t MemoryPool::sizeClass(std::uint64_t bytes) {
  return bytes < kLargeGranule ? roundUp(bytes, kPage) : roundUp(bytes, kLargeGranule);
}

MemoryPool::MemoryPool(devices::DeviceAllocator& allocator, PoolStrategy strategy,
                       std::uint64_t maxCachedBytes)
    : allocator_(allocator), strategy_(strategy), maxCachedBytes_(maxCachedBytes) {}

MemoryPool::~MemoryPool() {
  if (stats().inUseBytes > 0) {
    spdlog::warn("memory pool destroyed with {} bytes still in use", stats().inUseBytes);
  }
  trim();
}

Result<PooledBlock> MemoryPool::acquire(std::uint64_t bytes,
                                        const devices::AllocationOptions& options) {
  if (bytes == 0) return makeError(ErrorCode::kInvalidArgument, "size must be at least 1 byte");
  const bool cacheable = strategy_ == PoolStrategy::kPool && !options.pinned;
  const std::uint64_t size = cacheable ? sizeClass(bytes) : bytes;
  if (cacheable) {
    std::lock_guard lock(mutex_);
    auto it = cache_.lower_bound(size);
    if (it != cache_.end() && it->first <= size + size / 4) {
      PooledBlock pooled{it->second, bytes, true};
      stats_.cachedBytes -= it->first;
      --stats_.cachedBlocks;
      stats_.inUseBytes += it->first;
      stats_.requestedBytes += bytes;
      ++stats_.cacheHits;
      cache_.erase(it);
      return pooled;
    }
  }
  Result<devices::Block> block = allocator_.allocate(size, options);
  if (!block.ok() && block.error().code == ErrorCode::kResourceExhausted && trim() > 0) {
    block = allocator_.allocate(size, options);
  }
  if (!block.ok()) return block.error();
  std::lock_guard lock(mutex_);
  stats_.reservedBytes += block->bytes;
  stats_.inUseBytes += block->bytes;
  stats_.requestedBytes += bytes;
  ++stats_.driverAllocations;
  return PooledBlock{*block, bytes, false};
}

void MemoryPool::giveBack(const PooledBlock& pooled) {
  const devices::Block& block = pooled.block;
  {
    std::lock_guard lock(mutex_);
    stats_.inUseBytes -= block.bytes;
    stats_.requestedBytes -= pooled.requestedBytes;
    const bool cacheable = strategy_ == PoolStrategy::kPool && !block.pinned &&
                           stats_.cachedBytes + block.bytes <= maxCachedBytes_;
    if (cacheable) {
      cache_.emplace(block.bytes, block);
      stats_.cachedBytes += block.bytes;
      ++stats_.cachedBlocks;
      return;
    }
    stats_.reservedBytes -= block.bytes;
    ++stats_.driverReleases;
  }
  allocator_.release(block);
}

std::uint64_t MemoryPool::trimLocked(std::vector<devices::Block>& toRelease) {
  std::uint64_t released = 0;
  for (auto& [size, block] : cache_) {
    released += size;
    toRelease.push_back(block);
  }
  cache_.clear();
  stats_.cachedBytes = 0;
  stats_.cachedBlocks = 0;
  stats_.reservedBytes -= released;
  stats_.driverReleases += toRelease.size();
  return released;
}

std::uint64_t MemoryPool::trim() {
  std::vector<devices::Block> toRelease;
  std::uint64_t released = 0;
  {
    std::lock_guard lock(mutex_);
    released = trimLocked(toRelease);
  }
  for (const devices::Block& block : toRelease) allocator_.release(block);
  return released;
}

PoolStats MemoryPool::stats() const {
  std::lock_guard lock(mutex_);
  PoolStats stats = stats_;
  stats.largestCachedBlockBytes = cache_.empty() ? 0 : cache_.rbegin()->first;
  stats.fragmentationRatio =
      stats.cachedBytes == 0
          ? 0.0
          : 1.0 - static_cast<double>(stats.largestCachedBlockBytes) / stats.cachedBytes;
  return stats;
}

}  // namespace deviceops::memory
