// Sampler: every `interval`, reads the Inventory's latest snapshot (never a driver call: the
// inventory's backend threads do those) and what MemoryService holds per device, turns each
// device into a DeviceSample, detects events against the previous tick, and pushes samples,
// events and changed device rows to the writer. A device whose backend stopped answering is
// sampled with stale = true (its health is "lost": backendNotResponding).
//
// Thread-safety: start()/stop() from one thread; latest() and sampleCount() from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/events.h"
#include "devices/inventory.h"
#include "memory/memory_service.h"
#include "telemetry/event_detector.h"
#include "telemetry/writer.h"

namespace deviceops::telemetry {

struct SamplerOptions {
  std::string node;
  std::string hostname;
  std::string version;
  std::chrono::milliseconds interval{5000};
  // A reading older than this at sampling time is stale (the backend did not answer in time).
  std::chrono::milliseconds staleAfter{10000};
  std::function<SystemTime()> clock = [] { return std::chrono::system_clock::now(); };
  // Called on the sampling thread after each tick with its samples and the events the tick
  // detected (already queued for the store): the daemon's live feed (/api/stream). Must not block.
  std::function<void(const std::vector<DeviceSample>&, const std::vector<StoredEvent>&)> onTick;
};

class Sampler {
 public:
  // `memory` may be null (no held bytes then).
  Sampler(const devices::Inventory& inventory, memory::MemoryService* memory,
          TelemetryWriter& writer, SamplerOptions options);
  ~Sampler();
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  void start();
  void stop();

  // One tick at options.clock(): builds, detects, pushes. Called by the thread; public so that
  // tests can drive ticks deterministically.
  void sampleOnce();

  // The newest sample of each device (empty before the first tick).
  std::vector<DeviceSample> latest() const;
  std::uint64_t sampleCount() const { return samples_.load(); }
  std::uint64_t tickCount() const { return ticks_.load(); }
  const SamplerOptions& options() const { return options_; }

 private:
  DeviceSample build(const devices::DeviceView& view, SystemTime now);
  void run();

  const devices::Inventory& inventory_;
  memory::MemoryService* memory_;
  TelemetryWriter& writer_;
  const SamplerOptions options_;
  EventDetector detector_;                      // used by the sampling thread only
  std::map<std::string, DeviceInfo> devices_;   // sampling thread only: last pushed rows
  std::map<std::string, SystemTime> lastTime_;  // sampling thread only
  SystemTime lastNodeRow_{};                    // sampling thread only
  mutable std::mutex latestMutex_;              // guards latest_
  std::map<std::string, DeviceSample> latest_;
  std::atomic<std::uint64_t> samples_{0};
  std::atomic<std::uint64_t> ticks_{0};
  std::mutex mutex_;  // guards stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace deviceops::telemetry
