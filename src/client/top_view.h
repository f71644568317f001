// What `deviceops top` shows, as data and as text: devices (utilization, memory, temperature,
// power, health, the memory ledger), training and generation jobs, and the newest events. Filled
// from REST snapshots (GET /api/device, /api/integration/health, /api/memory/{id}/status,
// /api/training/sessions, /api/generation) and kept live by GET /api/stream's `samples` and
// `event` events. Pure: no I/O, so frames are testable (cli_top.cc does the terminal).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "client/event_stream.h"

namespace deviceops::client {

struct TopDevice {
  std::string id, name, vendor;
  std::string health;  // healthy | degraded | critical | lost | "" (unknown)
  std::optional<double> utilizationRatio, temperatureCelsius, powerWatts;
  std::optional<std::uint64_t> memoryUsedBytes, memoryTotalBytes;
  std::optional<std::uint64_t> heldBytes;                              // the ledger's total
  std::vector<std::pair<std::string, std::uint64_t>> heldBytesByKind;  // raw, model, training, ...
  bool throttled = false;
  bool stale = false;
};

// One device of GET /api/device (id, memory.usedBytes, readings.*) or one item of
// /api/integration/health and of the stream's `samples` (deviceId, memoryUsedBytes, ...).
TopDevice topDeviceFromListItem(const nlohmann::json& device);
TopDevice topDeviceFromSample(const nlohmann::json& sample);

// What an event from /api/stream asks of the caller.
enum class TopChange {
  kNone,        // nothing shown changed (hello, unknown events)
  kRedraw,      // the model changed: draw a new frame
  kReloadJobs,  // a job event: reload the job lists (REST), then draw
  kReloadAll,   // `reset`: the feed lost events; reload every snapshot
};

class TopModel {
 public:
  static constexpr std::size_t kMaxEvents = 50;

  std::string node;
  std::string status = "snapshot";  // live | reconnecting | polling | snapshot
  std::string time;                 // of the newest samples (RFC 3339), "" before any
  bool telemetry = true;            // hello's telemetry; false: no samples, poll /api/device
  std::vector<TopDevice> devices;   // in /api/device order
  nlohmann::json trainingJobs = nlohmann::json::array();    // /api/training/sessions "sessions"
  nlohmann::json generationJobs = nlohmann::json::array();  // /api/generation "jobs"
  std::deque<nlohmann::json> events;                        // newest first, kMaxEvents at most

  // Replaces the device list (a snapshot): order and names from `list` (GET /api/device), the
  // readings of `samples` items (GET /api/integration/health "devices") where ids match.
  void setDevices(const nlohmann::json& list, const nlohmann::json& samples);
  // Sets one device's ledger from GET /api/memory/{id}/status.
  void setLedger(const std::string& deviceId, const nlohmann::json& status);
  // Applies one /api/stream event (hello, samples, event, reset).
  TopChange apply(const ServerSentEvent& event);
};

// The frame as text lines of at most `width` columns each; at most `height` lines when height
// is not 0 (the events get what the devices and jobs leave). Every line ends in '\n'.
std::string renderTopFrame(const TopModel& model, std::size_t width, std::size_t height = 0);

}  // namespace deviceops::client
