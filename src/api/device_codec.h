// JSON encoding of devices, and a cache of the encoded inventory so that GET /api/device costs a
// string copy, not a serialization. Shapes are documented in docs/openapi.yaml (Device, Health).
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

#include "devices/inventory.h"

namespace deviceops::api {

nlohmann::json encodeReadings(const devices::Readings& readings);
nlohmann::json encodeHealth(const devices::Health& health, devices::SystemTime checkedAt);
nlohmann::json encodeDevice(const devices::DeviceView& device);
nlohmann::json encodeBackend(const devices::BackendStatus& backend);

struct EncodedInventory {
  std::uint64_t version = 0;
  std::string all;                                       // GET /api/device
  std::string cpus;                                      // ?type=cpu
  std::string gpus;                                      // ?type=gpu
  std::unordered_map<std::string, std::string> devices;  // id -> GET /api/device/{id}
  std::unordered_map<std::string, std::string> health;   // id -> GET /api/device/{id}/health
};

// Thread-safe. Re-encodes only when the inventory published a new snapshot.
class DeviceCatalog {
 public:
  explicit DeviceCatalog(const devices::Inventory& inventory) : inventory_(inventory) {}
  std::shared_ptr<const EncodedInventory> current();

 private:
  const devices::Inventory& inventory_;
  std::mutex mutex_;  // guards cached_
  std::shared_ptr<const EncodedInventory> cached_;
};

}  // namespace deviceops::api
