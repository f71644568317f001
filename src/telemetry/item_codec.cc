#include "telemetry/item_codec.h"

namespace deviceops::telemetry {
namespace {

using nlohmann::json;

template <class T>
json optional(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

template <class T>
std::optional<T> optionalAt(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return it->get<T>();
}

json encodeSample(const DeviceSample& s) {
  return {{"k", "sample"},
          {"node", s.node},
          {"device", s.deviceId},
          {"t", toMillis(s.time)},
          {"interval", s.intervalSeconds},
          {"temp", optional(s.temperatureCelsius)},
          {"util", optional(s.utilizationRatio)},
          {"memUtil", optional(s.memoryUtilizationRatio)},
          {"memUsed", optional(s.memoryUsedBytes)},
          {"memFree", optional(s.memoryFreeBytes)},
          {"memTotal", s.memoryTotalBytes},
          {"power", optional(s.powerWatts)},
          {"powerLimit", optional(s.powerLimitWatts)},
          {"clock", optional(s.clockMhz)},
          {"memClock", optional(s.memoryClockMhz)},
          {"throttled", s.throttled},
          {"throttleReasons", s.throttleReasons},
          {"ecc1", optional(s.eccSingleBitErrors)},
          {"ecc2", optional(s.eccDoubleBitErrors)},
          {"xid", optional(s.xidErrors)},
          {"health", s.health},
          {"reasons", s.healthReasons},
          {"stale", s.stale},
          {"age", s.readingAgeSeconds},
          {"held", s.heldBytes},
          {"heldByKind", s.heldBytesByKind}};
}

DeviceSample decodeSample(const json& j) {
  DeviceSample s;
  s.node = j.at("node").get<std::string>();
  s.deviceId = j.at("device").get<std::string>();
  s.time = fromMillis(j.at("t").get<std::int64_t>());
  s.intervalSeconds = j.at("interval").get<double>();
  s.temperatureCelsius = optionalAt<double>(j, "temp");
  s.utilizationRatio = optionalAt<double>(j, "util");
  s.memoryUtilizationRatio = optionalAt<double>(j, "memUtil");
  s.memoryUsedBytes = optionalAt<std::uint64_t>(j, "memUsed");
  s.memoryFreeBytes = optionalAt<std::uint64_t>(j, "memFree");
  s.memoryTotalBytes = j.at("memTotal").get<std::uint64_t>();
  s.powerWatts = optionalAt<double>(j, "power");
  s.powerLimitWatts = optionalAt<double>(j, "powerLimit");
  s.clockMhz = optionalAt<double>(j, "clock");
  s.memoryClockMhz = optionalAt<double>(j, "memClock");
  s.throttled = j.at("throttled").get<bool>();
  s.throttleReasons = j.at("throttleReasons").get<std::vector<std::string>>();
  s.eccSingleBitErrors = optionalAt<std::uint64_t>(j, "ecc1");
  s.eccDoubleBitErrors = optionalAt<std::uint64_t>(j, "ecc2");
  s.xidErrors = optionalAt<std::uint64_t>(j, "xid");
  s.health = j.at("health").get<std::string>();
  s.healthReasons = j.at("reasons");
  s.stale = j.at("stale").get<bool>();
  s.readingAgeSeconds = j.at("age").get<double>();
  s.heldBytes = j.at("held").get<std::uint64_t>();
  s.heldBytesByKind = j.at("heldByKind").get<std::map<std::string, std::uint64_t>>();
  return s;
}

}  // namespace

json encodeItem(const BufferedItem& item) {
  if (const auto* node = std::get_if<NodeInfo>(&item)) {
    return {{"k", "node"},
            {"node", node->node},
            {"hostname", node->hostname},
            {"version", node->version},
            {"interval", node->sampleIntervalSeconds},
            {"t", toMillis(node->seenAt)}};
  }
  if (const auto* d = std::get_if<DeviceInfo>(&item)) {
    return {{"k", "device"},       {"node", d->node},         {"device", d->deviceId},
            {"name", d->name},     {"vendor", d->vendor},     {"type", d->type},
            {"uuid", d->uuid},     {"pci", d->pciBusId},      {"memTotal", d->memoryTotalBytes},
            {"sim", d->simulated}, {"t", toMillis(d->seenAt)}};
  }
  if (const auto* s = std::get_if<DeviceSample>(&item)) return encodeSample(*s);
  const auto& e = std::get<StoredEvent>(item);
  return {{"k", "event"},
          {"node", e.node},
          {"t", toMillis(e.event.time)},
          {"type", e.event.type},
          {"device", e.event.deviceId},
          {"severity", e.event.severity},
          {"message", e.event.message},
          {"details", e.event.details}};
}

std::optional<BufferedItem> decodeItem(const json& j) {
  try {
    const std::string kind = j.at("k").get<std::string>();
    if (kind == "sample") return BufferedItem(decodeSample(j));
    if (kind == "node") {
      NodeInfo node;
      node.node = j.at("node").get<std::string>();
      node.hostname = j.at("hostname").get<std::string>();
      node.version = j.at("version").get<std::string>();
      node.sampleIntervalSeconds = j.at("interval").get<double>();
      node.seenAt = fromMillis(j.at("t").get<std::int64_t>());
      return BufferedItem(node);
    }
    if (kind == "device") {
      DeviceInfo d;
      d.node = j.at("node").get<std::string>();
      d.deviceId = j.at("device").get<std::string>();
      d.name = j.at("name").get<std::string>();
      d.vendor = j.at("vendor").get<std::string>();
      d.type = j.at("type").get<std::string>();
      d.uuid = j.at("uuid").get<std::string>();
      d.pciBusId = j.at("pci").get<std::string>();
      d.memoryTotalBytes = j.at("memTotal").get<std::uint64_t>();
      d.simulated = j.at("sim").get<bool>();
      d.seenAt = fromMillis(j.at("t").get<std::int64_t>());
      return BufferedItem(d);
    }
    if (kind == "event") {
      StoredEvent e;
      e.node = j.at("node").get<std::string>();
      e.event.time = fromMillis(j.at("t").get<std::int64_t>());
      e.event.type = j.at("type").get<std::string>();
      e.event.deviceId = j.at("device").get<std::string>();
      e.event.severity = j.at("severity").get<std::string>();
      e.event.message = j.at("message").get<std::string>();
      e.event.details = j.at("details");
      return BufferedItem(e);
    }
  } catch (const json::exception&) {
  }
  return std::nullopt;
}

}  // namespace deviceops::telemetry
