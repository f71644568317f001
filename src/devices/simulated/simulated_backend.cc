#include "devices/simulated/simulated_backend.h"

#include <fmt/format.h>

namespace deviceops::devices {
namespace {

class SimulatedBackend final : public Backend {
 public:
  explicit SimulatedBackend(SimulatedBackendOptions options) : options_(std::move(options)) {}

  std::string_view name() const override { return "simulated"; }

  Status open() override {
    if (options_.devices.empty()) {
      return makeError(ErrorCode::kUnavailable, "no simulated devices configured");
    }
    return Status::success();
  }

  Result<std::vector<DeviceRecord>> poll() override {
    std::vector<DeviceRecord> records;
    records.reserve(options_.devices.size());
    for (std::size_t index = 0; index < options_.devices.size(); ++index) {
      const SimulatedDeviceSpec& spec = options_.devices[index];
      DeviceRecord record;
      record.backend = "simulated";
      record.localKey = std::to_string(index);
      record.type = DeviceType::kGpu;
      record.name = spec.name;
      record.vendor = spec.vendor;
      record.simulated = true;
      record.memory.totalBytes = spec.memoryBytes;
      record.memory.usedBytes = spec.memoryUsedBytes;
      record.memory.freeBytes =
          spec.memoryBytes > spec.memoryUsedBytes ? spec.memoryBytes - spec.memoryUsedBytes : 0;
      record.readings.temperatureCelsius = spec.temperatureCelsius;
      record.readings.slowdownTemperatureCelsius = spec.slowdownTemperatureCelsius;
      record.readings.utilizationRatio = spec.utilizationRatio;
      record.properties = {{"index", index}, {"note", "simulated device for tests; no hardware"}};
      records.push_back(std::move(record));
    }
    return records;
  }

 private:
  SimulatedBackendOptions options_;
};

}  // namespace

std::unique_ptr<Backend> makeSimulatedBackend(SimulatedBackendOptions options) {
  return std::make_unique<SimulatedBackend>(std::move(options));
}

}  // namespace deviceops::devices
