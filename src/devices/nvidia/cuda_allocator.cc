// The cuda allocator: cuMemAlloc in the device's primary context, through libcuda.so.1 opened
// with dlopen (devices/nvidia/cuda_library.h). Verify copies the pattern through a host staging
// buffer (cuMemcpyHtoD, then cuMemcpyDtoH), chunk by chunk; transfers are the same calls (and
// cuMemcpyDtoD) on the caller's ranges.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <vector>

#include "devices/allocator.h"
#include "devices/nvidia/cuda_library.h"
#include "devices/pattern.h"

namespace deviceops::devices {
namespace {

constexpr std::uint64_t kStagingBytes = 64ULL << 20;

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

class CudaAllocator final : public DeviceAllocator {
 public:
  CudaAllocator(std::shared_ptr<nvidia::CudaLibrary> cuda, nvidia::CUdevice device,
                nvidia::CUcontext context, std::string uuid)
      : cuda_(std::move(cuda)), device_(device), context_(context), uuid_(std::move(uuid)) {}

  ~CudaAllocator() override {
    std::set<nvidia::CUdeviceptr> remaining;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      remaining.swap(live_);
    }
    if (!remaining.empty()) {
      spdlog::warn("cuda allocator {}: freeing {} block(s) ({} bytes) still held at shutdown",
                   uuid_, remaining.size(), liveBytes());
      if (makeCurrent().ok()) {
        for (nvidia::CUdeviceptr pointer : remaining) api().cuMemFree_v2(pointer);
      }
    }
    api().cuDevicePrimaryCtxRelease_v2(device_);
  }

  std::string_view kind() const override { return "cuda"; }

  Result<Block> allocate(std::uint64_t bytes, const AllocationOptions& options) override {
    if (Status valid = checkAllocationRequest(bytes, options, "device memory cannot be pinned");
        !valid.ok()) {
      return valid.error();
    }
    if (Status current = makeCurrent(); !current.ok()) return current.error();
    nvidia::CUdeviceptr pointer = 0;
    const nvidia::CUresult result = api().cuMemAlloc_v2(&pointer, bytes);
    if (result != nvidia::CUDA_SUCCESS) {
      return failure(result, fmt::format("cuMemAlloc of {} bytes", bytes));
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.insert(pointer);
    }
    liveBytes_.fetch_add(bytes, std::memory_order_relaxed);
    Block block;
    block.bytes = bytes;
    block.handle = static_cast<std::uintptr_t>(pointer);
    return block;
  }

  void release(const Block& block) override {
    const auto pointer = static_cast<nvidia::CUdeviceptr>(block.handle);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.erase(pointer);
    }
    if (makeCurrent().ok()) {
      const nvidia::CUresult result = api().cuMemFree_v2(pointer);
      if (result != nvidia::CUDA_SUCCESS) {
        spdlog::warn("cuda allocator {}: cuMemFree failed: {}", uuid_, cuda_->errorString(result));
      }
    }
    liveBytes_.fetch_sub(block.bytes, std::memory_order_relaxed);
  }

  Result<VerifyReport> verify(const Block& block) override {
    if (Status current = makeCurrent(); !current.ok()) return current.error();
    const auto base = static_cast<nvidia::CUdeviceptr>(block.handle);
    const std::uint64_t seed = nextVerifySeed();
    const std::uint64_t stagingBytes = std::min(block.bytes, kStagingBytes);
    std::unique_ptr<unsigned char[]> staging(new (std::nothrow) unsigned char[stagingBytes]);
    if (staging == nullptr) {
      return makeError(ErrorCode::kResourceExhausted,
                       fmt::format("verify needs a {}-byte host staging buffer", stagingBytes));
    }
    VerifyReport report;
    report.bytesTested = block.bytes;
    auto start = std::chrono::steady_clock::now();
    for (std::uint64_t offset = 0; offset < block.bytes; offset += stagingBytes) {
      const std::uint64_t chunk = std::min(stagingBytes, block.bytes - offset);
      writePattern(staging.get(), chunk, offset, seed);
      const nvidia::CUresult result = api().cuMemcpyHtoD_v2(base + offset, staging.get(), chunk);
      if (result != nvidia::CUDA_SUCCESS) return failure(result, "cuMemcpyHtoD");
    }
    report.writeSeconds = secondsSince(start);
    start = std::chrono::steady_clock::now();
    for (std::uint64_t offset = 0; offset < block.bytes; offset += stagingBytes) {
      const std::uint64_t chunk = std::min(stagingBytes, block.bytes - offset);
      const nvidia::CUresult result = api().cuMemcpyDtoH_v2(staging.get(), base + offset, chunk);
      if (result != nvidia::CUDA_SUCCESS) return failure(result, "cuMemcpyDtoH");
      addCheck(report, checkPattern(staging.get(), chunk, offset, seed));
    }
    report.readSeconds = secondsSince(start);
    return report;
  }

  std::optional<std::uint64_t> driverFreeBytes() override {
    if (!makeCurrent().ok()) return std::nullopt;
    std::size_t freeBytes = 0;
    std::size_t totalBytes = 0;
    if (api().cuMemGetInfo_v2(&freeBytes, &totalBytes) != nvidia::CUDA_SUCCESS) {
      return std::nullopt;
    }
    return freeBytes;
  }

  std::uint64_t liveBytes() const override { return liveBytes_.load(std::memory_order_relaxed); }

  // Synchronous copies in the primary context: pageable host memory makes cuMemcpyHtoD/DtoH
  // return only once the data has been transferred; cuMemcpyDtoD is asynchronous to the host,
  // so the context is synchronised after it.
  Status write(const Block& block, std::uint64_t offset, const void* source,
               std::uint64_t bytes) override {
    RETURN_IF_ERROR(checkTransferRange(block.bytes, offset, bytes));
    if (bytes == 0) return Status::success();
    RETURN_IF_ERROR(makeCurrent());
    const nvidia::CUresult result = api().cuMemcpyHtoD_v2(
        static_cast<nvidia::CUdeviceptr>(block.handle) + offset, source, bytes);
    if (result != nvidia::CUDA_SUCCESS) {
      return failure(result, fmt::format("cuMemcpyHtoD of {} bytes", bytes));
    }
    return Status::success();
  }

  Status read(const Block& block, std::uint64_t offset, void* destination,
              std::uint64_t bytes) override {
    RETURN_IF_ERROR(checkTransferRange(block.bytes, offset, bytes));
    if (bytes == 0) return Status::success();
    RETURN_IF_ERROR(makeCurrent());
    const nvidia::CUresult result = api().cuMemcpyDtoH_v2(
        destination, static_cast<nvidia::CUdeviceptr>(block.handle) + offset, bytes);
    if (result != nvidia::CUDA_SUCCESS) {
      return failure(result, fmt::format("cuMemcpyDtoH of {} bytes", bytes));
    }
    return Status::success();
  }

  Status copy(const Block& destination, std::uint64_t destinationOffset, const Block& source,
              std::uint64_t sourceOffset, std::uint64_t bytes) override {
    RETURN_IF_ERROR(checkTransferRange(destination.bytes, destinationOffset, bytes));
    RETURN_IF_ERROR(checkTransferRange(source.bytes, sourceOffset, bytes));
    if (bytes == 0) return Status::success();
    RETURN_IF_ERROR(makeCurrent());
    nvidia::CUresult result = api().cuMemcpyDtoD_v2(
        static_cast<nvidia::CUdeviceptr>(destination.handle) + destinationOffset,
        static_cast<nvidia::CUdeviceptr>(source.handle) + sourceOffset, bytes);
    if (result != nvidia::CUDA_SUCCESS) {
      return failure(result, fmt::format("cuMemcpyDtoD of {} bytes", bytes));
    }
    result = api().cuCtxSynchronize();
    if (result != nvidia::CUDA_SUCCESS)
      return failure(result, "cuCtxSynchronize after cuMemcpyDtoD");
    return Status::success();
  }

 private:
  const nvidia::CudaFunctions& api() const { return cuda_->api(); }

  // The driver API works on the calling thread's current context: set ours on every call.
  Status makeCurrent() const {
    const nvidia::CUresult result = api().cuCtxSetCurrent(context_);
    if (result != nvidia::CUDA_SUCCESS) return failure(result, "cuCtxSetCurrent");
    return Status::success();
  }

  Error failure(nvidia::CUresult result, const std::string& what) const {
    const std::string message =
        fmt::format("{} on CUDA device {} failed: {}", what, uuid_, cuda_->errorString(result));
    switch (result) {
      case nvidia::CUDA_ERROR_OUT_OF_MEMORY:
        return makeError(ErrorCode::kResourceExhausted, message);
      case nvidia::CUDA_ERROR_INVALID_VALUE:
        return makeError(ErrorCode::kInvalidArgument, message);
      case nvidia::CUDA_ERROR_DEVICE_UNAVAILABLE:  // exclusive mode, or the device was lost
      default:  // a failing driver (deinitialized, ECC, illegal address) is not usable either
        return makeError(ErrorCode::kUnavailable, message);
    }
  }

  const std::shared_ptr<nvidia::CudaLibrary> cuda_;  // never unloaded (see cuda_library.h)
  const nvidia::CUdevice device_;
  const nvidia::CUcontext context_;  // the primary context, retained until destruction
  const std::string uuid_;
  std::atomic<std::uint64_t> liveBytes_{0};
  std::mutex mutex_;                    // guards live_
  std::set<nvidia::CUdeviceptr> live_;  // blocks not yet released, freed by the destructor
};

// Entry points the allocator cannot work without, beyond those CudaLibrary::open requires.
std::vector<std::string> missingAllocationSymbols(const nvidia::CudaFunctions& api) {
  std::vector<std::string> missing;
  auto need = [&missing](const void* function, const char* name) {
    if (function == nullptr) missing.emplace_back(name);
  };
  need(reinterpret_cast<const void*>(api.cuDevicePrimaryCtxRetain), "cuDevicePrimaryCtxRetain");
  need(reinterpret_cast<const void*>(api.cuDevicePrimaryCtxRelease_v2),
       "cuDevicePrimaryCtxRelease_v2");
  need(reinterpret_cast<const void*>(api.cuCtxSetCurrent), "cuCtxSetCurrent");
  need(reinterpret_cast<const void*>(api.cuMemGetInfo_v2), "cuMemGetInfo_v2");
  need(reinterpret_cast<const void*>(api.cuMemAlloc_v2), "cuMemAlloc_v2");
  need(reinterpret_cast<const void*>(api.cuMemFree_v2), "cuMemFree_v2");
  need(reinterpret_cast<const void*>(api.cuMemcpyHtoD_v2), "cuMemcpyHtoD_v2");
  need(reinterpret_cast<const void*>(api.cuMemcpyDtoH_v2), "cuMemcpyDtoH_v2");
  need(reinterpret_cast<const void*>(api.cuMemcpyDtoD_v2), "cuMemcpyDtoD_v2");
  need(reinterpret_cast<const void*>(api.cuCtxSynchronize), "cuCtxSynchronize");
  return missing;
}

}  // namespace

Result<std::unique_ptr<DeviceAllocator>> makeCudaAllocator(const std::string& deviceUuid,
                                                           std::string libraryPath) {
  auto cuda = nvidia::CudaLibrary::open(libraryPath);
  if (!cuda.ok()) return cuda.error();
  const nvidia::CudaFunctions& api = (*cuda)->api();
  if (auto missing = missingAllocationSymbols(api); !missing.empty()) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("{} lacks {}: cannot allocate device memory", libraryPath,
                                 fmt::join(missing, ", ")));
  }
  auto devices = (*cuda)->devices();
  if (!devices.ok()) return devices.error();
  const auto found =
      std::find_if(devices->begin(), devices->end(),
                   [&](const nvidia::CudaDevice& device) { return device.uuid == deviceUuid; });
  if (found == devices->end()) {
    return makeError(ErrorCode::kNotFound,
                     fmt::format("no CUDA device with UUID {} among the {} the driver reports",
                                 deviceUuid, devices->size()));
  }
  nvidia::CUdevice device = 0;
  nvidia::CUresult result = api.cuDeviceGet(&device, found->ordinal);
  if (result != nvidia::CUDA_SUCCESS) {
    return makeError(ErrorCode::kUnavailable,
                     "cuDeviceGet failed: " + (*cuda)->errorString(result));
  }
  nvidia::CUcontext context = nullptr;
  result = api.cuDevicePrimaryCtxRetain(&context, device);
  if (result != nvidia::CUDA_SUCCESS) {
    return makeError(ErrorCode::kUnavailable,
                     "cuDevicePrimaryCtxRetain failed: " + (*cuda)->errorString(result));
  }
  return std::unique_ptr<DeviceAllocator>(
      std::make_unique<CudaAllocator>(std::move(cuda).value(), device, context, deviceUuid));
}

}  // namespace deviceops::devices
