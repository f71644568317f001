// Events: notable things that happened to a device or to what the service holds on it (health
// transitions, throttling, allocation refusals, model load/unload/evict, job state changes).
// Components publish through an EventSink; the telemetry store records them for /api/events.
//
// Thread-safety: EventSink::publish may be called from any thread and must not block on I/O
// for long (implementations queue and write in the background).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace deviceops {

struct Event {
  std::chrono::system_clock::time_point time = std::chrono::system_clock::now();
  std::string type;      // dotted, stable: "health.changed", "model.evicted", "memory.refused"
  std::string deviceId;  // empty when not about one device
  std::string severity = "info";  // info | warning | error
  std::string message;            // one human-readable line
  nlohmann::json details = nlohmann::json::object();
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void publish(Event event) = 0;
};

// Publishes nowhere; the default until the telemetry store is up.
class NullEventSink final : public EventSink {
 public:
  void publish(Event) override {}
};

}  // namespace deviceops
