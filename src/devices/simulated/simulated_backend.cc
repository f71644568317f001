#include "devices/simulated/simulated_backend.h"

#include <fmt/format.h>

#include "devices/simulated/simulated_fleet.h"

namespace deviceops::devices {
namespace {

// The names of the faults a device carries, for its properties.
nlohmann::json faultNames(const SimulatedFaults& faults) {
  nlohmann::json names = nlohmann::json::array();
  if (faults.stuckBit) names.push_back("stuckBit");
  if (faults.flippingBit) names.push_back("flippingBit");
  if (faults.bandwidthCapBytesPerSecond) names.push_back("bandwidthCap");
  if (faults.eccDoubleBitErrors > 0) names.push_back("eccDoubleBitErrors");
  if (faults.hangAfterPolls) names.push_back("hangAfterPolls");
  if (faults.vanishAfterTransfers) names.push_back("vanishAfterTransfers");
  return names;
}

class SimulatedBackend final : public Backend {
 public:
  explicit SimulatedBackend(std::shared_ptr<SimulatedFleet> fleet) : fleet_(std::move(fleet)) {}
  ~SimulatedBackend() override { fleet_->interruptPolls(); }

  std::string_view name() const override { return "simulated"; }

  Status open() override {
    if (fleet_->size() == 0) {
      return makeError(ErrorCode::kUnavailable, "no simulated devices configured");
    }
    return Status::success();
  }

  Result<std::vector<DeviceRecord>> poll() override {
    if (!fleet_->enterPoll()) {
      return makeError(ErrorCode::kUnavailable,
                       "the simulated backend was interrupted (a hangAfterPolls fault, or "
                       "shutdown)");
    }
    std::vector<DeviceRecord> records;
    records.reserve(fleet_->size());
    for (std::size_t index = 0; index < fleet_->size(); ++index) {
      if (fleet_->vanished(index)) continue;  // gone: the inventory reports it lost
      records.push_back(record(index));
    }
    return records;
  }

  void interrupt() override { fleet_->interruptPolls(); }

 private:
  DeviceRecord record(std::size_t index) const {
    const SimulatedDeviceSpec& spec = fleet_->spec(index);
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
    record.memory.peakBandwidthBytesPerSecond = spec.peakBandwidthBytesPerSecond;
    record.readings.temperatureCelsius = spec.temperatureCelsius;
    record.readings.slowdownTemperatureCelsius = spec.slowdownTemperatureCelsius;
    record.readings.utilizationRatio = spec.utilizationRatio;
    if (spec.faults.eccDoubleBitErrors > 0) {
      record.readings.eccVolatileDoubleBit = spec.faults.eccDoubleBitErrors;
    }
    record.properties = {{"index", index},
                         {"note", "simulated device for tests; no hardware"},
                         {"backingBytes", spec.backingBytes}};
    if (spec.faults.any()) record.properties["faults"] = faultNames(spec.faults);
    return record;
  }

  const std::shared_ptr<SimulatedFleet> fleet_;
};

}  // namespace

std::unique_ptr<Backend> makeSimulatedBackend(SimulatedBackendOptions options) {
  return makeSimulatedBackend(std::make_shared<SimulatedFleet>(std::move(options)));
}

std::unique_ptr<Backend> makeSimulatedBackend(std::shared_ptr<SimulatedFleet> fleet) {
  return std::make_unique<SimulatedBackend>(std::move(fleet));
}

}  // namespace deviceops::devices
