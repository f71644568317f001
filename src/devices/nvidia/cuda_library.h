// CudaLibrary: libcuda.so.1 (the CUDA driver API) opened with dlopen and initialised with
// cuInit. The nvidia backend uses it to read what NVML does not know (multiprocessor count) and
// to map CUDA ordinals to NVML devices; the memory component uses the allocation entry points.
//
// Once cuInit has run, the driver owns threads that execute code inside libcuda, so a
// successfully opened CudaLibrary is never unloaded (its handle is deliberately kept until exit).
//
// Thread-safety: immutable after open(); the driver API is thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/shared_library.h"
#include "devices/nvidia/cuda_api.h"

namespace deviceops::devices::nvidia {

// One CUDA device as the driver API numbers it.
struct CudaDevice {
  int ordinal = 0;                         // for cuDeviceGet; respects CUDA_VISIBLE_DEVICES
  std::string uuid;                        // lowercase 8-4-4-4-12, "" if the driver lacks it
  std::optional<int> multiprocessorCount;  // absent when the attribute query fails
};

class CudaLibrary {
 public:
  // Loads `path`, resolves every CudaFunctions member and calls cuInit(0). kUnavailable:
  // "cannot load libcuda.so.1: <dlerror>", "<path> lacks cuInit, ...", or
  // "cuInit failed: CUDA_ERROR_NO_DEVICE (no CUDA-capable device is detected)".
  static Result<std::shared_ptr<CudaLibrary>> open(const std::string& path);

  CudaLibrary(const CudaLibrary&) = delete;
  CudaLibrary& operator=(const CudaLibrary&) = delete;

  // The entry points; those in missingSymbols() are nullptr.
  const CudaFunctions& api() const { return api_; }

  // Symbols this library lacks, in CudaFunctions order (e.g. "cuDeviceGetUuid_v2" before 11.4).
  const std::vector<std::string>& missingSymbols() const { return missing_; }

  // "CUDA_ERROR_OUT_OF_MEMORY (out of memory)"; "CUresult <n>" when the driver cannot name it.
  std::string errorString(CUresult result) const;

  // cuDriverGetVersion as "major.minor" ("12.4").
  Result<std::string> driverVersion() const;

  // Every device the driver API sees, in ordinal order.
  Result<std::vector<CudaDevice>> devices() const;

 private:
  CudaLibrary() = default;

  std::shared_ptr<SharedLibrary> library_;
  CudaFunctions api_;
  std::vector<std::string> missing_;
};

// 16 raw UUID bytes (CUuuid) as lowercase "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
std::string uuidString(const CUuuid& uuid);

}  // namespace deviceops::devices::nvidia
