// CUDA driver API test double, built into the same shared library as the NVML double. It sees
// the GPUs of fake_gpus.h in the reverse of NVML's order (as CUDA_DEVICE_ORDER=FASTEST_FIRST
// can), so the backend must match CUDA devices to NVML devices by UUID, not by index.
// Allocation entry points are backed by host memory so that callers of CudaLibrary can be
// tested without a GPU; each device's capacity is finite (its free memory as NVML reports it,
// totalBytes - usedBytes), so out-of-memory paths can be tested too. Not thread-safe beyond what
// malloc/free and the atomic counters are (the current context is process-wide, not per thread).
#include <atomic>
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

// Bytes handed out by cuMemAlloc_v2, per CUDA ordinal.
std::atomic<unsigned long long> allocatedBytes[kDeviceCount];

// Each allocation is preceded by this header, so cuMemFree_v2 knows what to give back.
struct alignas(16) AllocationHeader {
  std::size_t bytes;
  int ordinal;
};

// The fake GPU index behind CUDA ordinal `ordinal`.
int fakeIndex(CUdevice ordinal) { return kDeviceCount - 1 - ordinal; }

bool valid(CUdevice device) { return device >= 0 && device < kDeviceCount; }

int currentOrdinal() {
  return static_cast<int>(reinterpret_cast<char*>(currentContext) - contextTokens);
}

unsigned long long availableBytes(int ordinal) {
  const auto& gpu = kFakeGpus[fakeIndex(ordinal)];
  return gpu.totalBytes - gpu.usedBytes - allocatedBytes[ordinal].load();
}

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
  *totalBytes = kFakeGpus[fakeIndex(currentOrdinal())].totalBytes;
  *freeBytes = availableBytes(currentOrdinal());
  return CUDA_SUCCESS;
}

CUresult cuMemAlloc_v2(CUdeviceptr* pointer, std::size_t bytes) {
  if (currentContext == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
  const int ordinal = currentOrdinal();
  if (bytes > availableBytes(ordinal)) return CUDA_ERROR_OUT_OF_MEMORY;
  auto* header = static_cast<AllocationHeader*>(std::malloc(sizeof(AllocationHeader) + bytes));
  if (header == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  header->bytes = bytes;
  header->ordinal = ordinal;
  allocatedBytes[ordinal] += bytes;
  *pointer = reinterpret_cast<CUdeviceptr>(header + 1);
  return CUDA_SUCCESS;
}

CUresult cuMemFree_v2(CUdeviceptr pointer) {
  if (pointer == 0) return CUDA_SUCCESS;
  auto* header = reinterpret_cast<AllocationHeader*>(pointer) - 1;
  allocatedBytes[header->ordinal] -= header->bytes;
  std::free(header);
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

CUresult cuMemcpyDtoD_v2(CUdeviceptr destination, CUdeviceptr source, std::size_t bytes) {
  std::memmove(reinterpret_cast<void*>(destination), reinterpret_cast<const void*>(source), bytes);
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
DEVICEOPS_SAME_SIGNATURE(cuMemcpyDtoD_v2);
#undef DEVICEOPS_SAME_SIGNATURE
