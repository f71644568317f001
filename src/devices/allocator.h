// DeviceAllocator: real allocations of device memory, one implementation per backend.
//   cpu        anonymous mmap, pages committed with MAP_POPULATE (resident memory really grows);
//              pinned = mlock, refused clearly when RLIMIT_MEMLOCK forbids it
//   vulkan     vkAllocateMemory from a DEVICE_LOCAL memory type (lavapipe in tests)
//   cuda       cuMemAlloc in the device's primary context (libcuda.so.1, dlopen'd)
//   simulated  accounting only; blocks have no memory behind them and say so
// memory/pool.h and the ledger (memory/memory_service.h) sit on top; nothing else calls an
// allocator. Which one serves a device is daemon wiring (src/daemon/allocators.h).
//
// Thread-safety: allocate/release/verify/driverFreeBytes may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace deviceops::devices {

struct AllocationOptions {
  bool pinned = false;  // cpu only: lock the pages in RAM (mlock); other allocators reject it
};

// The checks every allocator makes first: kInvalidArgument for 0 bytes, and for `pinned` when
// `pinRefusal` (why this device cannot pin) is non-empty.
inline Status checkAllocationRequest(std::uint64_t bytes, const AllocationOptions& options,
                                     std::string_view pinRefusal) {
  if (bytes == 0) {
    return makeError(ErrorCode::kInvalidArgument, "cannot allocate 0 bytes: expected >= 1");
  }
  if (options.pinned && !pinRefusal.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "pinned applies to cpu memory only; " + std::string(pinRefusal));
  }
  return Status::success();
}

// A block as the allocator handed it out. Opaque outside the allocator except for `bytes`.
struct Block {
  std::uint64_t bytes = 0;      // exactly what was asked of the driver
  std::uintptr_t handle = 0;    // VkDeviceMemory, CUdeviceptr, or the host address
  void* hostAddress = nullptr;  // mapped host view when there is one (cpu), else null
  bool pinned = false;
};

struct VerifyReport {
  std::uint64_t bytesTested = 0;
  std::uint64_t errors = 0;            // words that read back differently from what was written
  std::uint64_t firstErrorOffset = 0;  // valid when errors > 0
  double writeSeconds = 0;
  double readSeconds = 0;
  double writeBytesPerSecond() const;
  double readBytesPerSecond() const;
};

class DeviceAllocator {
 public:
  virtual ~DeviceAllocator() = default;
  // "cpu", "vulkan", "cuda", "simulated".
  virtual std::string_view kind() const = 0;
  // True for the simulated allocator: no memory is really allocated.
  virtual bool accountingOnly() const { return false; }
  // kInvalidArgument (0 bytes, unsupported option), kResourceExhausted (the driver is out of
  // memory: VK_ERROR_OUT_OF_DEVICE_MEMORY, CUDA_ERROR_OUT_OF_MEMORY, ENOMEM), kConflict
  // (pinning refused by RLIMIT_MEMLOCK, with the limit in details), kUnavailable (driver gone).
  virtual Result<Block> allocate(std::uint64_t bytes, const AllocationOptions& options) = 0;
  // Returns the block to the driver. Precondition: `block` came from allocate() on this
  // allocator and was not released before (the pool and ledger guarantee this).
  virtual void release(const Block& block) = 0;
  // Writes a pattern (address-dependent 64-bit words) across the whole block and reads it back.
  virtual Result<VerifyReport> verify(const Block& block) = 0;
  // What the driver says is free on the device now (cpu: MemAvailable), when known.
  virtual std::optional<std::uint64_t> driverFreeBytes() = 0;
  // Bytes currently held from the driver by this allocator (sum of live blocks).
  virtual std::uint64_t liveBytes() const = 0;

  // Transfers, for self-tests and benchmarks (src/selftest): host -> block, block -> host, and
  // block -> block on this device, each synchronous (complete when it returns). Ranges are
  // bounds-checked against the blocks (kInvalidArgument naming offset, bytes and block size);
  // `bytes` may be 0 (nothing happens). Blocks come from allocate() on this allocator and are
  // not released meanwhile (the ledger guarantees this). Errors: kUnavailable when the device is
  // gone, kInternal for a driver failure, kInvalidArgument where transfers are impossible here.
  //   cpu        memcpy              vulkan  staging buffer + vkCmdCopyBuffer (or a mapping)
  //   cuda       cuMemcpyHtoD/DtoH/DtoD     simulated  the block's host shadow (see below)
  // Safe to call concurrently for distinct blocks; the caller serialises use of one block.
  virtual Status write(const Block& block, std::uint64_t offset, const void* source,
                       std::uint64_t bytes) = 0;
  virtual Status read(const Block& block, std::uint64_t offset, void* destination,
                      std::uint64_t bytes) = 0;
  virtual Status copy(const Block& destination, std::uint64_t destinationOffset,
                      const Block& source, std::uint64_t sourceOffset, std::uint64_t bytes) = 0;
  // The largest block offset + size transfers can reach, when smaller than any block (the
  // simulated allocator backs only the first `backingBytes` of a block with host memory).
  virtual std::optional<std::uint64_t> transferLimitBytes() const { return std::nullopt; }
};

// The bounds check every transfer makes: kInvalidArgument unless [offset, offset + bytes) lies
// inside a block of `blockBytes` (no overflow).
Status checkTransferRange(std::uint64_t blockBytes, std::uint64_t offset, std::uint64_t bytes);

// Factories. Each returns kUnavailable with a reason when the device cannot be opened.
Result<std::unique_ptr<DeviceAllocator>> makeCpuAllocator();
// `deviceUuid`: the Vulkan physical device's UUID ("xxxxxxxx-xxxx-..."), as in DeviceRecord::uuid.
Result<std::unique_ptr<DeviceAllocator>> makeVulkanAllocator(
    const std::string& deviceUuid, std::string libraryPath = "libvulkan.so.1");
// `deviceUuid`: the CUDA device's UUID as in DeviceRecord::uuid (NVML's, normalised).
Result<std::unique_ptr<DeviceAllocator>> makeCudaAllocator(
    const std::string& deviceUuid, std::string libraryPath = "libcuda.so.1");
Result<std::unique_ptr<DeviceAllocator>> makeSimulatedAllocator(std::uint64_t capacityBytes);

}  // namespace deviceops::devices
