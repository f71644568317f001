// TelemetryService: the telemetry component as the daemon sees it. Owns the store, the writer
// (bounded buffer), the sampler thread and the retention thread, and is the daemon's EventSink:
// publish() queues an event for the store without waiting on I/O.
//
// Thread-safety: start()/stop() from the daemon's main thread; everything else from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/events.h"
#include "devices/inventory.h"
#include "memory/memory_service.h"
#include "telemetry/sampler.h"
#include "telemetry/store.h"
#include "telemetry/writer.h"

namespace deviceops::telemetry {

struct TelemetryOptions {
  std::string node;  // default: the host name
  std::string hostname;
  std::string version;
  std::chrono::milliseconds interval{5000};
  std::chrono::milliseconds staleAfter{10000};
  std::chrono::seconds rawRetention{7 * 24 * 3600};
  std::chrono::seconds rollupRetention{90 * 24 * 3600};
  std::chrono::milliseconds retentionInterval{3600 * 1000};
  WriterOptions writer;
  // SamplerOptions::onTick: each tick's samples and detected events (the live feed).
  std::function<void(const std::vector<DeviceSample>&, const std::vector<StoredEvent>&)> onTick;
};

// The store's state for /ready and /metrics.
struct StoreHealth {
  std::string kind;         // sqlite | postgresql
  std::string description;  // where, without secrets
  bool up = true;           // false while writes fail (buffering)
  std::string lastError;
  WriterCounters counters;
};

class TelemetryService final : public EventSink {
 public:
  TelemetryService(std::unique_ptr<TelemetryStore> store, const devices::Inventory& inventory,
                   memory::MemoryService* memory, TelemetryOptions options);
  ~TelemetryService() override;

  void start();
  // Stops sampling and retention, then flushes the buffer (at most `deadline`; the rest stays
  // in the spill file for the next start).
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(5));

  void publish(Event event) override;

  const std::string& node() const { return options_.node; }
  const TelemetryOptions& options() const { return options_; }
  TelemetryStore& store() { return *store_; }
  Sampler& sampler() { return sampler_; }
  TelemetryWriter& writer() { return writer_; }
  StoreHealth storeHealth() const;
  // Appends the deviceops_telemetry_* families (Prometheus text) for GET /metrics. Thread-safe.
  void writeMetrics(std::string& out);

 private:
  void runRetention();

  std::unique_ptr<TelemetryStore> store_;
  TelemetryOptions options_;
  TelemetryWriter writer_;
  Sampler sampler_;
  std::mutex mutex_;  // guards stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread retention_;
};

// The host name (gethostname), or "localhost" when it cannot be read.
std::string localHostName();

}  // namespace deviceops::telemetry
