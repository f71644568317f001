#include "devices/inventory.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "devices/merge.h"

namespace deviceops::devices {

using SteadyClock = std::chrono::steady_clock;

struct Inventory::BackendSlot {
  std::unique_ptr<Backend> backend;
  std::thread thread;
  // Guarded by Inventory::mutex_:
  BackendStatus status;
  bool settled = false;  // open failed, or first poll finished
  std::vector<DeviceRecord> records;
  std::map<std::string, DeviceRecord> lastSeen;  // localKey -> last good record
  SteadyClock::time_point lastSuccess;
  SystemTime lastSuccessWall;
};

const DeviceView* InventorySnapshot::find(std::string_view key) const {
  for (const DeviceView& device : devices) {
    if (device.id == key) return &device;
  }
  for (const DeviceView& device : devices) {
    if (!key.empty() && (device.record.uuid == key || device.record.pciBusId == key)) {
      return &device;
    }
  }
  return nullptr;
}

Inventory::Inventory(std::vector<std::unique_ptr<Backend>> backends, InventoryOptions options)
    : options_(options), snapshot_(std::make_shared<InventorySnapshot>()) {
  for (auto& backend : backends) {
    auto slot = std::make_unique<BackendSlot>();
    slot->status.name = std::string(backend->name());
    slot->status.reason = "starting";
    slot->backend = std::move(backend);
    slots_.push_back(std::move(slot));
  }
  publish();
}

Inventory::~Inventory() { stop(); }

void Inventory::start() {
  for (auto& slot : slots_) {
    slot->thread = std::thread([this, raw = slot.get()] { runBackend(*raw); });
  }
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, options_.startupWait, [this] {
    return std::all_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->settled; });
  });
}

void Inventory::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& slot : slots_) slot->backend->interrupt();
  for (auto& slot : slots_) {
    if (slot->thread.joinable()) slot->thread.join();
  }
}

std::shared_ptr<const InventorySnapshot> Inventory::snapshot() const {
  std::lock_guard lock(mutex_);
  return snapshot_;
}

void Inventory::runBackend(BackendSlot& slot) {
  const auto openStarted = SteadyClock::now();
  Status opened = slot.backend->open();
  if (!opened.ok()) {
    spdlog::info("backend {} unavailable: {}", slot.status.name, opened.error().message);
    std::lock_guard lock(mutex_);
    slot.status.available = false;
    slot.status.reason = opened.error().message;
    slot.settled = true;
    publish();
    changed_.notify_all();
    return;
  }
  spdlog::info("backend {} opened in {:.1f} ms", slot.status.name,
               std::chrono::duration<double, std::milli>(SteadyClock::now() - openStarted).count());
  while (!stopping_) {
    const auto started = SteadyClock::now();
    Result<std::vector<DeviceRecord>> polled = slot.backend->poll();
    const auto finished = SteadyClock::now();
    {
      std::lock_guard lock(mutex_);
      slot.status.lastPollMilliseconds =
          std::chrono::duration<double, std::milli>(finished - started).count();
      if (polled.ok()) {
        std::map<std::string, DeviceRecord> current;
        for (DeviceRecord& record : polled.value()) {
          if (!record.queryError) slot.lastSeen[record.localKey] = record;
          current[record.localKey] = std::move(record);
        }
        // A device that was there before and is gone now is reported lost, not dropped.
        for (const auto& [key, previous] : slot.lastSeen) {
          if (current.count(key) == 0) {
            DeviceRecord missing = previous;
            missing.queryError =
                "the device is no longer reported by the " + slot.status.name + " backend";
            current[key] = std::move(missing);
          }
        }
        slot.records.clear();
        for (auto& [key, record] : current) slot.records.push_back(std::move(record));
        slot.status.available = true;
        slot.status.reason.clear();
        slot.status.deviceCount = static_cast<int>(slot.records.size());
        slot.lastSuccess = finished;
        slot.lastSuccessWall = std::chrono::system_clock::now();
      } else {
        slot.status.reason = "poll failed: " + polled.error().message;
        spdlog::warn("backend {}: {}", slot.status.name, slot.status.reason);
      }
      slot.settled = true;
      publish();
    }
    changed_.notify_all();
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, options_.pollInterval, [this] { return stopping_.load(); });
  }
}

// Precondition: mutex_ is held.
void Inventory::publish() {
  auto next = std::make_shared<InventorySnapshot>();
  next->version = ++version_;
  next->updatedAt = std::chrono::system_clock::now();
  const auto now = SteadyClock::now();
  std::vector<DeviceRecord> all;
  std::map<std::string, bool> staleByBackend;
  std::map<std::string, SystemTime> updatedByBackend;
  for (const auto& slot : slots_) {
    BackendStatus status = slot->status;
    const bool stale = status.available && now - slot->lastSuccess > options_.staleAfter;
    if (stale) status.reason = "not responding: last successful poll is stale";
    staleByBackend[status.name] = stale;
    updatedByBackend[status.name] = slot->lastSuccessWall;
    next->backends.push_back(std::move(status));
    all.insert(all.end(), slot->records.begin(), slot->records.end());
  }
  for (MergedDevice& merged : mergeRecords(all)) {
    DeviceView view;
    view.id = std::move(merged.id);
    view.backends = std::move(merged.backends);
    view.health =
        evaluateHealth(merged.record, options_.thresholds, staleByBackend[merged.record.backend]);
    view.updatedAt = updatedByBackend[merged.record.backend];
    view.record = std::move(merged.record);
    next->devices.push_back(std::move(view));
  }
  snapshot_ = std::move(next);
}

}  // namespace deviceops::devices
