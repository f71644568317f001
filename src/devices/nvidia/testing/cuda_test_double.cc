// CUDA driver API test double, built into the same shared library as the NVML double. It sees
// the GPUs of fake_gpus.h in the reverse of NVML's order (as CUDA_DEVICE_ORDER=FASTEST_FIRST
// can), so the backend must match CUDA devices to NVML devices by UUID, not by index.
// Allocation entry points are backed by host memory so that callers of CudaLibrary can be
// tested without a GPU. Not thread-safe beyond what malloc/free are.
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "devices/nvidia/cuda_api.h"
#include "devices/nvidia/testing/fake_gpus.h"

using namespace deviceops::devices::nvidia;  // NOLINT: this file only mirrors the CUDA ABI
using deviceops::devices::nvidia::testing::kFakeGpus;

namespace {

constexpr int kDeviceCount = 2;
bool initialized = false;
char contextTokens[kDeviceCount];
CUcontext currentContext = nullptr;

// The fake GPU index behind CUDA ordinal `ordinal`.
int fakeIndex(CUdevice ordinal) { return kDeviceCount - 1 - ordinal; }

bool valid(CUdevice device) { return device >= 0 && device < kDeviceCount; }

}  // namespace

extern "C" {

CUresult cuInit(unsigned int flags) {
  if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
  initialized = true;
  return CUDA_SUCCESS;
}

CUresult cuDriverGetVersion(int* driverVersion) {
  if (driverVersion == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *driverVersion = 12040;
  return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult error, const char** name) {
  switch (error) {
    case CUDA_SUCCESS:
      *name = "CUDA_SUCCESS";
      return CUDA_SUCCESS;
    case CUDA_ERROR_INVALID_VALUE:
      *name = "CUDA_ERROR_INVALID_VALUE";
      return CUDA_SUCCESS;
    case CUDA_ERROR_OUT_OF_MEMORY:
      *name = "CUDA_ERROR_OUT_OF_MEMORY";
      return CUDA_SUCCESS;
    case CUDA_ERROR_NOT_INITIALIZED:
      *name = "CUDA_ERROR_NOT_INITIALIZED";
      return CUDA_SUCCESS;
    case CUDA_ERROR_INVALID_DEVICE:
      *name = "CUDA_ERROR_INVALID_DEVICE";
      return CUDA_SUCCESS;
    default:
      *name = nullptr;
      return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult cuGetErrorString(CUresult error, const char** text) {
  switch (error) {
    case CUDA_SUCCESS:
      *text = "no error";
      return CUDA_SUCCESS;
    case CUDA_ERROR_INVALID_VALUE:
      *text = "invalid argument";
      return CUDA_SUCCESS;
    case CUDA_ERROR_OUT_OF_MEMORY:
      *text = "out of memory";
      return CUDA_SUCCESS;
    case CUDA_ERROR_NOT_INITIALIZED:
      *text = "initialization error";
      return CUDA_SUCCESS;
    case CUDA_ERROR_INVALID_DEVICE:
      *text = "invalid device ordinal";
      return CUDA_SUCCESS;
    default:
      *text = nullptr;
      return CUDA_ERROR_INVALID_VALUE;
  }
}

CUresult cuDeviceGetCount(int* count) {
  if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
  *count = kDeviceCount;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(ordinal)) return CUDA_ERROR_INVALID_DEVICE;
  *device = ordinal;
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int* value, CUdevice_attribute attribute, CUdevice device) {
  if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(device)) return CUDA_ERROR_INVALID_DEVICE;
  const auto& gpu = kFakeGpus[fakeIndex(device)];
  switch (attribute) {
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT:
      *value = gpu.multiprocessorCount;
      break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR:
      *value = gpu.computeMajor;
      break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR:
      *value = gpu.computeMinor;
      break;
    default:
      return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid_v2(CUuuid* uuid, CUdevice device) {
  if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(device)) return CUDA_ERROR_INVALID_DEVICE;
  std::memcpy(uuid->bytes, kFakeGpus[fakeIndex(device)].uuidBytes, sizeof uuid->bytes);
  return CUDA_SUCCESS;
}

CUresult cuDeviceGetUuid(CUuuid* uuid, CUdevice device) { return cuDeviceGetUuid_v2(uuid, device); }

CUresult cuDevicePrimaryCtxRetain(CUcontext* context, CUdevice device) {
  if (!initialized) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(device)) return CUDA_ERROR_INVALID_DEVICE;
  *context = reinterpret_cast<CUcontext>(&contextTokens[device]);
  return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) {
  return valid(device) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

CUresult cuCtxSetCurrent(CUcontext context) {
  currentContext = context;
  return CUDA_SUCCESS;
}

CUresult cuCtxSynchronize() { return CUDA_SUCCESS; }

CUresult cuMemGetInfo_v2(std::size_t* freeBytes, std::size_t* totalBytes) {
  if (currentContext == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const int index =
      fakeIndex(static_cast<int>(reinterpret_cast<char*>(currentContext) - contextTokens));
  *totalBytes = kFakeGpus[index].totalBytes;
  *freeBytes = kFakeGpus[index].totalBytes - kFakeGpus[index].usedBytes;
  return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr* pointer, std::size_t bytes) {
  if (currentContext == nullptr) return CUDA_ERROR_INVALID_VALUE;
  void* memory = std::malloc(bytes);
  if (memory == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  *pointer = reinterpret_cast<CUdeviceptr>(memory);
  return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr pointer) {
  std::free(reinterpret_cast<void*>(pointer));
  return CUDA_SUCCESS;
}

CUresult cuMemsetD8_v2(CUdeviceptr destination, unsigned char value, std::size_t count) {
  std::memset(reinterpret_cast<void*>(destination), value, count);
  return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD_v2(CUdeviceptr destination, const void* source, std::size_t bytes) {
  std::memcpy(reinterpret_cast<void*>(destination), source, bytes);
  return CUDA_SUCCESS;
}

CUresult cuMemcpyDtoH_v2(void* destination, CUdeviceptr source, std::size_t bytes) {
  std::memcpy(destination, reinterpret_cast<const void*>(source), bytes);
  return CUDA_SUCCESS;
}

}  // extern "C"

#define DEVICEOPS_SAME_SIGNATURE(symbol)                                              \
  static_assert(std::is_same_v<decltype(&::symbol), decltype(CudaFunctions::symbol)>, \
                #symbol " differs from cuda_api.h")
DEVICEOPS_SAME_SIGNATURE(cuInit);
DEVICEOPS_SAME_SIGNATURE(cuDriverGetVersion);
DEVICEOPS_SAME_SIGNATURE(cuGetErrorName);
DEVICEOPS_SAME_SIGNATURE(cuGetErrorString);
DEVICEOPS_SAME_SIGNATURE(cuDeviceGetCount);
DEVICEOPS_SAME_SIGNATURE(cuDeviceGet);
DEVICEOPS_SAME_SIGNATURE(cuDeviceGetAttribute);
DEVICEOPS_SAME_SIGNATURE(cuDeviceGetUuid_v2);
DEVICEOPS_SAME_SIGNATURE(cuDeviceGetUuid);
DEVICEOPS_SAME_SIGNATURE(cuDevicePrimaryCtxRetain);
DEVICEOPS_SAME_SIGNATURE(cuDevicePrimaryCtxRelease_v2);
DEVICEOPS_SAME_SIGNATURE(cuCtxSetCurrent);
DEVICEOPS_SAME_SIGNATURE(cuCtxSynchronize);
DEVICEOPS_SAME_SIGNATURE(cuMemGetInfo_v2);
DEVICEOPS_SAME_SIGNATURE(cuMemAlloc_v2);
DEVICEOPS_SAME_SIGNATURE(cuMemFree_v2);
DEVICEOPS_SAME_SIGNATURE(cuMemsetD8_v2);
DEVICEOPS_SAME_SIGNATURE(cuMemcpyHtoD_v2);
DEVICEOPS_SAME_SIGNATURE(cuMemcpyDtoH_v2);
#undef DEVICEOPS_SAME_SIGNATURE
