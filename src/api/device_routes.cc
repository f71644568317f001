// GET /api/device, GET /api/device/{deviceId}, GET /api/device/{deviceId}/health.
// All served inline from the cached encoding: a request never waits on a driver call.
#include <fmt/format.h>

#include "api/route_table.h"
#include "api/routes.h"

namespace deviceops::api {
namespace {

Error unknownDevice(const std::string& id) {
  return makeError(ErrorCode::kNotFound,
                   fmt::format("no device with id '{}'; GET /api/device lists them", id),
                   {{"deviceId", id}});
}

http::Reply cachedJson(const std::string& body) {
  return http::bytesReply(200, "application/json", body);
}

class DeviceRoutes {
 public:
  DeviceRoutes(devices::Inventory& inventory, DeviceCatalog& catalog)
      : inventory_(inventory), catalog_(catalog) {}

  Result<http::Reply> list(http::Request& request) {
    auto encoded = catalog_.current();
    const auto type = request.queryParam("type");
    if (!type) return cachedJson(encoded->all);
    if (*type == "gpu") return cachedJson(encoded->gpus);
    if (*type == "cpu") return cachedJson(encoded->cpus);
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("type '{}' is not 'gpu' or 'cpu'", *type),
                     {{"parameter", "type"}});
  }

  Result<http::Reply> device(http::Request& request) {
    return cached(request.pathParam("deviceId"), &EncodedInventory::devices);
  }

  Result<http::Reply> health(http::Request& request) {
    return cached(request.pathParam("deviceId"), &EncodedInventory::health);
  }

 private:
  // The cached encoding of one device, found by id, UUID or PCI address.
  Result<http::Reply> cached(const std::string& key,
                             std::unordered_map<std::string, std::string> EncodedInventory::*part) {
    auto snapshot = inventory_.snapshot();
    const devices::DeviceView* device = snapshot->find(key);
    if (device == nullptr) return unknownDevice(key);
    auto encoded = catalog_.current();
    const auto& bodies = (*encoded).*part;
    auto it = bodies.find(device->id);
    if (it == bodies.end()) return unknownDevice(key);
    return cachedJson(it->second);
  }

  devices::Inventory& inventory_;
  DeviceCatalog& catalog_;
};

constexpr auto kInline = http::Execution::kInline;
constexpr RouteSpec<DeviceRoutes> kDeviceRoutes[] = {
    {"GET", "/api/device", &DeviceRoutes::list, kInline},
    {"GET", "/api/device/{deviceId}", &DeviceRoutes::device, kInline},
    {"GET", "/api/device/{deviceId}/health", &DeviceRoutes::health, kInline},
};

}  // namespace

void registerDeviceRoutes(http::Router& router, AppContext& context) {
  addRoutes<DeviceRoutes>(router, context.config, http::ErrorShape::kApi,
                          std::make_shared<DeviceRoutes>(context.inventory, context.catalog),
                          kDeviceRoutes);
}

}  // namespace deviceops::api
