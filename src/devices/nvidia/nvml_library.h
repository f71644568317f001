// NvmlLibrary: libnvidia-ml.so.1 opened with dlopen, its entry points resolved and NVML
// initialised; plus the pure helpers that turn NVML's answers into deviceops' conventions.
//
// Thread-safety: NVML itself is thread-safe; an NvmlLibrary is immutable after open() and may
// be used from any thread. Destruction (nvmlShutdown) must not race with calls.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/shared_library.h"
#include "devices/nvidia/nvml_api.h"

namespace deviceops::devices::nvidia {

class NvmlLibrary {
 public:
  // Loads `path`, resolves every NvmlFunctions member and calls nvmlInit_v2. kUnavailable:
  // "cannot load libnvidia-ml.so.1: <dlerror>", "<path> lacks nvmlInit_v2, ...", or
  // "nvmlInit_v2 failed: <nvmlErrorString>".
  static Result<std::unique_ptr<NvmlLibrary>> open(const std::string& path);

  ~NvmlLibrary();  // nvmlShutdown, then dlclose
  NvmlLibrary(const NvmlLibrary&) = delete;
  NvmlLibrary& operator=(const NvmlLibrary&) = delete;

  // The entry points; optional ones are nullptr when this driver lacks them.
  const NvmlFunctions& api() const { return api_; }

  // nvmlErrorString(result), e.g. "GPU is lost"; "NVML error <n>" if NVML returns nothing.
  std::string errorString(nvmlReturn_t result) const;

  // Optional symbols this library lacks (older drivers), in NvmlFunctions order.
  const std::vector<std::string>& missingSymbols() const { return missing_; }

 private:
  NvmlLibrary() = default;

  std::shared_ptr<SharedLibrary> library_;
  NvmlFunctions api_;
  std::vector<std::string> missing_;
  bool initialized_ = false;
};

// True for the codes after which a device is not worth querying again until reset:
// GPU_IS_LOST, RESET_REQUIRED, GPU_NOT_FOUND.
bool isDeviceGone(nvmlReturn_t result);

// NVML bus id ("00000000:1B:00.0", or the legacy "0000:1B:00.0") as deviceops' lowercase
// "0000:1b:00.0" (domain at least 4 hex digits). nullopt if it is not domain:bus:device.function.
std::optional<std::string> normalizePciBusId(std::string_view busId);

// NVML UUID ("GPU-5F2A6C1E-8B3D-4A7F-9C21-0D4E6B8A1F3C") without the "GPU-" prefix, lowercase
// 8-4-4-4-12. nullopt for anything else (e.g. a "MIG-" UUID).
std::optional<std::string> normalizeGpuUuid(std::string_view nvmlUuid);

// The CUDA driver version integer (1000 * major + 10 * minor, as NVML and cuDriverGetVersion
// report it) as "major.minor": 12040 -> "12.4".
std::string cudaVersionString(int version);

// Theoretical peak memory bandwidth in bytes per second from nvmlDeviceGetMemoryBusWidth (bits)
// and nvmlDeviceGetMaxClockInfo(NVML_CLOCK_MEM) (MHz): width / 8 x clock x 2 (double data
// rate). An H100 SXM: 5120 bits, 2619 MHz -> 3.352e12. nullopt when either is 0.
std::optional<double> peakMemoryBandwidthBytesPerSecond(unsigned int busWidthBits,
                                                        unsigned int maxMemoryClockMhz);

// A clocks event (throttle) reason bitmask decoded.
struct ThrottleReasons {
  std::vector<std::string> names;  // gpuIdle, swPowerCap, ... in bit order; unknown bits omitted
  bool thermal = false;            // swThermalSlowdown or hwThermalSlowdown
  bool power = false;              // swPowerCap or hwPowerBrakeSlowdown
};
ThrottleReasons decodeThrottleReasons(unsigned long long mask);

}  // namespace deviceops::devices::nvidia
