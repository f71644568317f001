// The host CPU(s) as one device: model, sockets/cores/threads, frequency, RAM, temperature,
// utilization from /proc/stat deltas, NUMA nodes. Reads procfs and sysfs under configurable
// roots so tests can point them at recorded trees.
#pragma once

#include <filesystem>
#include <memory>

#include "devices/device.h"

namespace deviceops::devices {

struct CpuBackendOptions {
  std::filesystem::path procRoot = "/proc";
  std::filesystem::path sysRoot = "/sys";
};

std::unique_ptr<Backend> makeCpuBackend(CpuBackendOptions options = {});

}  // namespace deviceops::devices
