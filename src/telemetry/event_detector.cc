#include "telemetry/event_detector.h"

#include <fmt/format.h>

#include <set>

namespace deviceops::telemetry {
namespace {

std::string severityFor(const std::string& health) {
  if (health == "critical" || health == "lost") return "error";
  if (health == "degraded") return "warning";
  return "info";
}

std::string reasonCodes(const nlohmann::json& reasons) {
  std::string text;
  if (!reasons.is_array()) return text;
  for (const auto& reason : reasons) {
    if (reason.is_object() && reason.contains("code") && reason["code"].is_string()) {
      text += (text.empty() ? "" : ", ") + reason["code"].get<std::string>();
    }
  }
  return text;
}

std::string joinedReasons(const std::vector<std::string>& reasons) {
  std::string text;
  for (const auto& reason : reasons) text += (text.empty() ? "" : ", ") + reason;
  return text.empty() ? "unspecified" : text;
}

Event makeEvent(const DeviceSample& sample, std::string type, std::string severity,
                std::string message, nlohmann::json details) {
  Event event;
  event.time = sample.time;
  event.type = std::move(type);
  event.deviceId = sample.deviceId;
  event.severity = std::move(severity);
  event.message = std::move(message);
  event.details = std::move(details);
  return event;
}

void counterEvent(const DeviceSample& now, const std::optional<std::uint64_t>& previous,
                  const std::optional<std::uint64_t>& current, const std::string& type,
                  const std::string& what, const std::string& severity, std::vector<Event>& out) {
  if (!previous || !current || *current == *previous) return;
  if (*current < *previous) {  // driver reloaded: volatile counters start again
    out.push_back(makeEvent(
        now, type, "info",
        fmt::format("{} counter reset from {} to {} (driver reload)", what, *previous, *current),
        {{"previous", *previous}, {"current", *current}, {"reset", true}}));
    return;
  }
  out.push_back(makeEvent(
      now, type, severity, fmt::format("{} +{} (now {})", what, *current - *previous, *current),
      {{"previous", *previous}, {"current", *current}, {"increase", *current - *previous}}));
}

}  // namespace

std::vector<Event> EventDetector::observe(const std::vector<DeviceSample>& samples) {
  std::vector<Event> events;
  std::set<std::string> seen;
  for (const DeviceSample& sample : samples) {
    seen.insert(sample.deviceId);
    auto found = previous_.find(sample.deviceId);
    if (found == previous_.end()) {
      if (!first_) {
        events.push_back(makeEvent(sample, "device.appeared", "info",
                                   fmt::format("device {} appeared", sample.deviceId), {}));
      }
      previous_.emplace(sample.deviceId, sample);
      continue;
    }
    const DeviceSample& before = found->second;
    if (before.health != sample.health) {
      const std::string reasons = reasonCodes(sample.healthReasons);
      events.push_back(makeEvent(
          sample, "health.changed", severityFor(sample.health),
          fmt::format("health {} -> {}{}", before.health, sample.health,
                      reasons.empty() ? "" : " (" + reasons + ")"),
          {{"from", before.health}, {"to", sample.health}, {"reasons", sample.healthReasons}}));
    }
    if (!before.throttled && sample.throttled) {
      events.push_back(makeEvent(sample, "throttling.started", "warning",
                                 "throttling started: " + joinedReasons(sample.throttleReasons),
                                 {{"reasons", sample.throttleReasons}}));
    } else if (before.throttled && !sample.throttled) {
      events.push_back(makeEvent(sample, "throttling.stopped", "info", "throttling stopped",
                                 {{"previousReasons", before.throttleReasons}}));
    }
    counterEvent(sample, before.eccSingleBitErrors, sample.eccSingleBitErrors, "ecc.errors",
                 "corrected (single-bit) ECC errors", "warning", events);
    counterEvent(sample, before.eccDoubleBitErrors, sample.eccDoubleBitErrors, "ecc.errors",
                 "uncorrectable (double-bit) ECC errors", "error", events);
    counterEvent(sample, before.xidErrors, sample.xidErrors, "xid.errors", "XID errors", "error",
                 events);
    found->second = sample;
  }
  for (auto it = previous_.begin(); it != previous_.end();) {
    if (seen.count(it->first) == 0) {
      DeviceSample gone = it->second;
      if (!samples.empty()) gone.time = samples.front().time;
      events.push_back(makeEvent(gone, "device.disappeared", "warning",
                                 fmt::format("device {} is no longer reported", it->first), {}));
      it = previous_.erase(it);
    } else {
      ++it;
    }
  }
  first_ = false;
  return events;
}

}  // namespace deviceops::telemetry
