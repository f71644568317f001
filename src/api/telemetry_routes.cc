// The device-monitor integration: GET /api/integration/health[/{deviceId}],
// /api/integration/statistics/{deviceId}, /api/integration/availability and GET /api/events.
// Health, statistics and events read the telemetry store (worker pool); availability reads the
// inventory snapshot and the memory ledger.
#include <fmt/format.h>

#include <charconv>

#include "api/app.h"
#include "api/telemetry_codec.h"
#include "common/byte_size.h"
#include "http/errors.h"

namespace deviceops::api {
namespace {

using nlohmann::json;
using telemetry::SystemTime;

http::Response telemetryDisabled() {
  return http::errorResponse(ErrorCode::kUnavailable,
                             "telemetry is disabled on this node ([telemetry] enabled = false)");
}

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
std::optional<std::string> resolveDevice(AppContext& context, const std::string& key) {
  auto snapshot = context.inventory.snapshot();
  if (const devices::DeviceView* device = snapshot->find(key)) return device->id;
  if (context.telemetry != nullptr) {
    auto known = context.telemetry->store().devices(context.telemetry->node());
    if (known.ok()) {
      for (const auto& device : *known) {
        if (device.deviceId == key || device.uuid == key || device.pciBusId == key) {
          return device.deviceId;
        }
      }
    }
  }
  return std::nullopt;
}

http::Response unknownDevice(const std::string& key) {
  return http::errorResponse(ErrorCode::kNotFound,
                             fmt::format("no device with id '{}'; GET /api/device lists them", key),
                             {{"deviceId", key}});
}

// Latest samples: from the store (the monitor data); while the store cannot be read, from the
// sampler's memory, marked as such.
json healthOf(AppContext& context, const std::optional<std::string>& only) {
  telemetry::TelemetryService& service = *context.telemetry;
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
  auto snapshot = context.inventory.snapshot();
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

Result<telemetry::EventQuery> decodeEventQuery(const http::Request& request, AppContext& context) {
  telemetry::EventQuery query;
  query.node = context.telemetry->node();
  if (auto node = request.queryParam("node")) {
    if (*node == "*") {
      query.node.reset();
    } else {
      query.node = *node;
    }
  }
  if (auto device = request.queryParam("deviceId")) {
    query.deviceId = resolveDevice(context, *device).value_or(*device);
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

}  // namespace

void registerTelemetryRoutes(http::Router& router, AppContext& context) {
  router.add("GET", "/api/integration/health", [&context](http::Request&) {
    if (context.telemetry == nullptr) return telemetryDisabled();
    return http::jsonResponse(200, healthOf(context, std::nullopt));
  });

  router.add("GET", "/api/integration/health/{deviceId}", [&context](http::Request& request) {
    if (context.telemetry == nullptr) return telemetryDisabled();
    const std::string& key = request.pathParam("deviceId");
    auto id = resolveDevice(context, key);
    if (!id) return unknownDevice(key);
    json health = healthOf(context, *id);
    if (health["devices"].empty()) {
      return http::errorResponse(ErrorCode::kNotFound,
                                 fmt::format("device '{}' has no sample yet", *id),
                                 {{"deviceId", *id}});
    }
    json device = health["devices"][0];
    device["source"] = health["source"];
    return http::jsonResponse(200, device);
  });

  router.add("GET", "/api/integration/statistics/{deviceId}", [&context](http::Request& request) {
    if (context.telemetry == nullptr) return telemetryDisabled();
    const std::string& key = request.pathParam("deviceId");
    Result<Window> window = decodeWindow(request);
    if (!window.ok()) return http::errorResponse(window.error());
    auto id = resolveDevice(context, key);
    if (!id) return unknownDevice(key);
    auto statistics = context.telemetry->store().statistics(
        context.telemetry->node(), *id, window->from, window->to, window->resolution);
    if (!statistics.ok()) return http::errorResponse(statistics.error());
    return http::jsonResponse(200, encodeStatistics(*statistics));
  });

  router.add("GET", "/api/integration/availability", [&context](http::Request& request) {
    Result<telemetry::AvailabilityRequirements> requirements = decodeRequirements(request);
    if (!requirements.ok()) return http::errorResponse(requirements.error());
    auto snapshot = context.inventory.snapshot();
    json devices = json::array();
    std::size_t available = 0;
    for (const auto& device :
         telemetry::evaluateAvailability(*snapshot, context.memory, *requirements)) {
      available += device.available ? 1 : 0;
      devices.push_back(encodeAvailability(device));
    }
    json asked = json::object();
    if (requirements->minFreeBytes) asked["minFreeBytes"] = *requirements->minFreeBytes;
    if (requirements->type) asked["type"] = *requirements->type;
    if (requirements->maxUtilization) asked["maxUtilization"] = *requirements->maxUtilization;
    return http::jsonResponse(
        200, {{"node", context.telemetry != nullptr ? context.telemetry->node() : std::string()},
              {"requirements", asked},
              {"availableCount", available},
              {"devices", devices}});
  });

  router.add("GET", "/api/events", [&context](http::Request& request) {
    if (context.telemetry == nullptr) return telemetryDisabled();
    Result<telemetry::EventQuery> query = decodeEventQuery(request, context);
    if (!query.ok()) return http::errorResponse(query.error());
    auto events = context.telemetry->store().events(*query);
    if (!events.ok()) return http::errorResponse(events.error());
    json list = json::array();
    for (const auto& event : *events) list.push_back(encodeStoredEvent(event));
    return http::jsonResponse(200, {{"events", list}, {"count", list.size()}});
  });
}

}  // namespace deviceops::api
