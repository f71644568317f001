// The NVIDIA backend: NVML for identity and health, the CUDA driver API for what NVML does not
// report (multiprocessor count, CUDA ordinals). Static facts are read once in open(); poll()
// re-reads memory, utilisation, temperature, power, clocks, throttling, ECC, PCIe link and
// processes. Every failed query leaves its field absent. A device that reports itself gone is
// returned with queryError: a poll stops querying it at that point, and one already gone during
// open() is not queried again until the next open().
#include "devices/nvidia/nvidia_backend.h"

#include <fmt/format.h>

#include <utility>

#include "devices/nvidia/cuda_library.h"
#include "devices/nvidia/nvml_library.h"

namespace deviceops::devices {
namespace nvidia {
namespace {

// Runs NVML queries against one device on behalf of one record. A query that reports the device
// gone (or, for core queries, NVML_ERROR_UNKNOWN) sets record.queryError to "<function>: <NVML
// error string>"; every later query through this object is then skipped.
class DeviceQuery {
 public:
  DeviceQuery(const NvmlLibrary& nvml, nvmlDevice_t device, DeviceRecord& record)
      : nvml_(nvml), device_(device), record_(record) {}

  // fn(device, args...) for an optional field. NVML_ERROR_FUNCTION_NOT_FOUND when the driver
  // lacks `fn`; the stored failure when the device is already gone.
  template <class Fn, class... Args>
  nvmlReturn_t call(const char* name, Fn fn, Args... args) {
    return run(/*core=*/false, name, fn, args...);
  }
  // Same for the fields a device cannot be reported without (name, UUID, PCI, memory).
  template <class Fn, class... Args>
  nvmlReturn_t core(const char* name, Fn fn, Args... args) {
    return run(/*core=*/true, name, fn, args...);
  }
  bool gone() const { return record_.queryError.has_value(); }

 private:
  template <class Fn, class... Args>
  nvmlReturn_t run(bool core, const char* name, Fn fn, Args... args) {
    if (gone()) return failure_;
    if (fn == nullptr) return NVML_ERROR_FUNCTION_NOT_FOUND;
    const nvmlReturn_t result = fn(device_, args...);
    if (isDeviceGone(result) || (core && result == NVML_ERROR_UNKNOWN)) {
      failure_ = result;
      record_.queryError = std::string(name) + ": " + nvml_.errorString(result);
    }
    return result;
  }

  const NvmlLibrary& nvml_;
  nvmlDevice_t device_;
  DeviceRecord& record_;
  nvmlReturn_t failure_ = NVML_SUCCESS;
};

constexpr const char* kClock = "nvmlDeviceGetClockInfo";
constexpr const char* kMaxClock = "nvmlDeviceGetMaxClockInfo";

// What open() learned about one NVML device.
struct NvidiaDevice {
  nvmlDevice_t handle = nullptr;  // null when nvmlDeviceGetHandleByIndex_v2 failed
  DeviceRecord record;            // static facts, the start of every polled record
};

// One clock in MHz through nvmlDeviceGetClockInfo or nvmlDeviceGetMaxClockInfo (same signature).
template <class Fn>
std::optional<unsigned int> readClock(DeviceQuery& query, const char* name, Fn fn,
                                      nvmlClockType_t type) {
  unsigned int mhz = 0;
  if (query.call(name, fn, type, &mhz) != NVML_SUCCESS) return std::nullopt;
  return mhz;
}

// Driver versions and CUDA availability, shared by every device's properties.
nlohmann::json readSystemFacts(const NvmlLibrary& nvml, const Result<std::string>& cudaVersion) {
  const NvmlFunctions& api = nvml.api();
  nlohmann::json facts = nlohmann::json::object();
  char driver[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE] = {};
  if (api.nvmlSystemGetDriverVersion != nullptr &&
      api.nvmlSystemGetDriverVersion(driver, sizeof driver) == NVML_SUCCESS) {
    facts["driverVersion"] = driver;
  }
  int cuda = 0;
  auto getCudaVersion = api.nvmlSystemGetCudaDriverVersion_v2 != nullptr
                            ? api.nvmlSystemGetCudaDriverVersion_v2
                            : api.nvmlSystemGetCudaDriverVersion;
  if (getCudaVersion != nullptr && getCudaVersion(&cuda) == NVML_SUCCESS) {
    facts["cudaDriverVersion"] = cudaVersionString(cuda);
  }
  if (cudaVersion.ok()) {
    facts["cudaDriver"] = {{"available", true}, {"version", *cudaVersion}};
  } else {
    facts["cudaDriver"] = {{"available", false}, {"reason", cudaVersion.error().message}};
  }
  return facts;
}

// Identity and limits of device `index`; they do not change while NVML stays initialised.
NvidiaDevice describeDevice(const NvmlLibrary& nvml, unsigned int index,
                            const std::vector<CudaDevice>& cudaDevices,
                            const nlohmann::json& systemFacts) {
  const NvmlFunctions& api = nvml.api();
  NvidiaDevice device;
  DeviceRecord& record = device.record;
  record.backend = "nvidia";
  record.type = DeviceType::kGpu;
  record.vendor = "NVIDIA";
  record.localKey = "index:" + std::to_string(index);
  record.properties = systemFacts;
  record.properties["nvmlIndex"] = index;
  const nvmlReturn_t found = api.nvmlDeviceGetHandleByIndex_v2(index, &device.handle);
  if (found != NVML_SUCCESS) {
    device.handle = nullptr;
    record.queryError = "nvmlDeviceGetHandleByIndex_v2: " + nvml.errorString(found);
    return device;
  }
  DeviceQuery query(nvml, device.handle, record);

  char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE] = {};
  if (query.core("nvmlDeviceGetName", api.nvmlDeviceGetName, name, sizeof name) == NVML_SUCCESS) {
    record.name = name;
  }
  char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
  if (query.core("nvmlDeviceGetUUID", api.nvmlDeviceGetUUID, uuid, sizeof uuid) == NVML_SUCCESS) {
    record.properties["nvmlUuid"] = uuid;
    if (auto normalized = normalizeGpuUuid(uuid)) {
      record.uuid = *normalized;
      record.localKey = *normalized;
    }
  }
  nvmlPciInfo_t pci{};
  if (query.core("nvmlDeviceGetPciInfo_v3", api.nvmlDeviceGetPciInfo_v3, &pci) == NVML_SUCCESS) {
    record.pciBusId = normalizePciBusId(pci.busId).value_or("");
    record.properties["pciDeviceId"] = fmt::format("0x{:08x}", pci.pciDeviceId);
  }
  int major = 0;
  int minor = 0;
  if (query.call("nvmlDeviceGetCudaComputeCapability", api.nvmlDeviceGetCudaComputeCapability,
                 &major, &minor) == NVML_SUCCESS) {
    record.properties["computeCapability"] = fmt::format("{}.{}", major, minor);
  }

  Readings& readings = record.readings;
  nlohmann::json clocks = nlohmann::json::object();
  if (auto mhz = readClock(query, kMaxClock, api.nvmlDeviceGetMaxClockInfo, NVML_CLOCK_GRAPHICS)) {
    readings.clockMaxMhz = *mhz;
    clocks["graphicsMaxMhz"] = *mhz;
  }
  if (auto mhz = readClock(query, kMaxClock, api.nvmlDeviceGetMaxClockInfo, NVML_CLOCK_SM))
    clocks["smMaxMhz"] = *mhz;
  std::optional<unsigned int> memoryMaxMhz =
      readClock(query, kMaxClock, api.nvmlDeviceGetMaxClockInfo, NVML_CLOCK_MEM);
  if (memoryMaxMhz) {
    readings.memoryClockMaxMhz = *memoryMaxMhz;
    clocks["memoryMaxMhz"] = *memoryMaxMhz;
  }
  record.properties["clocks"] = std::move(clocks);
  // Peak memory bandwidth: needs the bus width too (absent on old drivers: left unset).
  unsigned int busWidthBits = 0;
  if (query.call("nvmlDeviceGetMemoryBusWidth", api.nvmlDeviceGetMemoryBusWidth, &busWidthBits) ==
      NVML_SUCCESS) {
    record.properties["memoryBusWidthBits"] = busWidthBits;
    if (memoryMaxMhz) {
      record.memory.peakBandwidthBytesPerSecond =
          peakMemoryBandwidthBytesPerSecond(busWidthBits, *memoryMaxMhz);
    }
  }

  unsigned int celsius = 0;
  if (query.call("nvmlDeviceGetTemperatureThreshold", api.nvmlDeviceGetTemperatureThreshold,
                 NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, &celsius) == NVML_SUCCESS) {
    readings.slowdownTemperatureCelsius = celsius;
  }
  if (query.call("nvmlDeviceGetTemperatureThreshold", api.nvmlDeviceGetTemperatureThreshold,
                 NVML_TEMPERATURE_THRESHOLD_SHUTDOWN, &celsius) == NVML_SUCCESS) {
    readings.shutdownTemperatureCelsius = celsius;
  }
  unsigned int value = 0;
  nlohmann::json pcie = nlohmann::json::object();
  if (query.call("nvmlDeviceGetMaxPcieLinkGeneration", api.nvmlDeviceGetMaxPcieLinkGeneration,
                 &value) == NVML_SUCCESS) {
    readings.pcieLinkGenerationMax = static_cast<int>(value);
    pcie["generationMax"] = value;
  }
  if (query.call("nvmlDeviceGetMaxPcieLinkWidth", api.nvmlDeviceGetMaxPcieLinkWidth, &value) ==
      NVML_SUCCESS) {
    readings.pcieLinkWidthMax = static_cast<int>(value);
    pcie["widthMax"] = value;
  }
  record.properties["pcie"] = std::move(pcie);

  for (const CudaDevice& cuda : cudaDevices) {
    if (record.uuid.empty() || cuda.uuid != record.uuid) continue;
    record.properties["cudaOrdinal"] = cuda.ordinal;
    if (cuda.multiprocessorCount) {
      record.properties["multiprocessorCount"] = *cuda.multiprocessorCount;
    }
  }
  return device;
}

void readMemory(DeviceQuery& query, const NvmlFunctions& api, DeviceRecord& record) {
  nvmlMemory_v2_t memory2{};
  memory2.version = nvmlMemory_v2;
  const nvmlReturn_t result =
      query.core("nvmlDeviceGetMemoryInfo_v2", api.nvmlDeviceGetMemoryInfo_v2, &memory2);
  if (result == NVML_SUCCESS) {
    record.memory.totalBytes = memory2.total;
    record.memory.usedBytes = memory2.used;
    record.memory.freeBytes = memory2.free;
    record.properties["reservedMemoryBytes"] = memory2.reserved;
    return;
  }
  if (query.gone()) return;
  nvmlMemory_t memory{};  // older drivers: no _v2 symbol, or it refuses the struct version
  if (query.core("nvmlDeviceGetMemoryInfo", api.nvmlDeviceGetMemoryInfo, &memory) == NVML_SUCCESS) {
    record.memory.totalBytes = memory.total;
    record.memory.usedBytes = memory.used;
    record.memory.freeBytes = memory.free;
  }
}

// properties.processes: [{pid, usedMemoryBytes}]; usedMemoryBytes absent when NVML cannot see it.
void readProcesses(DeviceQuery& query, const NvmlFunctions& api, DeviceRecord& record) {
  std::vector<nvmlProcessInfo_t> infos;
  unsigned int count = 0;
  nvmlReturn_t result = query.call("nvmlDeviceGetComputeRunningProcesses_v3",
                                   api.nvmlDeviceGetComputeRunningProcesses_v3, &count,
                                   static_cast<nvmlProcessInfo_t*>(nullptr));
  // Processes may start between the calls: grow with slack and retry a few times.
  for (int attempt = 0; attempt < 4 && result == NVML_ERROR_INSUFFICIENT_SIZE; ++attempt) {
    infos.resize(count + 8);
    count = static_cast<unsigned int>(infos.size());
    result = query.call("nvmlDeviceGetComputeRunningProcesses_v3",
                        api.nvmlDeviceGetComputeRunningProcesses_v3, &count, infos.data());
  }
  if (result != NVML_SUCCESS) return;
  infos.resize(std::min<std::size_t>(count, infos.size()));
  nlohmann::json processes = nlohmann::json::array();
  for (const nvmlProcessInfo_t& info : infos) {
    nlohmann::json process = {{"pid", info.pid}};
    if (info.usedGpuMemory != NVML_VALUE_NOT_AVAILABLE) {
      process["usedMemoryBytes"] = info.usedGpuMemory;
    }
    processes.push_back(std::move(process));
  }
  record.properties["processes"] = std::move(processes);
}

void readEcc(DeviceQuery& query, const NvmlFunctions& api, DeviceRecord& record) {
  struct Counter {
    nvmlMemoryErrorType_t type;
    nvmlEccCounterType_t counter;
    std::optional<std::uint64_t> Readings::*field;
    const char* key;
  };
  static constexpr Counter kCounters[] = {
      {NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC, &Readings::eccVolatileSingleBit,
       "volatileCorrected"},
      {NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, &Readings::eccVolatileDoubleBit,
       "volatileUncorrected"},
      {NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_AGGREGATE_ECC, &Readings::eccAggregateSingleBit,
       "aggregateCorrected"},
      {NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_AGGREGATE_ECC, &Readings::eccAggregateDoubleBit,
       "aggregateUncorrected"},
  };
  nlohmann::json ecc = nlohmann::json::object();
  for (const Counter& counter : kCounters) {
    unsigned long long count = 0;
    if (query.call("nvmlDeviceGetTotalEccErrors", api.nvmlDeviceGetTotalEccErrors, counter.type,
                   counter.counter, &count) == NVML_SUCCESS) {
      record.readings.*counter.field = count;
      ecc[counter.key] = count;
    }
  }
  if (!ecc.empty()) record.properties["ecc"] = std::move(ecc);
}

// Everything that changes while the device runs.
void readLive(const NvmlLibrary& nvml, nvmlDevice_t handle, DeviceRecord& record) {
  const NvmlFunctions& api = nvml.api();
  DeviceQuery query(nvml, handle, record);
  Readings& readings = record.readings;
  readMemory(query, api, record);

  nvmlUtilization_t utilization{};
  if (query.call("nvmlDeviceGetUtilizationRates", api.nvmlDeviceGetUtilizationRates,
                 &utilization) == NVML_SUCCESS) {
    readings.utilizationRatio = utilization.gpu / 100.0;
    readings.memoryUtilizationRatio = utilization.memory / 100.0;
  }
  unsigned int value = 0;
  if (query.call("nvmlDeviceGetTemperature", api.nvmlDeviceGetTemperature, NVML_TEMPERATURE_GPU,
                 &value) == NVML_SUCCESS) {
    readings.temperatureCelsius = value;
  }
  if (query.call("nvmlDeviceGetPowerUsage", api.nvmlDeviceGetPowerUsage, &value) == NVML_SUCCESS) {
    readings.powerWatts = value / 1000.0;
  }
  if (query.call("nvmlDeviceGetEnforcedPowerLimit", api.nvmlDeviceGetEnforcedPowerLimit, &value) ==
      NVML_SUCCESS) {
    readings.powerLimitWatts = value / 1000.0;
  }

  nlohmann::json& clocks = record.properties["clocks"];
  if (auto mhz = readClock(query, kClock, api.nvmlDeviceGetClockInfo, NVML_CLOCK_GRAPHICS)) {
    readings.clockMhz = *mhz;
    clocks["graphicsMhz"] = *mhz;
  }
  if (auto mhz = readClock(query, kClock, api.nvmlDeviceGetClockInfo, NVML_CLOCK_SM))
    clocks["smMhz"] = *mhz;
  if (auto mhz = readClock(query, kClock, api.nvmlDeviceGetClockInfo, NVML_CLOCK_MEM)) {
    readings.memoryClockMhz = *mhz;
    clocks["memoryMhz"] = *mhz;
  }

  unsigned long long mask = 0;
  nvmlReturn_t reasons = query.call("nvmlDeviceGetCurrentClocksEventReasons",
                                    api.nvmlDeviceGetCurrentClocksEventReasons, &mask);
  if (reasons != NVML_SUCCESS && !query.gone()) {  // drivers before 535 only have this name
    reasons = query.call("nvmlDeviceGetCurrentClocksThrottleReasons",
                         api.nvmlDeviceGetCurrentClocksThrottleReasons, &mask);
  }
  if (reasons == NVML_SUCCESS) {
    ThrottleReasons decoded = decodeThrottleReasons(mask);
    readings.throttleReasons = std::move(decoded.names);
    readings.thermalThrottling = decoded.thermal;
    readings.powerThrottling = decoded.power;
    record.properties["throttleReasonsMask"] = mask;
  }

  readEcc(query, api, record);

  nlohmann::json& pcie = record.properties["pcie"];
  if (query.call("nvmlDeviceGetCurrPcieLinkGeneration", api.nvmlDeviceGetCurrPcieLinkGeneration,
                 &value) == NVML_SUCCESS) {
    readings.pcieLinkGeneration = static_cast<int>(value);
    pcie["generation"] = value;
  }
  if (query.call("nvmlDeviceGetCurrPcieLinkWidth", api.nvmlDeviceGetCurrPcieLinkWidth, &value) ==
      NVML_SUCCESS) {
    readings.pcieLinkWidth = static_cast<int>(value);
    pcie["width"] = value;
  }
  readProcesses(query, api, record);
}

// CUDA is optional: without it devices lack multiprocessorCount and cudaOrdinal. Returns the
// driver version, or why CUDA is unusable; fills `devices` on success.
Result<std::string> openCuda(const std::string& path, std::vector<CudaDevice>& devices) {
  auto cuda = CudaLibrary::open(path);
  if (!cuda.ok()) return cuda.error();
  auto listed = (*cuda)->devices();
  if (!listed.ok()) return listed.error();
  devices = std::move(listed).value();
  return (*cuda)->driverVersion();
}

class NvidiaBackend final : public Backend {
 public:
  explicit NvidiaBackend(NvidiaBackendOptions options) : options_(std::move(options)) {}

  std::string_view name() const override { return "nvidia"; }

  Status open() override {
    devices_.clear();
    nvml_.reset();
    auto nvml = NvmlLibrary::open(options_.nvmlLibraryPath);
    if (!nvml.ok()) return nvml.error();
    unsigned int count = 0;
    const nvmlReturn_t counted = (*nvml)->api().nvmlDeviceGetCount_v2(&count);
    if (counted != NVML_SUCCESS) {
      return makeError(ErrorCode::kUnavailable,
                       "nvmlDeviceGetCount_v2 failed: " + (*nvml)->errorString(counted));
    }
    if (count == 0) return makeError(ErrorCode::kUnavailable, "NVML reports no NVIDIA GPUs");

    std::vector<CudaDevice> cudaDevices;
    const Result<std::string> cudaVersion = openCuda(options_.cudaLibraryPath, cudaDevices);
    const nlohmann::json systemFacts = readSystemFacts(**nvml, cudaVersion);
    for (unsigned int index = 0; index < count; ++index) {
      devices_.push_back(describeDevice(**nvml, index, cudaDevices, systemFacts));
    }
    nvml_ = std::move(nvml).value();
    return Status::success();
  }

  Result<std::vector<DeviceRecord>> poll() override {
    if (nvml_ == nullptr) {
      return makeError(ErrorCode::kUnavailable, "the nvidia backend is not open");
    }
    std::vector<DeviceRecord> records;
    records.reserve(devices_.size());
    for (const NvidiaDevice& device : devices_) {
      DeviceRecord record = device.record;
      if (!record.queryError) readLive(*nvml_, device.handle, record);
      records.push_back(std::move(record));
    }
    return records;
  }

 private:
  const NvidiaBackendOptions options_;
  std::unique_ptr<NvmlLibrary> nvml_;  // null until open() succeeds
  std::vector<NvidiaDevice> devices_;  // handles are valid while nvml_ is initialised
};

}  // namespace
}  // namespace nvidia

std::unique_ptr<Backend> makeNvidiaBackend(NvidiaBackendOptions options) {
  return std::make_unique<nvidia::NvidiaBackend>(std::move(options));
}

}  // namespace deviceops::devices
