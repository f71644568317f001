// NVML test double: a shared library exporting the NVML C functions that the nvidia backend
// loads, answering for the two GPUs of fake_gpus.h plus the fixed readings below. Behaviour is
// chosen by environment variables read in nvmlInit_v2:
//   NVML_TEST_DOUBLE_FAIL_INIT=1     nvmlInit_v2 returns NVML_ERROR_DRIVER_NOT_LOADED
//   NVML_TEST_DOUBLE_LOST_DEVICE=1   device 1's memory queries return NVML_ERROR_GPU_IS_LOST
//   NVML_TEST_DOUBLE_NO_ECC=1        ECC queries return NVML_ERROR_NOT_SUPPORTED
//   NVML_TEST_DOUBLE_NO_MEMORY_V2=1  nvmlDeviceGetMemoryInfo_v2 returns FUNCTION_NOT_FOUND
//   NVML_TEST_DOUBLE_NO_BUS_WIDTH=1  nvmlDeviceGetMemoryBusWidth returns FUNCTION_NOT_FOUND
// nvmlDeviceGetCurrentClocksEventReasons is deliberately not exported (a pre-535 driver), so the
// backend's fallback to ...ThrottleReasons is exercised.
//
// Not thread-safe: state is plain globals, as the tests call it from one thread.
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "devices/nvidia/nvml_api.h"
#include "devices/nvidia/testing/fake_gpus.h"

using namespace deviceops::devices::nvidia;  // NOLINT: this file only mirrors the NVML ABI
using deviceops::devices::nvidia::testing::kFakeGpus;

namespace {

constexpr unsigned int kDeviceCount = 2;

// Live readings per device, indexed like kFakeGpus.
struct FakeReadings {
  unsigned int utilizationGpu, utilizationMemory;
  unsigned int temperature, slowdown, shutdown;
  unsigned int powerMilliwatts, powerLimitMilliwatts;
  unsigned int clocks[3], maxClocks[3];  // graphics, SM, memory (MHz)
  unsigned long long ecc[2][2];          // [corrected, uncorrected][volatile, aggregate]
  unsigned int pcieGeneration, pcieWidth, pcieGenerationMax, pcieWidthMax;
  unsigned int processCount;
  nvmlProcessInfo_t processes[2];
};

constexpr unsigned int kNoInstance = 0xFFFFFFFF;
const FakeReadings kReadings[kDeviceCount] = {
    {37,
     12,
     41,
     87,
     92,
     123456,
     700000,
     {1755, 1755, 2619},
     {1980, 1980, 2619},
     {{3, 17}, {0, 1}},
     5,
     16,
     5,
     16,
     2,
     {{4242, 1ULL << 30, kNoInstance, kNoInstance},
      {4343, NVML_VALUE_NOT_AVAILABLE, kNoInstance, kNoInstance}}},
    {100,
     64,
     83,
     90,
     95,
     398000,
     400000,
     {1410, 1410, 1215},
     {1410, 1410, 1215},
     {{0, 2}, {0, 0}},
     3,
     16,
     4,
     16,
     0,
     {}},
};

struct State {
  int initCount = 0;
  bool lostDevice = false;
  bool noEcc = false;
  bool noMemoryV2 = false;
  bool noBusWidth = false;
};
State state;
char handleTokens[kDeviceCount];  // a device handle points at its token

bool envFlag(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::strcmp(value, "1") == 0;
}

// Device index of `device`, or -1 when it is not one of ours.
int indexOf(nvmlDevice_t device) {
  const char* token = reinterpret_cast<const char*>(device);
  if (token < handleTokens || token >= handleTokens + kDeviceCount) return -1;
  return static_cast<int>(token - handleTokens);
}

// Common checks: initialised, valid handle, non-null output. On success *index is set.
nvmlReturn_t check(nvmlDevice_t device, const void* output, int* index) {
  if (state.initCount == 0) return NVML_ERROR_UNINITIALIZED;
  *index = indexOf(device);
  if (*index < 0 || output == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  return NVML_SUCCESS;
}

nvmlReturn_t copyString(const char* text, char* buffer, unsigned int length) {
  if (std::strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  std::strcpy(buffer, text);
  return NVML_SUCCESS;
}

nvmlReturn_t readUnsigned(nvmlDevice_t device, unsigned int* out, unsigned int FakeReadings::*f) {
  int index = 0;
  if (nvmlReturn_t r = check(device, out, &index); r != NVML_SUCCESS) return r;
  *out = kReadings[index].*f;
  return NVML_SUCCESS;
}

}  // namespace

extern "C" {

nvmlReturn_t nvmlInit_v2() {
  if (envFlag("NVML_TEST_DOUBLE_FAIL_INIT")) return NVML_ERROR_DRIVER_NOT_LOADED;
  state.lostDevice = envFlag("NVML_TEST_DOUBLE_LOST_DEVICE");
  state.noEcc = envFlag("NVML_TEST_DOUBLE_NO_ECC");
  state.noMemoryV2 = envFlag("NVML_TEST_DOUBLE_NO_MEMORY_V2");
  state.noBusWidth = envFlag("NVML_TEST_DOUBLE_NO_BUS_WIDTH");
  ++state.initCount;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown() {
  if (state.initCount == 0) return NVML_ERROR_UNINITIALIZED;
  --state.initCount;
  return NVML_SUCCESS;
}

const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS:
      return "Success";
    case NVML_ERROR_UNINITIALIZED:
      return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
      return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
      return "Not Supported";
    case NVML_ERROR_INSUFFICIENT_SIZE:
      return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED:
      return "Driver Not Loaded";
    case NVML_ERROR_FUNCTION_NOT_FOUND:
      return "Function Not Found";
    case NVML_ERROR_GPU_IS_LOST:
      return "GPU is lost";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH:
      return "Argument version mismatch";
    default:
      return "Unknown Error";
  }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  if (state.initCount == 0) return NVML_ERROR_UNINITIALIZED;
  return copyString("550.54.15", version, length);
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* cudaDriverVersion) {
  *cudaDriverVersion = 12040;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* cudaDriverVersion) {
  return nvmlSystemGetCudaDriverVersion_v2(cudaDriverVersion);
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* deviceCount) {
  if (state.initCount == 0) return NVML_ERROR_UNINITIALIZED;
  *deviceCount = kDeviceCount;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (state.initCount == 0) return NVML_ERROR_UNINITIALIZED;
  if (index >= kDeviceCount || device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *device = reinterpret_cast<nvmlDevice_t>(&handleTokens[index]);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  int index = 0;
  if (nvmlReturn_t r = check(device, name, &index); r != NVML_SUCCESS) return r;
  return copyString(kFakeGpus[index].name, name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  int index = 0;
  if (nvmlReturn_t r = check(device, uuid, &index); r != NVML_SUCCESS) return r;
  return copyString(kFakeGpus[index].nvmlUuid, uuid, length);
}

nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  int index = 0;
  if (nvmlReturn_t r = check(device, pci, &index); r != NVML_SUCCESS) return r;
  std::memset(pci, 0, sizeof *pci);
  std::strcpy(pci->busId, kFakeGpus[index].busId);
  std::strcpy(pci->busIdLegacy, kFakeGpus[index].busId + 4);
  pci->bus = index == 0 ? 0x1B : 0xAF;
  pci->pciDeviceId = kFakeGpus[index].pciDeviceId;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t* memory) {
  int index = 0;
  if (nvmlReturn_t r = check(device, memory, &index); r != NVML_SUCCESS) return r;
  if (state.noMemoryV2) return NVML_ERROR_FUNCTION_NOT_FOUND;
  if (memory->version != (static_cast<unsigned int>(sizeof(nvmlMemory_v2_t)) | (2U << 24))) {
    return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  }
  if (state.lostDevice && index == 1) return NVML_ERROR_GPU_IS_LOST;
  const auto& gpu = kFakeGpus[index];
  memory->total = gpu.totalBytes;
  memory->reserved = gpu.reservedBytes;
  memory->used = gpu.usedBytes;
  memory->free = gpu.totalBytes - gpu.usedBytes;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  int index = 0;
  if (nvmlReturn_t r = check(device, memory, &index); r != NVML_SUCCESS) return r;
  if (state.lostDevice && index == 1) return NVML_ERROR_GPU_IS_LOST;
  const auto& gpu = kFakeGpus[index];
  memory->total = gpu.totalBytes;
  memory->used = gpu.usedBytes - gpu.reservedBytes;  // v1 does not count the reserved part
  memory->free = gpu.totalBytes - gpu.usedBytes;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t* utilization) {
  int index = 0;
  if (nvmlReturn_t r = check(device, utilization, &index); r != NVML_SUCCESS) return r;
  utilization->gpu = kReadings[index].utilizationGpu;
  utilization->memory = kReadings[index].utilizationMemory;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensor,
                                      unsigned int* celsius) {
  if (sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_INVALID_ARGUMENT;
  return readUnsigned(device, celsius, &FakeReadings::temperature);
}

nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t device,
                                               nvmlTemperatureThresholds_t threshold,
                                               unsigned int* celsius) {
  if (threshold == NVML_TEMPERATURE_THRESHOLD_SLOWDOWN) {
    return readUnsigned(device, celsius, &FakeReadings::slowdown);
  }
  if (threshold == NVML_TEMPERATURE_THRESHOLD_SHUTDOWN) {
    return readUnsigned(device, celsius, &FakeReadings::shutdown);
  }
  return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int* milliwatts) {
  return readUnsigned(device, milliwatts, &FakeReadings::powerMilliwatts);
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int* milliwatts) {
  return readUnsigned(device, milliwatts, &FakeReadings::powerLimitMilliwatts);
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int* mhz) {
  int index = 0;
  if (nvmlReturn_t r = check(device, mhz, &index); r != NVML_SUCCESS) return r;
  if (type < NVML_CLOCK_GRAPHICS || type > NVML_CLOCK_MEM) return NVML_ERROR_NOT_SUPPORTED;
  *mhz = kReadings[index].clocks[type];
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type,
                                       unsigned int* mhz) {
  int index = 0;
  if (nvmlReturn_t r = check(device, mhz, &index); r != NVML_SUCCESS) return r;
  if (type < NVML_CLOCK_GRAPHICS || type > NVML_CLOCK_MEM) return NVML_ERROR_NOT_SUPPORTED;
  *mhz = kReadings[index].maxClocks[type];
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device,
                                                       unsigned long long* reasons) {
  int index = 0;
  if (nvmlReturn_t r = check(device, reasons, &index); r != NVML_SUCCESS) return r;
  *reasons = kFakeGpus[index].throttleMask;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t type,
                                         nvmlEccCounterType_t counter, unsigned long long* count) {
  int index = 0;
  if (nvmlReturn_t r = check(device, count, &index); r != NVML_SUCCESS) return r;
  if (state.noEcc) return NVML_ERROR_NOT_SUPPORTED;
  if (type < 0 || type > 1 || counter < 0 || counter > 1) return NVML_ERROR_INVALID_ARGUMENT;
  *count = kReadings[index].ecc[type][counter];
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t device, unsigned int* generation) {
  return readUnsigned(device, generation, &FakeReadings::pcieGeneration);
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t device, unsigned int* width) {
  return readUnsigned(device, width, &FakeReadings::pcieWidth);
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t device, unsigned int* generation) {
  return readUnsigned(device, generation, &FakeReadings::pcieGenerationMax);
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t device, unsigned int* width) {
  return readUnsigned(device, width, &FakeReadings::pcieWidthMax);
}

nvmlReturn_t nvmlDeviceGetMemoryBusWidth(nvmlDevice_t device, unsigned int* busWidth) {
  int index = 0;
  if (nvmlReturn_t r = check(device, busWidth, &index); r != NVML_SUCCESS) return r;
  if (state.noBusWidth) return NVML_ERROR_FUNCTION_NOT_FOUND;
  *busWidth = kFakeGpus[index].memoryBusWidthBits;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int* major, int* minor) {
  int index = 0;
  if (nvmlReturn_t r = check(device, major, &index); r != NVML_SUCCESS) return r;
  if (minor == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *major = kFakeGpus[index].computeMajor;
  *minor = kFakeGpus[index].computeMinor;
  return NVML_SUCCESS;
}

// Like NVML: with *infoCount too small, INSUFFICIENT_SIZE and *infoCount = the number needed.
nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int* infoCount,
                                                     nvmlProcessInfo_t* infos) {
  int index = 0;
  if (nvmlReturn_t r = check(device, infoCount, &index); r != NVML_SUCCESS) return r;
  const FakeReadings& readings = kReadings[index];
  if (*infoCount < readings.processCount) {
    *infoCount = readings.processCount;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  if (readings.processCount > 0 && infos == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  for (unsigned int i = 0; i < readings.processCount; ++i) infos[i] = readings.processes[i];
  *infoCount = readings.processCount;
  return NVML_SUCCESS;
}

}  // extern "C"

// Every exported function must have exactly the type the backend calls it through.
#define DEVICEOPS_SAME_SIGNATURE(symbol)                                              \
  static_assert(std::is_same_v<decltype(&::symbol), decltype(NvmlFunctions::symbol)>, \
                #symbol " differs from nvml_api.h")
DEVICEOPS_SAME_SIGNATURE(nvmlInit_v2);
DEVICEOPS_SAME_SIGNATURE(nvmlShutdown);
DEVICEOPS_SAME_SIGNATURE(nvmlErrorString);
DEVICEOPS_SAME_SIGNATURE(nvmlSystemGetDriverVersion);
DEVICEOPS_SAME_SIGNATURE(nvmlSystemGetCudaDriverVersion_v2);
DEVICEOPS_SAME_SIGNATURE(nvmlSystemGetCudaDriverVersion);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetCount_v2);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetHandleByIndex_v2);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetName);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetUUID);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetPciInfo_v3);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetMemoryInfo_v2);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetMemoryInfo);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetUtilizationRates);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetTemperature);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetTemperatureThreshold);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetPowerUsage);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetEnforcedPowerLimit);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetClockInfo);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetMaxClockInfo);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetCurrentClocksThrottleReasons);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetTotalEccErrors);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetCurrPcieLinkGeneration);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetCurrPcieLinkWidth);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetMaxPcieLinkGeneration);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetMaxPcieLinkWidth);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetMemoryBusWidth);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetCudaComputeCapability);
DEVICEOPS_SAME_SIGNATURE(nvmlDeviceGetComputeRunningProcesses_v3);
#undef DEVICEOPS_SAME_SIGNATURE
