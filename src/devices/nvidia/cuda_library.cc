#include "devices/nvidia/cuda_library.h"

#include <fmt/format.h>

#include <mutex>
#include <utility>

#include "devices/nvidia/nvml_library.h"

namespace deviceops::devices::nvidia {
namespace {

// Keeps initialised driver libraries loaded until exit (see the header). Guarded by its mutex.
void keepLoaded(std::shared_ptr<SharedLibrary> library) {
  static std::mutex mutex;
  static auto* kept = new std::vector<std::shared_ptr<SharedLibrary>>();  // never destroyed
  std::lock_guard<std::mutex> lock(mutex);
  kept->push_back(std::move(library));
}

}  // namespace

Result<std::shared_ptr<CudaLibrary>> CudaLibrary::open(const std::string& path) {
  auto library = SharedLibrary::open(path);
  if (!library.ok()) return library.error();
  auto self = std::shared_ptr<CudaLibrary>(new CudaLibrary());
  self->library_ = std::move(library).value();
  const SharedLibrary& lib = *self->library_;
  CudaFunctions& api = self->api_;
  std::vector<std::string> missing;
#define DEVICEOPS_RESOLVE(symbol) lib.resolve(#symbol, api.symbol, missing)
  DEVICEOPS_RESOLVE(cuInit);
  DEVICEOPS_RESOLVE(cuDriverGetVersion);
  DEVICEOPS_RESOLVE(cuDeviceGetCount);
  DEVICEOPS_RESOLVE(cuDeviceGet);
  DEVICEOPS_RESOLVE(cuDeviceGetAttribute);
  if (!missing.empty()) {
    std::string list;
    for (const auto& name : missing) list += (list.empty() ? "" : ", ") + name;
    return makeError(ErrorCode::kUnavailable, path + " lacks " + list + " (not a CUDA driver)");
  }
  DEVICEOPS_RESOLVE(cuGetErrorName);
  DEVICEOPS_RESOLVE(cuGetErrorString);
  DEVICEOPS_RESOLVE(cuDeviceGetUuid_v2);
  DEVICEOPS_RESOLVE(cuDeviceGetUuid);
  DEVICEOPS_RESOLVE(cuDevicePrimaryCtxRetain);
  DEVICEOPS_RESOLVE(cuDevicePrimaryCtxRelease_v2);
  DEVICEOPS_RESOLVE(cuCtxSetCurrent);
  DEVICEOPS_RESOLVE(cuCtxSynchronize);
  DEVICEOPS_RESOLVE(cuMemGetInfo_v2);
  DEVICEOPS_RESOLVE(cuMemAlloc_v2);
  DEVICEOPS_RESOLVE(cuMemFree_v2);
  DEVICEOPS_RESOLVE(cuMemsetD8_v2);
  DEVICEOPS_RESOLVE(cuMemcpyHtoD_v2);
  DEVICEOPS_RESOLVE(cuMemcpyDtoH_v2);
  DEVICEOPS_RESOLVE(cuMemcpyDtoD_v2);
#undef DEVICEOPS_RESOLVE
  self->missing_ = std::move(missing);

  const CUresult initialized = api.cuInit(0);
  // cuInit may have started driver threads even when it fails: never unload from here on.
  keepLoaded(self->library_);
  if (initialized != CUDA_SUCCESS) {
    return makeError(ErrorCode::kUnavailable, "cuInit failed: " + self->errorString(initialized));
  }
  return self;
}

std::string CudaLibrary::errorString(CUresult result) const {
  const char* name = nullptr;
  const char* text = nullptr;
  if (api_.cuGetErrorName == nullptr || api_.cuGetErrorName(result, &name) != CUDA_SUCCESS ||
      name == nullptr) {
    return fmt::format("CUresult {}", static_cast<int>(result));
  }
  if (api_.cuGetErrorString == nullptr || api_.cuGetErrorString(result, &text) != CUDA_SUCCESS ||
      text == nullptr) {
    return name;
  }
  return fmt::format("{} ({})", name, text);
}

Result<std::string> CudaLibrary::driverVersion() const {
  int version = 0;
  const CUresult result = api_.cuDriverGetVersion(&version);
  if (result != CUDA_SUCCESS) {
    return makeError(ErrorCode::kUnavailable, "cuDriverGetVersion failed: " + errorString(result));
  }
  return cudaVersionString(version);
}

Result<std::vector<CudaDevice>> CudaLibrary::devices() const {
  int count = 0;
  const CUresult counted = api_.cuDeviceGetCount(&count);
  if (counted != CUDA_SUCCESS) {
    return makeError(ErrorCode::kUnavailable, "cuDeviceGetCount failed: " + errorString(counted));
  }
  auto getUuid =
      api_.cuDeviceGetUuid_v2 != nullptr ? api_.cuDeviceGetUuid_v2 : api_.cuDeviceGetUuid;
  std::vector<CudaDevice> devices;
  for (int ordinal = 0; ordinal < count; ++ordinal) {
    CUdevice device = 0;
    if (api_.cuDeviceGet(&device, ordinal) != CUDA_SUCCESS) continue;
    CudaDevice entry;
    entry.ordinal = ordinal;
    CUuuid uuid{};
    if (getUuid != nullptr && getUuid(&uuid, device) == CUDA_SUCCESS) entry.uuid = uuidString(uuid);
    int multiprocessors = 0;
    if (api_.cuDeviceGetAttribute(&multiprocessors, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT,
                                  device) == CUDA_SUCCESS) {
      entry.multiprocessorCount = multiprocessors;
    }
    devices.push_back(std::move(entry));
  }
  return devices;
}

std::string uuidString(const CUuuid& uuid) {
  std::string text;
  text.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += fmt::format("{:02x}", static_cast<unsigned char>(uuid.bytes[i]));
  }
  return text;
}

}  // namespace deviceops::devices::nvidia
