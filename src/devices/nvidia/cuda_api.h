// Our own declarations of the part of the CUDA driver API (libcuda.so.1) that deviceops uses,
// written from NVIDIA's public driver API reference so that no CUDA toolkit is needed to build.
//
// Types and constants keep the driver API's names and must match its C ABI exactly (64-bit
// Linux: CUdeviceptr is 64 bits, the *_v2 entry points take size_t byte counts).
#pragma once

#include <cstddef>

namespace deviceops::devices::nvidia {

enum CUresult : int {  // NOLINT(readability-identifier-naming): the driver API's ABI name
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_DEINITIALIZED = 4,
  CUDA_ERROR_DEVICE_UNAVAILABLE = 46,
  CUDA_ERROR_NO_DEVICE = 100,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_CONTEXT = 201,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_ILLEGAL_ADDRESS = 700,
  CUDA_ERROR_NOT_SUPPORTED = 801,
  CUDA_ERROR_UNKNOWN = 999,
};

using CUdevice = int;                    // a device ordinal handle from cuDeviceGet
using CUdeviceptr = unsigned long long;  // device address (CUdeviceptr_v2)
struct CUctx_st;
using CUcontext = CUctx_st*;

struct CUuuid {
  char bytes[16];
};

enum CUdevice_attribute : int {
  CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
};

// Entry points, each named exactly like its driver symbol. A member is nullptr when the loaded
// library lacks the symbol; CudaLibrary reports which are missing.
struct CudaFunctions {
  CUresult (*cuInit)(unsigned int flags) = nullptr;
  CUresult (*cuDriverGetVersion)(int* driverVersion) = nullptr;  // 1000 * major + 10 * minor
  CUresult (*cuGetErrorName)(CUresult error, const char** name) = nullptr;
  CUresult (*cuGetErrorString)(CUresult error, const char** text) = nullptr;
  CUresult (*cuDeviceGetCount)(int* count) = nullptr;
  CUresult (*cuDeviceGet)(CUdevice* device, int ordinal) = nullptr;
  CUresult (*cuDeviceGetAttribute)(int* value, CUdevice_attribute attribute,
                                   CUdevice device) = nullptr;
  CUresult (*cuDeviceGetUuid_v2)(CUuuid* uuid, CUdevice device) = nullptr;
  CUresult (*cuDeviceGetUuid)(CUuuid* uuid, CUdevice device) = nullptr;
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext* context, CUdevice device) = nullptr;
  CUresult (*cuDevicePrimaryCtxRelease_v2)(CUdevice device) = nullptr;
  CUresult (*cuCtxSetCurrent)(CUcontext context) = nullptr;
  CUresult (*cuCtxSynchronize)() = nullptr;
  CUresult (*cuMemGetInfo_v2)(std::size_t* freeBytes, std::size_t* totalBytes) = nullptr;
  CUresult (*cuMemAlloc_v2)(CUdeviceptr* pointer, std::size_t bytes) = nullptr;
  CUresult (*cuMemFree_v2)(CUdeviceptr pointer) = nullptr;
  CUresult (*cuMemsetD8_v2)(CUdeviceptr destination, unsigned char value,
                            std::size_t count) = nullptr;
  CUresult (*cuMemcpyHtoD_v2)(CUdeviceptr destination, const void* source,
                              std::size_t bytes) = nullptr;
  CUresult (*cuMemcpyDtoH_v2)(void* destination, CUdeviceptr source, std::size_t bytes) = nullptr;
  CUresult (*cuMemcpyDtoD_v2)(CUdeviceptr destination, CUdeviceptr source,
                              std::size_t bytes) = nullptr;
};

}  // namespace deviceops::devices::nvidia
