// The device-monitor integration: GET /api/integration/health[/{deviceId}],
// /api/integration/statistics/{deviceId} and GET /api/events read the telemetry store (worker
// pool); GET /api/integration/availability reads the inventory snapshot and the memory ledger
// and works without telemetry. The telemetry group also adds its part of /ready and /metrics.
#include <fmt/format.h>

#include <charconv>

#include "api/route_table.h"
#include "api/routes.h"
#include "api/telemetry_codec.h"
#include "common/byte_size.h"

namespace deviceops::api {
namespace {

using nlohmann::json;
using telemetry::SystemTime;

constexpr const char* kDisabled =
    "telemetry is disabled on this node ([telemetry] enabled = false)";

Error badParameter(const std::string& name, const Error& error) {
  return makeError(ErrorCode::kInvalidArgument, name + ": " + error.message, {{"parameter", name}});
}

// A sample is stale when its reading was stale, or when no sample came for 3 intervals.
bool isStale(const telemetry::DeviceSample& sample, const telemetry::TelemetryService& service,
             SystemTime now) {
  const auto limit = std::max<std::chrono::milliseconds>(
      3 * service.options().interval, service.options().interval + std::chrono::seconds(2));
  return sample.stale || now - sample.time > limit;
}

// Resolves an id, UUID or PCI bus id against the inventory, then the store's devices.
std::optional<std::string> resolveDevice(const devices::Inventory& inventory,
                                         telemetry::TelemetryService& service,
                                         const std::string& key) {
  auto snapshot = inventory.snapshot();
  if (const devices::DeviceView* device = snapshot->find(key)) return device->id;
  auto known = service.store().devices(service.node());
  if (known.ok()) {
    for (const auto& device : *known) {
      if (device.deviceId == key || device.uuid == key || device.pciBusId == key) {
        return device.deviceId;
      }
    }
  }
  return std::nullopt;
}

Error unknownDevice(const std::string& key) {
  return makeError(ErrorCode::kNotFound,
                   fmt::format("no device with id '{}'; GET /api/device lists them", key),
                   {{"deviceId", key}});
}

// Latest samples: from the store (the monitor data); while the store cannot be read, from the
// sampler's memory, marked as such.
json healthOf(const devices::Inventory& inventory, telemetry::TelemetryService& service,
              const std::optional<std::string>& only) {
  const SystemTime now = std::chrono::system_clock::now();
  auto fromStore = service.store().latestSamples(service.node());
  std::vector<telemetry::DeviceSample> samples;
  std::string source = "store";
  json storeError = nullptr;
  if (fromStore.ok()) {
    samples = std::move(fromStore.value());
  } else {
    source = "memory";
    storeError = fromStore.error().message;
    samples = service.sampler().latest();
  }
  auto snapshot = inventory.snapshot();
  json devices = json::array();
  for (const auto& sample : samples) {
    if (only && sample.deviceId != *only) continue;
    std::string name, vendor;
    if (const devices::DeviceView* view = snapshot->find(sample.deviceId)) {
      name = view->record.name;
      vendor = view->record.vendor;
    }
    devices.push_back(encodeLatestSample(sample, name, vendor, now, isStale(sample, service, now)));
  }
  return {{"node", service.node()},
          {"source", source},
          {"storeError", storeError},
          {"intervalSeconds", std::chrono::duration<double>(service.options().interval).count()},
          {"devices", devices}};
}

struct Window {
  SystemTime from;
  SystemTime to;
  telemetry::Resolution resolution = telemetry::Resolution::kAuto;
};

Result<Window> decodeWindow(const http::Request& request) {
  Window window;
  const SystemTime now = std::chrono::system_clock::now();
  const auto windowParam = request.queryParam("window");
  const auto fromParam = request.queryParam("from");
  const auto toParam = request.queryParam("to");
  if (windowParam && (fromParam || toParam)) {
    return makeError(ErrorCode::kInvalidArgument, "give either window or from/to, not both",
                     {{"parameter", "window"}});
  }
  if (toParam && !fromParam) {
    return makeError(ErrorCode::kInvalidArgument, "to needs from", {{"parameter", "from"}});
  }
  if (fromParam) {
    auto from = parseRfc3339(*fromParam);
    if (!from.ok()) return badParameter("from", from.error());
    window.from = *from;
    window.to = now;
    if (toParam) {
      auto to = parseRfc3339(*toParam);
      if (!to.ok()) return badParameter("to", to.error());
      window.to = *to;
    }
    if (window.to <= window.from) {
      return makeError(ErrorCode::kInvalidArgument, "to must be after from", {{"parameter", "to"}});
    }
  } else {
    auto length = parseDurationText(windowParam.value_or("1h"));
    if (!length.ok()) return badParameter("window", length.error());
    window.to = now;
    window.from = now - *length;
  }
  if (auto resolution = request.queryParam("resolution")) {
    const std::map<std::string, telemetry::Resolution> kResolutions = {
        {"auto", telemetry::Resolution::kAuto},
        {"raw", telemetry::Resolution::kRaw},
        {"1m", telemetry::Resolution::kMinute},
        {"1h", telemetry::Resolution::kHour}};
    auto found = kResolutions.find(*resolution);
    if (found == kResolutions.end()) {
      return makeError(ErrorCode::kInvalidArgument, "resolution must be auto, raw, 1m or 1h",
                       {{"parameter", "resolution"}});
    }
    window.resolution = found->second;
  }
  return window;
}

Result<telemetry::AvailabilityRequirements> decodeRequirements(const http::Request& request) {
  telemetry::AvailabilityRequirements requirements;
  if (auto minFree = request.queryParam("minFreeBytes")) {
    auto bytes = parseByteSize(*minFree);
    if (!bytes.ok()) return badParameter("minFreeBytes", bytes.error());
    requirements.minFreeBytes = *bytes;
  }
  if (auto type = request.queryParam("type")) {
    if (*type != "gpu" && *type != "cpu") {
      return makeError(ErrorCode::kInvalidArgument, "type must be gpu or cpu",
                       {{"parameter", "type"}});
    }
    requirements.type = *type;
  }
  if (auto maxUtilization = request.queryParam("maxUtilization")) {
    double value = -1;
    auto [end, error] = std::from_chars(maxUtilization->data(),
                                        maxUtilization->data() + maxUtilization->size(), value);
    if (error != std::errc() || end != maxUtilization->data() + maxUtilization->size() ||
        !(value >= 0 && value <= 1)) {
      return makeError(ErrorCode::kInvalidArgument, "maxUtilization must be a number from 0 to 1",
                       {{"parameter", "maxUtilization"}});
    }
    requirements.maxUtilization = value;
  }
  return requirements;
}

Result<telemetry::EventQuery> decodeEventQuery(const http::Request& request,
                                               const devices::Inventory& inventory,
                                               telemetry::TelemetryService& service) {
  telemetry::EventQuery query;
  query.node = service.node();
  if (auto node = request.queryParam("node")) {
    if (*node == "*") {
      query.node.reset();
    } else {
      query.node = *node;
    }
  }
  if (auto device = request.queryParam("deviceId")) {
    query.deviceId = resolveDevice(inventory, service, *device).value_or(*device);
  }
  if (auto since = request.queryParam("since")) {
    auto time = parseSince(*since, std::chrono::system_clock::now());
    if (!time.ok()) return badParameter("since", time.error());
    query.since = *time;
  }
  if (auto type = request.queryParam("type")) {
    if (type->empty()) {
      return makeError(ErrorCode::kInvalidArgument, "type must not be empty",
                       {{"parameter", "type"}});
    }
    query.type = *type;
  }
  if (auto limit = request.queryParam("limit")) {
    std::size_t value = 0;
    auto [end, error] = std::from_chars(limit->data(), limit->data() + limit->size(), value);
    if (error != std::errc() || end != limit->data() + limit->size() || value < 1 ||
        value > 10000) {
      return makeError(ErrorCode::kInvalidArgument, "limit must be an integer from 1 to 10000",
                       {{"parameter", "limit"}});
    }
    query.limit = value;
  }
  return query;
}

ReadinessCheck telemetryReadiness(telemetry::TelemetryService& service) {
  // "degraded" while writes fail: samples are buffered and the API still answers, so the node
  // stays ready (200 with status "degraded").
  const telemetry::StoreHealth store = service.storeHealth();
  json detail = {{"status", store.up ? "ok" : "degraded"},
                 {"store", store.kind},
                 {"bufferedItems", store.counters.bufferedItems},
                 {"spilledItems", store.counters.spilledItems},
                 {"lostSamples", store.counters.samplesLost},
                 {"lostEvents", store.counters.eventsLost}};
  if (!store.up) detail["error"] = store.lastError;
  return {!store.up, std::move(detail)};
}

class TelemetryRoutes {
 public:
  TelemetryRoutes(const devices::Inventory& inventory, telemetry::TelemetryService& service)
      : inventory_(inventory), service_(service) {}

  Result<http::Reply> health(http::Request&) {
    return http::jsonReply(200, healthOf(inventory_, service_, std::nullopt));
  }

  Result<http::Reply> deviceHealth(http::Request& request) {
    const std::string& key = request.pathParam("deviceId");
    auto id = resolveDevice(inventory_, service_, key);
    if (!id) return unknownDevice(key);
    json health = healthOf(inventory_, service_, *id);
    if (health["devices"].empty()) {
      return makeError(ErrorCode::kNotFound, fmt::format("device '{}' has no sample yet", *id),
                       {{"deviceId", *id}});
    }
    json device = health["devices"][0];
    device["source"] = health["source"];
    return http::jsonReply(200, device);
  }

  Result<http::Reply> statistics(http::Request& request) {
    const std::string& key = request.pathParam("deviceId");
    ASSIGN_OR_RETURN(const Window window, decodeWindow(request));
    auto id = resolveDevice(inventory_, service_, key);
    if (!id) return unknownDevice(key);
    auto statistics = service_.store().statistics(service_.node(), *id, window.from, window.to,
                                                  window.resolution);
    if (!statistics.ok()) return statistics.error();
    json body = encodeStatistics(*statistics);
    const auto series = request.queryParam("series");
    if (series && *series != "0" && *series != "false") {
      if (*series != "1" && *series != "true") {
        return makeError(ErrorCode::kInvalidArgument, "series must be 1, true, 0 or false",
                         {{"parameter", "series"}});
      }
      ASSIGN_OR_RETURN(body["series"], seriesOf(*id, *statistics));
    }
    return http::jsonReply(200, body);
  }

  // The chart points of the window the statistics covered, at the resolution they used.
  Result<json> seriesOf(const std::string& deviceId, const telemetry::Statistics& statistics) {
    if (statistics.resolution == telemetry::Resolution::kRaw) {
      ASSIGN_OR_RETURN(auto samples, service_.store().samples(service_.node(), deviceId,
                                                              statistics.from, statistics.to));
      return encodeSeries(samples);
    }
    ASSIGN_OR_RETURN(auto rollups,
                     service_.store().rollups(service_.node(), deviceId, statistics.resolution,
                                              statistics.from, statistics.to));
    return encodeSeries(rollups, statistics.resolution);
  }

  Result<http::Reply> events(http::Request& request) {
    ASSIGN_OR_RETURN(const telemetry::EventQuery query,
                     decodeEventQuery(request, inventory_, service_));
    return encoded(service_.store().events(query), [](const auto& events) {
      json list = json::array();
      for (const auto& event : events) list.push_back(encodeStoredEvent(event));
      return json{{"events", list}, {"count", list.size()}};
    });
  }

 private:
  const devices::Inventory& inventory_;
  telemetry::TelemetryService& service_;
};

constexpr RouteSpec<TelemetryRoutes> kTelemetryRoutes[] = {
    {"GET", "/api/integration/health", &TelemetryRoutes::health},
    {"GET", "/api/integration/health/{deviceId}", &TelemetryRoutes::deviceHealth},
    {"GET", "/api/integration/statistics/{deviceId}", &TelemetryRoutes::statistics},
    {"GET", "/api/events", &TelemetryRoutes::events},
};

// Works without telemetry: the inventory and the memory ledger.
class AvailabilityRoutes {
 public:
  explicit AvailabilityRoutes(AppContext& context) : context_(context) {}

  Result<http::Reply> availability(http::Request& request) {
    ASSIGN_OR_RETURN(const telemetry::AvailabilityRequirements requirements,
                     decodeRequirements(request));
    auto snapshot = context_.inventory.snapshot();
    json devices = json::array();
    std::size_t available = 0;
    for (const auto& device :
         telemetry::evaluateAvailability(*snapshot, &context_.memory, requirements)) {
      available += device.available ? 1 : 0;
      devices.push_back(encodeAvailability(device));
    }
    json asked = json::object();
    if (requirements.minFreeBytes) asked["minFreeBytes"] = *requirements.minFreeBytes;
    if (requirements.type) asked["type"] = *requirements.type;
    if (requirements.maxUtilization) asked["maxUtilization"] = *requirements.maxUtilization;
    return http::jsonReply(200, {{"node", context_.node},
                                 {"requirements", asked},
                                 {"availableCount", available},
                                 {"devices", devices}});
  }

 private:
  AppContext& context_;
};

constexpr RouteSpec<AvailabilityRoutes> kAvailabilityRoutes[] = {
    {"GET", "/api/integration/availability", &AvailabilityRoutes::availability},
};

}  // namespace

void registerTelemetryRoutes(http::Router& router, AppContext& context,
                             telemetry::TelemetryService& telemetry) {
  addRoutes<TelemetryRoutes>(router, context.config, http::ErrorShape::kApi,
                             std::make_shared<TelemetryRoutes>(context.inventory, telemetry),
                             kTelemetryRoutes);
  context.node = telemetry.node();
  context.readinessChecks.emplace_back("telemetry",
                                       [&telemetry] { return telemetryReadiness(telemetry); });
  context.metricsWriters.insert(context.metricsWriters.begin(),
                                [&telemetry](std::string& out) { telemetry.writeMetrics(out); });
}

void registerTelemetryUnavailable(http::Router& router, AppContext& context) {
  addUnavailableRoutes<TelemetryRoutes>(router, context.config, http::ErrorShape::kApi,
                                        kTelemetryRoutes, kDisabled);
  context.readinessChecks.emplace_back("telemetry", [] {
    return ReadinessCheck{false, json{{"status", "disabled"}}};
  });
}

void registerAvailabilityRoutes(http::Router& router, AppContext& context) {
  addRoutes<AvailabilityRoutes>(router, context.config, http::ErrorShape::kApi,
                                std::make_shared<AvailabilityRoutes>(context), kAvailabilityRoutes);
}

}  // namespace deviceops::api
