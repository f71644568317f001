// GET /api/device, GET /api/device/{deviceId}, GET /api/device/{deviceId}/health.
// All served inline from the cached encoding: a request never waits on a driver call.
#include <fmt/format.h>

#include "api/app.h"
#include "http/errors.h"

namespace deviceops::api {
namespace {

http::Response cachedJson(const std::string& body) {
  http::Response response;
  response.body = body;
  return response;
}

http::Response unknownDevice(const std::string& id) {
  return http::errorResponse(ErrorCode::kNotFound,
                             fmt::format("no device with id '{}'; GET /api/device lists them", id),
                             {{"deviceId", id}});
}

// Resolves an id, UUID or PCI address to the device's id.
std::optional<std::string> resolve(AppContext& context, const std::string& key) {
  auto snapshot = context.inventory.snapshot();
  const devices::DeviceView* device = snapshot->find(key);
  if (device == nullptr) return std::nullopt;
  return device->id;
}

}  // namespace

void registerDeviceRoutes(http::Router& router, AppContext& context) {
  router
      .add("GET", "/api/device",
           [&context](http::Request& request) {
             auto encoded = context.catalog.current();
             const auto type = request.queryParam("type");
             if (!type) return cachedJson(encoded->all);
             if (*type == "gpu") return cachedJson(encoded->gpus);
             if (*type == "cpu") return cachedJson(encoded->cpus);
             return http::errorResponse(ErrorCode::kInvalidArgument,
                                        fmt::format("type '{}' is not 'gpu' or 'cpu'", *type),
                                        {{"parameter", "type"}});
           })
      .execution = http::Execution::kInline;

  router
      .add("GET", "/api/device/{deviceId}",
           [&context](http::Request& request) {
             const std::string& key = request.pathParam("deviceId");
             auto id = resolve(context, key);
             if (!id) return unknownDevice(key);
             auto encoded = context.catalog.current();
             auto it = encoded->devices.find(*id);
             if (it == encoded->devices.end()) return unknownDevice(key);
             return cachedJson(it->second);
           })
      .execution = http::Execution::kInline;

  router
      .add("GET", "/api/device/{deviceId}/health",
           [&context](http::Request& request) {
             const std::string& key = request.pathParam("deviceId");
             auto id = resolve(context, key);
             if (!id) return unknownDevice(key);
             auto encoded = context.catalog.current();
             auto it = encoded->health.find(*id);
             if (it == encoded->health.end()) return unknownDevice(key);
             return cachedJson(it->second);
           })
      .execution = http::Execution::kInline;
}

}  // namespace deviceops::api
