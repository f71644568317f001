#include "devices/nvidia/nvml_library.h"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <utility>

namespace deviceops::devices::nvidia {
namespace {

// Resolves `symbol` into `slot`; records it in `missing` when the library lacks it.
bool isHex(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::optional<unsigned long> parseHex(std::string_view text) {
  if (!isHex(text) || text.size() > 8) return std::nullopt;
  unsigned long value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value, 16);
  return value;
}

}  // namespace

Result<std::unique_ptr<NvmlLibrary>> NvmlLibrary::open(const std::string& path) {
  auto library = SharedLibrary::open(path);
  if (!library.ok()) return library.error();
  auto self = std::unique_ptr<NvmlLibrary>(new NvmlLibrary());
  self->library_ = std::move(library).value();
  const SharedLibrary& lib = *self->library_;
  NvmlFunctions& api = self->api_;
  std::vector<std::string> missing;
#define DEVICEOPS_RESOLVE(symbol) lib.resolve(#symbol, api.symbol, missing)
  DEVICEOPS_RESOLVE(nvmlInit_v2);
  DEVICEOPS_RESOLVE(nvmlShutdown);
  DEVICEOPS_RESOLVE(nvmlErrorString);
  DEVICEOPS_RESOLVE(nvmlDeviceGetCount_v2);
  DEVICEOPS_RESOLVE(nvmlDeviceGetHandleByIndex_v2);
  if (!missing.empty()) {
    std::string list;
    for (const auto& name : missing) list += (list.empty() ? "" : ", ") + name;
    return makeError(ErrorCode::kUnavailable,
                     path + " lacks " + list + " (too old an NVML, or not NVML at all)");
  }
  DEVICEOPS_RESOLVE(nvmlSystemGetDriverVersion);
  DEVICEOPS_RESOLVE(nvmlSystemGetCudaDriverVersion_v2);
  DEVICEOPS_RESOLVE(nvmlSystemGetCudaDriverVersion);
  DEVICEOPS_RESOLVE(nvmlDeviceGetName);
  DEVICEOPS_RESOLVE(nvmlDeviceGetUUID);
  DEVICEOPS_RESOLVE(nvmlDeviceGetPciInfo_v3);
  DEVICEOPS_RESOLVE(nvmlDeviceGetMemoryInfo_v2);
  DEVICEOPS_RESOLVE(nvmlDeviceGetMemoryInfo);
  DEVICEOPS_RESOLVE(nvmlDeviceGetUtilizationRates);
  DEVICEOPS_RESOLVE(nvmlDeviceGetTemperature);
  DEVICEOPS_RESOLVE(nvmlDeviceGetTemperatureThreshold);
  DEVICEOPS_RESOLVE(nvmlDeviceGetPowerUsage);
  DEVICEOPS_RESOLVE(nvmlDeviceGetEnforcedPowerLimit);
  DEVICEOPS_RESOLVE(nvmlDeviceGetClockInfo);
  DEVICEOPS_RESOLVE(nvmlDeviceGetMaxClockInfo);
  DEVICEOPS_RESOLVE(nvmlDeviceGetCurrentClocksEventReasons);
  DEVICEOPS_RESOLVE(nvmlDeviceGetCurrentClocksThrottleReasons);
  DEVICEOPS_RESOLVE(nvmlDeviceGetTotalEccErrors);
  DEVICEOPS_RESOLVE(nvmlDeviceGetCurrPcieLinkGeneration);
  DEVICEOPS_RESOLVE(nvmlDeviceGetCurrPcieLinkWidth);
  DEVICEOPS_RESOLVE(nvmlDeviceGetMaxPcieLinkGeneration);
  DEVICEOPS_RESOLVE(nvmlDeviceGetMaxPcieLinkWidth);
  DEVICEOPS_RESOLVE(nvmlDeviceGetMemoryBusWidth);
  DEVICEOPS_RESOLVE(nvmlDeviceGetCudaComputeCapability);
  DEVICEOPS_RESOLVE(nvmlDeviceGetComputeRunningProcesses_v3);
#undef DEVICEOPS_RESOLVE
  self->missing_ = std::move(missing);

  const nvmlReturn_t initialized = api.nvmlInit_v2();
  if (initialized != NVML_SUCCESS) {
    return makeError(ErrorCode::kUnavailable,
                     "nvmlInit_v2 failed: " + self->errorString(initialized));
  }
  self->initialized_ = true;
  return self;
}

NvmlLibrary::~NvmlLibrary() {
  if (initialized_) api_.nvmlShutdown();
}

std::string NvmlLibrary::errorString(nvmlReturn_t result) const {
  const char* text = api_.nvmlErrorString != nullptr ? api_.nvmlErrorString(result) : nullptr;
  if (text == nullptr || *text == '\0')
    return fmt::format("NVML error {}", static_cast<int>(result));
  return text;
}

bool isDeviceGone(nvmlReturn_t result) {
  return result == NVML_ERROR_GPU_IS_LOST || result == NVML_ERROR_RESET_REQUIRED ||
         result == NVML_ERROR_GPU_NOT_FOUND;
}

std::optional<std::string> normalizePciBusId(std::string_view busId) {
  // domain:bus:device.function, every part hex.
  const auto firstColon = busId.find(':');
  const auto secondColon = busId.find(':', firstColon == busId.npos ? 0 : firstColon + 1);
  const auto dot = busId.rfind('.');
  if (firstColon == busId.npos || secondColon == busId.npos || dot == busId.npos ||
      dot < secondColon) {
    return std::nullopt;
  }
  const auto domain = parseHex(busId.substr(0, firstColon));
  const auto bus = parseHex(busId.substr(firstColon + 1, secondColon - firstColon - 1));
  const auto device = parseHex(busId.substr(secondColon + 1, dot - secondColon - 1));
  const auto function = parseHex(busId.substr(dot + 1));
  if (!domain || !bus || !device || !function || *bus > 0xff || *device > 0x1f || *function > 0x7) {
    return std::nullopt;
  }
  return fmt::format("{:04x}:{:02x}:{:02x}.{:x}", *domain, *bus, *device, *function);
}

std::optional<std::string> normalizeGpuUuid(std::string_view nvmlUuid) {
  constexpr std::string_view kPrefix = "GPU-";
  if (nvmlUuid.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  std::string uuid(nvmlUuid.substr(kPrefix.size()));
  if (uuid.size() != 36) return std::nullopt;
  for (std::size_t i = 0; i < uuid.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? uuid[i] != '-' : !std::isxdigit(static_cast<unsigned char>(uuid[i]))) {
      return std::nullopt;
    }
    uuid[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(uuid[i])));
  }
  return uuid;
}

std::string cudaVersionString(int version) {
  return fmt::format("{}.{}", version / 1000, (version % 1000) / 10);
}

std::optional<double> peakMemoryBandwidthBytesPerSecond(unsigned int busWidthBits,
                                                        unsigned int maxMemoryClockMhz) {
  if (busWidthBits == 0 || maxMemoryClockMhz == 0) return std::nullopt;
  // Two transfers per clock (double data rate), as NVML reports HBM and GDDR clocks.
  return static_cast<double>(busWidthBits) / 8.0 * static_cast<double>(maxMemoryClockMhz) * 1e6 *
         2.0;
}

ThrottleReasons decodeThrottleReasons(unsigned long long mask) {
  static constexpr std::pair<unsigned long long, const char*> kNames[] = {
      {nvmlClocksEventReasonGpuIdle, "gpuIdle"},
      {nvmlClocksEventReasonApplicationsClocksSetting, "applicationsClocksSetting"},
      {nvmlClocksEventReasonSwPowerCap, "swPowerCap"},
      {nvmlClocksThrottleReasonHwSlowdown, "hwSlowdown"},
      {nvmlClocksEventReasonSyncBoost, "syncBoost"},
      {nvmlClocksEventReasonSwThermalSlowdown, "swThermalSlowdown"},
      {nvmlClocksThrottleReasonHwThermalSlowdown, "hwThermalSlowdown"},
      {nvmlClocksThrottleReasonHwPowerBrakeSlowdown, "hwPowerBrakeSlowdown"},
      {nvmlClocksEventReasonDisplayClockSetting, "displayClockSetting"},
  };
  ThrottleReasons reasons;
  for (const auto& [bit, name] : kNames) {
    if (mask & bit) reasons.names.emplace_back(name);
  }
  reasons.thermal = (mask & (nvmlClocksEventReasonSwThermalSlowdown |
                             nvmlClocksThrottleReasonHwThermalSlowdown)) != 0;
  reasons.power =
      (mask & (nvmlClocksEventReasonSwPowerCap | nvmlClocksThrottleReasonHwPowerBrakeSlowdown)) !=
      0;
  return reasons;
}

}  // namespace deviceops::devices::nvidia
