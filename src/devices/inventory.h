// Inventory: every backend, polled in the background, merged into one list of devices with
// health. Requests read the latest snapshot and never wait on a driver call.
//
// Thread-safety: all public methods are safe to call from any thread. Each backend is opened and
// polled by its own thread, so a driver that hangs stalls only its own backend, whose devices
// are then reported "lost" (backendNotResponding) once its last poll is older than staleAfter.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "devices/device.h"
#include "devices/health.h"

namespace deviceops::devices {

using SystemTime = std::chrono::system_clock::time_point;

struct DeviceView {
  std::string id;
  DeviceRecord record;
  std::vector<std::string> backends;
  Health health;
  SystemTime updatedAt;  // when the primary backend last read it
};

struct InventorySnapshot {
  std::uint64_t version = 0;  // increases with every published snapshot
  std::vector<DeviceView> devices;
  std::vector<BackendStatus> backends;
  SystemTime updatedAt;

  const DeviceView* find(std::string_view idOrUuidOrPci) const;
};

struct InventoryOptions {
  std::chrono::milliseconds pollInterval{1000};
  // A backend whose last successful poll is older than this is "not responding".
  std::chrono::milliseconds staleAfter{10000};
  // start() waits at most this long for the first poll of every backend.
  std::chrono::milliseconds startupWait{3000};
  HealthThresholds thresholds;
};

class Inventory {
 public:
  Inventory(std::vector<std::unique_ptr<Backend>> backends, InventoryOptions options);
  ~Inventory();
  Inventory(const Inventory&) = delete;
  Inventory& operator=(const Inventory&) = delete;

  // Opens every backend and starts polling. Returns once every backend has answered its first
  // poll or failed to open, or after options.startupWait, whichever is first.
  void start();
  // Stops the polling threads: asks every backend to interrupt() a poll in progress, then joins
  // (a backend stuck in a driver call it cannot interrupt delays this until the call returns).
  void stop();

  // The latest published snapshot; never null after construction.
  std::shared_ptr<const InventorySnapshot> snapshot() const;

 private:
  struct BackendSlot;
  void runBackend(BackendSlot& slot);
  void publish();

  InventoryOptions options_;
  std::vector<std::unique_ptr<BackendSlot>> slots_;
  mutable std::mutex mutex_;  // guards snapshot_, version_, and every slot's state
  std::condition_variable changed_;
  std::shared_ptr<const InventorySnapshot> snapshot_;
  std::uint64_t version_ = 0;
  std::atomic<bool> stopping_{false};
};

}  // namespace deviceops::devices
