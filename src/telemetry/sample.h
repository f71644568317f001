// The data model of telemetry: what the sampler records per device per tick, the device and node
// rows, events as stored, and the statistics computed over a window. Units are in the names
// (bytes, celsius, watts, MHz, seconds, ratio 0..1); absent readings are std::nullopt, never 0.
// The SQL schema these map to is docs/DEVICE_MONITOR_SCHEMA.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/events.h"

namespace deviceops::telemetry {

using SystemTime = std::chrono::system_clock::time_point;

// Milliseconds since the Unix epoch (UTC), the time unit of every *_ms column.
std::int64_t toMillis(SystemTime time);
SystemTime fromMillis(std::int64_t millis);

// The health states, in the order of severity (the index is the Prometheus health_status value).
inline constexpr const char* kHealthStates[] = {"healthy", "degraded", "critical", "lost"};
// 0..3 for a known state name, -1 otherwise.
int healthStateIndex(std::string_view state);

// One device at one tick.
struct DeviceSample {
  std::string node;
  std::string deviceId;
  SystemTime time;
  // Seconds of wall time this sample stands for: the sampling interval, or the time since the
  // previous sample of the device when shorter. Coverage, energy and time-in-state sum it.
  double intervalSeconds = 0;
  std::optional<double> temperatureCelsius;
  std::optional<double> utilizationRatio;
  std::optional<double> memoryUtilizationRatio;
  std::optional<std::uint64_t> memoryUsedBytes;
  std::optional<std::uint64_t> memoryFreeBytes;
  std::uint64_t memoryTotalBytes = 0;
  std::optional<double> powerWatts;
  std::optional<double> powerLimitWatts;
  std::optional<double> clockMhz;
  std::optional<double> memoryClockMhz;
  bool throttled = false;
  std::vector<std::string> throttleReasons;
  std::optional<std::uint64_t> eccSingleBitErrors;         // volatile (since driver load)
  std::optional<std::uint64_t> eccDoubleBitErrors;         // volatile (since driver load)
  std::optional<std::uint64_t> xidErrors;                  // NULL until a backend reports XIDs
  std::string health = "healthy";                          // healthy | degraded | critical | lost
  nlohmann::json healthReasons = nlohmann::json::array();  // [{code, severity, message}]
  // The reading was not fresh: its backend did not answer within the stale limit (or timed out).
  bool stale = false;
  double readingAgeSeconds = 0;  // sample time - when the backend last read the device
  std::uint64_t heldBytes = 0;   // by this service (MemoryService), all kinds
  std::map<std::string, std::uint64_t> heldBytesByKind;
};

// A row of `devices`: identity as the node's inventory reports it.
struct DeviceInfo {
  std::string node;
  std::string deviceId;
  std::string name;
  std::string vendor;
  std::string type;  // gpu | cpu
  std::string uuid;
  std::string pciBusId;
  std::uint64_t memoryTotalBytes = 0;
  bool simulated = false;
  SystemTime seenAt;
};

// A row of `nodes`.
struct NodeInfo {
  std::string node;
  std::string hostname;
  std::string version;
  double sampleIntervalSeconds = 0;
  SystemTime seenAt;
};

// An event as stored (id assigned by the store).
struct StoredEvent {
  std::int64_t id = 0;
  std::string node;
  Event event;
};

// What the writer hands to the store in one transaction.
struct WriteBatch {
  std::optional<NodeInfo> node;
  std::vector<DeviceInfo> devices;
  std::vector<DeviceSample> samples;
  std::vector<StoredEvent> events;  // id ignored
  bool empty() const { return !node && devices.empty() && samples.empty() && events.empty(); }
};

struct EventQuery {
  std::optional<std::string> node;  // nullopt: every node
  std::optional<std::string> deviceId;
  std::optional<SystemTime> since;  // inclusive
  // Exact type ("health.changed") or a dotted prefix ("health" matches "health.changed").
  std::optional<std::string> type;
  std::size_t limit = 100;  // newest first
};

enum class Resolution { kAuto, kRaw, kMinute, kHour };
std::string_view resolutionName(Resolution resolution);  // auto | raw | 1m | 1h

// kAuto picks by window length: up to 3 h raw, up to 3 days 1-minute rollups, beyond 1-hour.
Resolution chooseResolution(std::chrono::milliseconds window);

struct MetricStatistics {
  std::optional<double> min;
  std::optional<double> avg;
  std::optional<double> max;
  std::optional<double> p95;
  std::optional<double> last;
  std::uint64_t count = 0;  // samples that had this reading
};

struct Statistics {
  std::string node;
  std::string deviceId;
  SystemTime from;  // as used: aligned down to the bucket for rollup resolutions
  SystemTime to;    // exclusive
  Resolution resolution = Resolution::kRaw;
  // "exact" from raw samples; "bucketAverages" from rollups (the 95th percentile of per-bucket
  // averages, weighted by samples).
  std::string p95Method = "exact";
  std::uint64_t sampleCount = 0;
  double coveredSeconds = 0;
  MetricStatistics temperatureCelsius;
  MetricStatistics utilizationRatio;
  MetricStatistics memoryUsedBytes;
  MetricStatistics powerWatts;
  std::optional<double> energyJoules;  // sum of power x interval; nullopt without power readings
  double throttledSeconds = 0;
  std::map<std::string, double> healthSeconds;  // every state in kHealthStates, 0 when none

  double windowSeconds() const;
  double coverageRatio() const;  // coveredSeconds / windowSeconds, at most 1
};

}  // namespace deviceops::telemetry
