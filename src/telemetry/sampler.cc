#include "telemetry/sampler.h"

#include <spdlog/spdlog.h>

namespace deviceops::telemetry {
namespace {

bool sameDevice(const DeviceInfo& a, const DeviceInfo& b) {
  return a.name == b.name && a.vendor == b.vendor && a.type == b.type && a.uuid == b.uuid &&
         a.pciBusId == b.pciBusId && a.memoryTotalBytes == b.memoryTotalBytes &&
         a.simulated == b.simulated;
}

// How often device and node rows are re-written to refresh last_seen_ms.
constexpr auto kRefreshRows = std::chrono::minutes(5);

}  // namespace

Sampler::Sampler(const devices::Inventory& inventory, memory::MemoryService* memory,
                 TelemetryWriter& writer, SamplerOptions options)
    : inventory_(inventory), memory_(memory), writer_(writer), options_(std::move(options)) {}

Sampler::~Sampler() { stop(); }

void Sampler::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void Sampler::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Sampler::run() {
  // Ticks on a fixed schedule (no drift): tick n at start + n x interval.
  auto next = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    sampleOnce();
    lock.lock();
    next += options_.interval;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;  // fell behind (suspended machine): no burst of catch-up ticks
    wake_.wait_until(lock, next, [&] { return stopping_; });
  }
}

DeviceSample Sampler::build(const devices::DeviceView& view, SystemTime now) {
  const devices::DeviceRecord& record = view.record;
  const devices::Readings& readings = record.readings;
  DeviceSample s;
  s.node = options_.node;
  s.deviceId = view.id;
  s.time = now;
  const double interval = std::chrono::duration<double>(options_.interval).count();
  s.intervalSeconds = interval;
  if (auto last = lastTime_.find(view.id); last != lastTime_.end()) {
    const double since = std::chrono::duration<double>(now - last->second).count();
    if (since > 0 && since < interval) s.intervalSeconds = since;
  }
  lastTime_[view.id] = now;
  s.temperatureCelsius = readings.temperatureCelsius;
  s.utilizationRatio = readings.utilizationRatio;
  s.memoryUtilizationRatio = readings.memoryUtilizationRatio;
  s.memoryUsedBytes = record.memory.usedBytes;
  s.memoryFreeBytes = record.memory.freeBytes;
  s.memoryTotalBytes = record.memory.totalBytes;
  s.powerWatts = readings.powerWatts;
  s.powerLimitWatts = readings.powerLimitWatts;
  s.clockMhz = readings.clockMhz;
  s.memoryClockMhz = readings.memoryClockMhz;
  s.throttleReasons = readings.throttleReasons;
  s.throttled =
      readings.thermalThrottling || readings.powerThrottling || !readings.throttleReasons.empty();
  s.eccSingleBitErrors = readings.eccVolatileSingleBit;
  s.eccDoubleBitErrors = readings.eccVolatileDoubleBit;
  s.health = std::string(devices::healthStatusName(view.health.status));
  for (const devices::HealthReason& reason : view.health.reasons) {
    s.healthReasons.push_back({{"code", reason.code},
                               {"severity", devices::healthStatusName(reason.severity)},
                               {"message", reason.message}});
    if (reason.code == "backendNotResponding") s.stale = true;
  }
  s.readingAgeSeconds = std::max(0.0, std::chrono::duration<double>(now - view.updatedAt).count());
  if (now - view.updatedAt > options_.staleAfter) s.stale = true;
  if (memory_ != nullptr) {
    Result<memory::DeviceMemoryStatus> status = memory_->status(view.id);
    if (status.ok()) {
      s.heldBytes = status->heldBytes;
      s.heldBytesByKind = status->heldBytesByKind;
    }
  }
  return s;
}

void Sampler::sampleOnce() {
  const SystemTime now = options_.clock();
  auto snapshot = inventory_.snapshot();
  std::vector<DeviceSample> samples;
  samples.reserve(snapshot->devices.size());
  WriteBatch batch;
  const bool refresh = now - lastNodeRow_ >= kRefreshRows;
  if (refresh) {
    lastNodeRow_ = now;
    batch.node = NodeInfo{options_.node, options_.hostname, options_.version,
                          std::chrono::duration<double>(options_.interval).count(), now};
  }
  for (const devices::DeviceView& view : snapshot->devices) {
    samples.push_back(build(view, now));
    DeviceInfo info;
    info.node = options_.node;
    info.deviceId = view.id;
    info.name = view.record.name;
    info.vendor = view.record.vendor;
    info.type = std::string(devices::deviceTypeName(view.record.type));
    info.uuid = view.record.uuid;
    info.pciBusId = view.record.pciBusId;
    info.memoryTotalBytes = view.record.memory.totalBytes;
    info.simulated = view.record.simulated;
    info.seenAt = now;
    auto known = devices_.find(view.id);
    if (refresh || known == devices_.end() || !sameDevice(known->second, info)) {
      devices_[view.id] = info;
      batch.devices.push_back(std::move(info));
    }
  }
  for (Event& event : detector_.observe(samples)) {
    batch.events.push_back(StoredEvent{0, options_.node, std::move(event)});
  }
  {
    std::lock_guard lock(latestMutex_);
    for (const DeviceSample& sample : samples) latest_[sample.deviceId] = sample;
  }
  samples_ += samples.size();
  ++ticks_;
  if (options_.onTick) options_.onTick(samples, batch.events);
  batch.samples = std::move(samples);
  writer_.push(batch);
}

std::vector<DeviceSample> Sampler::latest() const {
  std::lock_guard lock(latestMutex_);
  std::vector<DeviceSample> latest;
  latest.reserve(latest_.size());
  for (const auto& [id, sample] : latest_) latest.push_back(sample);
  return latest;
}

}  // namespace deviceops::telemetry
