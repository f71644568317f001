// NVIDIA GPUs through NVML (libnvidia-ml.so.1) and the CUDA driver API (libcuda.so.1), both opened
// with dlopen and declared by us (nvml_api.h, cuda_api.h): no CUDA toolkit is needed to build.
#pragma once

#include <memory>
#include <string>

#include "devices/device.h"

namespace deviceops::devices {

struct NvidiaBackendOptions {
  std::string nvmlLibraryPath = "libnvidia-ml.so.1";
  std::string cudaLibraryPath = "libcuda.so.1";
};

std::unique_ptr<Backend> makeNvidiaBackend(NvidiaBackendOptions options = {});

}  // namespace deviceops::devices
