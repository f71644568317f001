#include "selftest/device_health.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <thread>

#include "common/time_format.h"

namespace deviceops::selftest {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

HealthCheck backendCheck(const devices::DeviceView& view, std::chrono::system_clock::time_point now,
                         const HealthCheckOptions& options) {
  HealthCheck check;
  check.name = "backendResponding";
  const double ageMs = std::chrono::duration<double, std::milli>(now - view.updatedAt).count();
  check.values = {{"readingAgeMs", ageMs}, {"staleAfterMs", options.staleAfter.count()}};
  if (ageMs > static_cast<double>(options.staleAfter.count())) {
    check.status = Outcome::kFail;
    check.reason = fmt::format("{} last read the device {:.0f} ms ago (limit {} ms)",
                               fmt::join(view.backends, "+"), ageMs, options.staleAfter.count());
  } else {
    check.reason = fmt::format("read {:.0f} ms ago", ageMs);
  }
  return check;
}

HealthCheck healthCheck(const devices::DeviceView& view) {
  HealthCheck check;
  check.name = "health";
  Json reasons = Json::array();
  std::string text;
  for (const devices::HealthReason& reason : view.health.reasons) {
    reasons.push_back({{"code", reason.code}, {"message", reason.message}});
    text += (text.empty() ? "" : "; ") + reason.code + ": " + reason.message;
  }
  check.values = {{"health", devices::healthStatusName(view.health.status)}, {"reasons", reasons}};
  switch (view.health.status) {
    case devices::HealthStatus::kHealthy:
      check.reason = "healthy";
      break;
    case devices::HealthStatus::kDegraded:
      check.status = Outcome::kWarn;
      check.reason = "degraded: " + text;
      break;
    default:
      check.status = Outcome::kFail;
      check.reason = std::string(devices::healthStatusName(view.health.status)) + ": " + text;
  }
  return check;
}

void telemetryChecks(const devices::DeviceView& view, const telemetry::DeviceSample* sample,
                     bool telemetryOn, std::chrono::system_clock::time_point now,
                     const HealthCheckOptions& options, std::vector<HealthCheck>& checks) {
  HealthCheck age;
  age.name = "telemetry";
  HealthCheck readings;
  readings.name = "readings";
  if (!telemetryOn) {
    age.status = readings.status = Outcome::kSkip;
    age.reason = readings.reason = "telemetry is disabled";
  } else if (sample == nullptr) {
    age.status = Outcome::kWarn;
    age.reason = "the telemetry store has no sample of this device yet";
    readings.status = Outcome::kSkip;
    readings.reason = "no sample to compare";
  } else {
    const double ageSeconds = std::chrono::duration<double>(now - sample->time).count();
    const double limit = 3 * std::chrono::duration<double>(options.telemetryInterval).count() + 1;
    age.values = {{"latestSampleAgeSeconds", ageSeconds}, {"limitSeconds", limit}};
    if (ageSeconds > limit) {
      age.status = Outcome::kWarn;
      age.reason = fmt::format("the newest sample is {:.1f} s old (expected within {:.1f} s)",
                               ageSeconds, limit);
    } else {
      age.reason = fmt::format("newest sample {:.1f} s old", ageSeconds);
    }
    std::vector<std::string> differences;
    const devices::Readings& live = view.record.readings;
    if (sample->temperatureCelsius && live.temperatureCelsius) {
      const double delta = std::abs(*sample->temperatureCelsius - *live.temperatureCelsius);
      readings.values["temperatureDeltaCelsius"] = delta;
      if (delta > options.temperatureToleranceCelsius) {
        differences.push_back(fmt::format("temperature {:.1f} °C stored, {:.1f} °C live",
                                          *sample->temperatureCelsius, *live.temperatureCelsius));
      }
    }
    if (sample->memoryUsedBytes && view.record.memory.usedBytes &&
        view.record.memory.totalBytes > 0) {
      const double delta = std::abs(static_cast<double>(*sample->memoryUsedBytes) -
                                    static_cast<double>(*view.record.memory.usedBytes)) /
                           static_cast<double>(view.record.memory.totalBytes);
      readings.values["memoryUsedDeltaRatio"] = delta;
      if (delta > options.memoryToleranceRatio) {
        differences.push_back(fmt::format("memory used {} B stored, {} B live",
                                          *sample->memoryUsedBytes, *view.record.memory.usedBytes));
      }
    }
    if (!differences.empty()) {
      readings.status = Outcome::kWarn;
      readings.reason = fmt::format("the stored sample disagrees with the live readings: {}",
                                    fmt::join(differences, "; "));
    } else {
      readings.reason = "the stored sample agrees with the live readings";
    }
  }
  checks.push_back(std::move(age));
  checks.push_back(std::move(readings));
}

HealthCheck ledgerCheck(memory::MemoryService& memory, const std::string& deviceId) {
  HealthCheck check;
  check.name = "ledger";
  // The ledger, the pool and the allocator are read one after the other: a concurrent
  // allocation can make one reading disagree for a moment, so a mismatch is read again.
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (attempt > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    Result<memory::DeviceMemoryStatus> status = memory.status(deviceId);
    if (!status.ok()) {
      check.status = Outcome::kFail;
      check.reason = status.error().message;
      return check;
    }
    const auto rawIt = status->heldBytesByKind.find("raw");
    const std::uint64_t raw = rawIt == status->heldBytesByKind.end() ? 0 : rawIt->second;
    check.values = {{"heldBytes", status->heldBytes},
                    {"rawHeldBytes", raw},
                    {"poolRequestedBytes", status->pool.requestedBytes},
                    {"poolReservedBytes", status->pool.reservedBytes},
                    {"backendLiveBytes", status->backendLiveBytes},
                    {"allocatorOpen", !status->allocatorKind.empty()}};
    if (status->driverUsedBytes) check.values["driverUsedBytes"] = *status->driverUsedBytes;
    if (status->allocatorKind.empty()) {
      check.reason = fmt::format("the ledger holds {} bytes (the allocator is not open yet)",
                                 status->heldBytes);
      if (raw == 0) return check;
    }
    std::vector<std::string> problems;
    if (raw != status->pool.requestedBytes) {
      problems.push_back(fmt::format("the ledger holds {} raw bytes, the pool hands out {}", raw,
                                     status->pool.requestedBytes));
    }
    if (status->backendLiveBytes != status->pool.reservedBytes) {
      problems.push_back(fmt::format("the pool holds {} bytes from the driver, the allocator {}",
                                     status->pool.reservedBytes, status->backendLiveBytes));
    }
    if (status->driverUsedBytes && !status->simulated &&
        *status->driverUsedBytes < status->backendLiveBytes) {
      problems.push_back(
          fmt::format("the driver reports {} bytes used, less than the {} the "
                      "allocator holds",
                      *status->driverUsedBytes, status->backendLiveBytes));
    }
    if (problems.empty()) {
      check.status = Outcome::kPass;
      check.reason =
          fmt::format("ledger, pool and allocator agree ({} bytes held)", status->heldBytes);
      return check;
    }
    check.status = Outcome::kFail;
    check.reason = fmt::format("{}", fmt::join(problems, "; "));
  }
  return check;
}

}  // namespace

DeviceHealthReport checkDeviceHealth(const devices::Inventory& inventory,
                                     memory::MemoryService& memory,
                                     telemetry::TelemetryService* telemetry,
                                     const HealthCheckOptions& options) {
  const auto start = Clock::now();
  DeviceHealthReport report;
  report.checkedAt = std::chrono::system_clock::now();
  const auto snapshot = inventory.snapshot();
  std::map<std::string, telemetry::DeviceSample> samples;
  if (telemetry != nullptr) {
    Result<std::vector<telemetry::DeviceSample>> latest =
        telemetry->store().latestSamples(telemetry->node());
    if (latest.ok()) {
      for (telemetry::DeviceSample& sample : *latest) samples[sample.deviceId] = std::move(sample);
    }
  }
  std::map<std::string, double> oldestReadingMs;  // per backend
  for (const devices::DeviceView& view : snapshot->devices) {
    DeviceHealthEntry entry;
    entry.deviceId = view.id;
    entry.name = view.record.name;
    entry.simulated = view.record.simulated;
    entry.checks.push_back(backendCheck(view, report.checkedAt, options));
    entry.checks.push_back(healthCheck(view));
    const auto sample = samples.find(view.id);
    telemetryChecks(view, sample == samples.end() ? nullptr : &sample->second, telemetry != nullptr,
                    report.checkedAt, options, entry.checks);
    entry.checks.push_back(ledgerCheck(memory, view.id));
    for (const HealthCheck& check : entry.checks) entry.status = worse(entry.status, check.status);
    report.status =
        worse(report.status, entry.status == Outcome::kSkip ? Outcome::kPass : entry.status);
    const double ageMs =
        std::chrono::duration<double, std::milli>(report.checkedAt - view.updatedAt).count();
    for (const std::string& backend : view.backends) {
      oldestReadingMs[backend] = std::max(oldestReadingMs[backend], ageMs);
    }
    report.devices.push_back(std::move(entry));
  }
  for (const devices::BackendStatus& status : snapshot->backends) {
    BackendHealth backend;
    backend.name = status.name;
    backend.available = status.available;
    if (!status.available) {
      backend.status = Outcome::kSkip;
      backend.reason = status.reason;
    } else if (const auto age = oldestReadingMs.find(status.name); age != oldestReadingMs.end()) {
      backend.lastPollAgeMs = age->second;
      if (age->second > static_cast<double>(options.staleAfter.count())) {
        backend.status = Outcome::kFail;
        backend.reason = fmt::format("no answer for {:.0f} ms (limit {} ms)", age->second,
                                     options.staleAfter.count());
      } else {
        backend.reason =
            fmt::format("{} device(s), answered {:.0f} ms ago", status.deviceCount, age->second);
      }
    } else {
      backend.reason = fmt::format("{} device(s)", status.deviceCount);
    }
    if (backend.status == Outcome::kFail) report.status = Outcome::kFail;
    report.backends.push_back(std::move(backend));
  }
  report.durationMs = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return report;
}

Json toJson(const DeviceHealthReport& report) {
  Json backends = Json::array();
  for (const BackendHealth& backend : report.backends) {
    backends.push_back(
        {{"name", backend.name},
         {"available", backend.available},
         {"status", outcomeName(backend.status)},
         {"reason", backend.reason},
         {"lastPollAgeMs", backend.lastPollAgeMs ? Json(*backend.lastPollAgeMs) : Json(nullptr)}});
  }
  Json devices = Json::array();
  for (const DeviceHealthEntry& entry : report.devices) {
    Json checks = Json::array();
    for (const HealthCheck& check : entry.checks) {
      checks.push_back({{"name", check.name},
                        {"status", outcomeName(check.status)},
                        {"reason", check.reason},
                        {"values", check.values}});
    }
    devices.push_back({{"deviceId", entry.deviceId},
                       {"name", entry.name},
                       {"simulated", entry.simulated},
                       {"status", outcomeName(entry.status)},
                       {"checks", std::move(checks)}});
  }
  return {{"status", outcomeName(report.status)},
          {"checkedAt", formatIso8601(report.checkedAt)},
          {"durationMs", report.durationMs},
          {"backends", std::move(backends)},
          {"devices", std::move(devices)}};
}

}  // namespace deviceops::selftest
