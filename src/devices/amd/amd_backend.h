// AMD GPUs through the amdgpu driver's sysfs and hwmon files (no ROCm needed).
#pragma once

#include <filesystem>
#include <memory>

#include "devices/device.h"

namespace deviceops::devices {

struct AmdBackendOptions {
  std::filesystem::path sysRoot = "/sys";  // reads <sysRoot>/class/drm/card*/device/...
};

std::unique_ptr<Backend> makeAmdBackend(AmdBackendOptions options = {});

}  // namespace deviceops::devices
