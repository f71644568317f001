#include "telemetry/telemetry_service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

namespace deviceops::telemetry {

std::string localHostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

namespace {

SamplerOptions samplerOptions(const TelemetryOptions& options) {
  SamplerOptions sampler;
  sampler.node = options.node;
  sampler.hostname = options.hostname;
  sampler.version = options.version;
  sampler.interval = options.interval;
  sampler.staleAfter = options.staleAfter;
  sampler.onTick = options.onTick;
  return sampler;
}

TelemetryOptions withDefaults(TelemetryOptions options) {
  if (options.hostname.empty()) options.hostname = localHostName();
  if (options.node.empty()) options.node = options.hostname;
  return options;
}

}  // namespace

TelemetryService::TelemetryService(std::unique_ptr<TelemetryStore> store,
                                   const devices::Inventory& inventory,
                                   memory::MemoryService* memory, TelemetryOptions options)
    : store_(std::move(store)),
      options_(withDefaults(std::move(options))),
      writer_(*store_, options_.writer),
      sampler_(inventory, memory, writer_, samplerOptions(options_)) {}

TelemetryService::~TelemetryService() { stop(std::chrono::milliseconds(0)); }

void TelemetryService::start() {
  writer_.start();
  sampler_.start();
  {
    std::lock_guard lock(mutex_);
    stopping_ = false;
  }
  if (!retention_.joinable()) retention_ = std::thread([this] { runRetention(); });
}

void TelemetryService::stop(std::chrono::milliseconds deadline) {
  sampler_.stop();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (retention_.joinable()) retention_.join();
  writer_.stop(deadline);
}

void TelemetryService::publish(Event event) {
  writer_.push(BufferedItem(StoredEvent{0, options_.node, std::move(event)}));
}

StoreHealth TelemetryService::storeHealth() const {
  StoreHealth health;
  health.kind = std::string(store_->kind());
  health.description = store_->description();
  health.counters = writer_.counters();
  health.up = health.counters.storeUp;
  health.lastError = health.counters.lastError;
  return health;
}

void TelemetryService::runRetention() {
  std::unique_lock lock(mutex_);
  // First pass shortly after start-up, then every retentionInterval.
  auto next = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!stopping_) {
    if (wake_.wait_until(lock, next, [&] { return stopping_; })) break;
    lock.unlock();
    Result<std::uint64_t> deleted = store_->applyRetention(
        std::chrono::system_clock::now(), options_.rawRetention, options_.rollupRetention);
    if (!deleted.ok()) {
      spdlog::warn(
          "telemetry: retention failed (retried in {} s): {}",
          std::chrono::duration_cast<std::chrono::seconds>(options_.retentionInterval).count(),
          deleted.error().message);
    } else if (*deleted > 0) {
      spdlog::info("telemetry: retention removed {} rows", *deleted);
    }
    lock.lock();
    next = std::chrono::steady_clock::now() + options_.retentionInterval;
  }
}

}  // namespace deviceops::telemetry
