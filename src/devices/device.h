// The device model shared by every backend (cpu, vulkan, nvidia, amd, simulated).
//
// A backend reports DeviceRecords; the Inventory (inventory.h) merges records that describe the
// same physical device (same UUID or PCI address), assigns stable ids, evaluates health and
// serves cached snapshots. Units are in the field names: bytes, celsius, watts, MHz, ratio 0..1.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace deviceops::devices {

enum class DeviceType { kCpu, kGpu };
std::string_view deviceTypeName(DeviceType type);  // "cpu" | "gpu"

enum class HealthStatus { kHealthy, kDegraded, kCritical, kLost };
std::string_view healthStatusName(HealthStatus status);  // "healthy" | ... | "lost"

// Live readings. Every field is optional: absent means the backend cannot read it on this
// machine (never 0 as a stand-in).
struct Readings {
  std::optional<double> temperatureCelsius;
  std::optional<double> slowdownTemperatureCelsius;  // driver's thermal slowdown threshold
  std::optional<double> shutdownTemperatureCelsius;
  std::optional<double> utilizationRatio;        // 0..1, compute busy fraction
  std::optional<double> memoryUtilizationRatio;  // 0..1, memory controller busy fraction
  std::optional<double> powerWatts;
  std::optional<double> powerLimitWatts;
  std::optional<double> clockMhz;  // current graphics/core clock
  std::optional<double> clockMaxMhz;
  std::optional<double> memoryClockMhz;
  std::optional<double> memoryClockMaxMhz;
  std::vector<std::string> throttleReasons;  // active ones, e.g. "thermal", "powerCap"
  bool thermalThrottling = false;
  bool powerThrottling = false;
  std::optional<std::uint64_t> eccVolatileSingleBit;
  std::optional<std::uint64_t> eccVolatileDoubleBit;
  std::optional<std::uint64_t> eccAggregateSingleBit;
  std::optional<std::uint64_t> eccAggregateDoubleBit;
  std::optional<int> pcieLinkGeneration;
  std::optional<int> pcieLinkWidth;
  std::optional<int> pcieLinkGenerationMax;
  std::optional<int> pcieLinkWidthMax;
};

struct MemoryInfo {
  std::uint64_t totalBytes = 0;            // device-local memory (RAM for the CPU)
  std::optional<std::uint64_t> usedBytes;  // as the driver reports it
  std::optional<std::uint64_t> freeBytes;  // as the driver reports it
  // Theoretical peak memory bandwidth in bytes per second, when it can be known (nvidia: bus
  // width x max memory clock x 2; simulated: configured). Unset for the cpu and vulkan backends.
  std::optional<double> peakBandwidthBytesPerSecond;
};

struct DeviceRecord {
  // Filled by the backend:
  std::string backend;   // "cpu" | "vulkan" | "nvidia" | "amd" | "simulated"
  std::string localKey;  // unique within the backend and stable across restarts (e.g. "0")
  DeviceType type = DeviceType::kGpu;
  std::string name;      // marketing name, e.g. "NVIDIA H100 80GB HBM3"
  std::string vendor;    // "NVIDIA" | "AMD" | "Intel" | "Mesa" | CPU vendor string
  std::string uuid;      // lowercase "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", or empty
  std::string pciBusId;  // lowercase "0000:01:00.0", or empty
  bool simulated = false;
  MemoryInfo memory;
  Readings readings;
  // Backend-specific static and live facts, camelCase keys (driver version, compute
  // capability, queue families, NUMA nodes...). Shown under "properties.<backend>".
  nlohmann::json properties = nlohmann::json::object();
  // Set when the device errored mid-query: the device is reported with health "lost".
  std::optional<std::string> queryError;
};

// A backend's own state: whether its library loaded and why not.
struct BackendStatus {
  std::string name;
  bool available = false;
  std::string reason;  // why unavailable (e.g. "cannot load libnvidia-ml.so.1: ...")
  int deviceCount = 0;
  double lastPollMilliseconds = 0;
};

// A source of devices. Implementations: cpu/, vulkan/, nvidia/, amd/, simulated/.
// Thread-compatibility: the Inventory calls poll() from one refresher thread at a time; other
// methods are called before polling starts. A backend never throws.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // Loads libraries and enumerates. Error (usually kUnavailable) = backend absent, with reason.
  virtual Status open() = 0;
  // Current state of every device. Called periodically after a successful open().
  // A device that fails mid-query is returned with queryError set, not dropped.
  // An Error here means the whole backend stopped answering.
  virtual Result<std::vector<DeviceRecord>> poll() = 0;
  // Asks a poll() in progress on another thread to return soon; poll() may fail from then on.
  // Inventory::stop calls it before joining the polling thread. May be called concurrently
  // with poll(). Default: nothing (a real driver call cannot be cut short).
  virtual void interrupt() {}
};

}  // namespace deviceops::devices
