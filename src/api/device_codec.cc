#include "api/device_codec.h"

#include "common/time_format.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

template <class T>
json optional(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

json orNull(const std::string& text) { return text.empty() ? json(nullptr) : json(text); }

std::string encodeList(const devices::InventorySnapshot& snapshot,
                       std::optional<devices::DeviceType> type) {
  json list = json::array();
  for (const devices::DeviceView& device : snapshot.devices) {
    if (!type || device.record.type == *type) list.push_back(encodeDevice(device));
  }
  json backends = json::array();
  for (const devices::BackendStatus& backend : snapshot.backends) {
    backends.push_back(encodeBackend(backend));
  }
  const std::size_t count = list.size();
  return json{{"devices", std::move(list)},
              {"count", count},
              {"backends", std::move(backends)},
              {"updatedAt", formatIso8601(snapshot.updatedAt)}}
      .dump();
}

}  // namespace

json encodeReadings(const devices::Readings& r) {
  return {
      {"temperatureCelsius", optional(r.temperatureCelsius)},
      {"slowdownTemperatureCelsius", optional(r.slowdownTemperatureCelsius)},
      {"shutdownTemperatureCelsius", optional(r.shutdownTemperatureCelsius)},
      {"utilizationRatio", optional(r.utilizationRatio)},
      {"memoryUtilizationRatio", optional(r.memoryUtilizationRatio)},
      {"powerWatts", optional(r.powerWatts)},
      {"powerLimitWatts", optional(r.powerLimitWatts)},
      {"clockMhz", optional(r.clockMhz)},
      {"clockMaxMhz", optional(r.clockMaxMhz)},
      {"memoryClockMhz", optional(r.memoryClockMhz)},
      {"memoryClockMaxMhz", optional(r.memoryClockMaxMhz)},
      {"throttleReasons", r.throttleReasons},
      {"thermalThrottling", r.thermalThrottling},
      {"powerThrottling", r.powerThrottling},
      {"eccVolatileSingleBit", optional(r.eccVolatileSingleBit)},
      {"eccVolatileDoubleBit", optional(r.eccVolatileDoubleBit)},
      {"eccAggregateSingleBit", optional(r.eccAggregateSingleBit)},
      {"eccAggregateDoubleBit", optional(r.eccAggregateDoubleBit)},
      {"pcieLinkGeneration", optional(r.pcieLinkGeneration)},
      {"pcieLinkWidth", optional(r.pcieLinkWidth)},
      {"pcieLinkGenerationMax", optional(r.pcieLinkGenerationMax)},
      {"pcieLinkWidthMax", optional(r.pcieLinkWidthMax)},
  };
}

json encodeHealth(const devices::Health& health, devices::SystemTime checkedAt) {
  json reasons = json::array();
  for (const devices::HealthReason& reason : health.reasons) {
    reasons.push_back({{"code", reason.code},
                       {"severity", devices::healthStatusName(reason.severity)},
                       {"message", reason.message}});
  }
  return {{"status", devices::healthStatusName(health.status)},
          {"reasons", std::move(reasons)},
          {"checkedAt", formatIso8601(checkedAt)}};
}

json encodeDevice(const devices::DeviceView& device) {
  const devices::DeviceRecord& record = device.record;
  return {
      {"id", device.id},
      {"type", devices::deviceTypeName(record.type)},
      {"name", record.name},
      {"vendor", record.vendor},
      {"backends", device.backends},
      {"simulated", record.simulated},
      {"uuid", orNull(record.uuid)},
      {"pciBusId", orNull(record.pciBusId)},
      {"memory",
       {{"totalBytes", record.memory.totalBytes},
        {"usedBytes", optional(record.memory.usedBytes)},
        {"freeBytes", optional(record.memory.freeBytes)}}},
      {"readings", encodeReadings(record.readings)},
      {"health", encodeHealth(device.health, device.updatedAt)},
      {"properties", record.properties},
      {"updatedAt", formatIso8601(device.updatedAt)},
  };
}

json encodeBackend(const devices::BackendStatus& backend) {
  return {{"name", backend.name},
          {"available", backend.available},
          {"reason", backend.reason},
          {"deviceCount", backend.deviceCount},
          {"lastPollMilliseconds", backend.lastPollMilliseconds}};
}

std::shared_ptr<const EncodedInventory> DeviceCatalog::current() {
  std::shared_ptr<const devices::InventorySnapshot> snapshot = inventory_.snapshot();
  std::lock_guard lock(mutex_);
  if (cached_ && cached_->version == snapshot->version) return cached_;
  auto encoded = std::make_shared<EncodedInventory>();
  encoded->version = snapshot->version;
  encoded->all = encodeList(*snapshot, std::nullopt);
  encoded->cpus = encodeList(*snapshot, devices::DeviceType::kCpu);
  encoded->gpus = encodeList(*snapshot, devices::DeviceType::kGpu);
  for (const devices::DeviceView& device : snapshot->devices) {
    encoded->devices[device.id] = encodeDevice(device).dump();
    json health = encodeHealth(device.health, device.updatedAt);
    health["deviceId"] = device.id;
    health["readings"] = encodeReadings(device.record.readings);
    encoded->health[device.id] = health.dump();
  }
  cached_ = std::move(encoded);
  return cached_;
}

}  // namespace deviceops::api
