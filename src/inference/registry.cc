// ModelRegistry: loading (validation, placement, measurement, charging) and reloads after
// eviction. Locking as described in registry_impl.h.
#include "inference/registry.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>
#include <system_error>

#include "common/sha256.h"
#include "inference/registry_impl.h"
#include "inference/registry_metrics.h"
#include "inference/registry_paths.h"

namespace deviceops::inference {
namespace fs = std::filesystem;

std::string_view modelStateName(ModelState state) {
  switch (state) {
    case ModelState::kLoading:
      return "loading";
    case ModelState::kReady:
      return "ready";
    case ModelState::kUnloading:
      return "unloading";
    case ModelState::kFailed:
      return "failed";
  }
  return "failed";
}

namespace {

std::string newModelId() {
  static std::mutex mutex;
  static std::mt19937_64 generator{std::random_device{}()};
  std::lock_guard lock(mutex);
  return fmt::format("model-{:016x}", generator());
}

bool looksLikeModelId(std::string_view text) {
  return text.size() == 22 && text.substr(0, 6) == "model-" &&
         text.substr(6).find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// Names and versions: 1..128 of [A-Za-z0-9._-], not starting with '.' (they appear in URLs).
Status validateIdentifier(std::string_view what, const std::string& value) {
  const bool ok =
      !value.empty() && value.size() <= 128 && value.front() != '.' &&
      std::all_of(value.begin(), value.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
      });
  if (!ok) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("model {} '{}' is invalid: use 1 to 128 letters, digits, '.', "
                                 "'_' or '-', not starting with '.'",
                                 what, value),
                     {{what, value}});
  }
  return {};
}

}  // namespace

ModelRegistry::Impl::Impl(const devices::Inventory& inventory, memory::MemoryService& memory,
                          RegistryOptions options, EventSink& events)
    : inventory_(inventory), memory_(memory), options_(std::move(options)), events_(events) {}

ModelRegistry::Impl::~Impl() { stop(); }

bool ModelRegistry::Impl::versionLess(const std::string& a, const std::string& b) {
  const bool numericA = !a.empty() && a.size() < 19 && std::all_of(a.begin(), a.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  const bool numericB = !b.empty() && b.size() < 19 && std::all_of(b.begin(), b.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  if (numericA && numericB) return std::stoll(a) < std::stoll(b);
  if (numericA != numericB) return numericA;  // named versions sort after numbered ones
  return a < b;
}

Result<std::shared_ptr<ModelRegistry::Impl::Entry>> ModelRegistry::Impl::lookupLocked(
    const std::string& idOrName, const std::string& version, Pick pick) const {
  if (auto it = entries_.find(idOrName); it != entries_.end()) {
    if (!version.empty() && it->second->info.version != version) {
      return makeError(ErrorCode::kNotFound,
                       fmt::format("model {} is version {}, not {}", idOrName,
                                   it->second->info.version, version),
                       {{"model", idOrName}, {"version", version}});
    }
    return it->second;
  }
  std::vector<std::shared_ptr<Entry>> matches;
  for (const auto& [id, entry] : entries_) {
    if (entry->info.name == idOrName) matches.push_back(entry);
  }
  if (matches.empty()) {
    return makeError(ErrorCode::kNotFound,
                     fmt::format("no model '{}'; GET /api/inference/models lists them", idOrName),
                     {{"model", idOrName}});
  }
  std::vector<std::string> versions;
  for (const auto& entry : matches) versions.push_back(entry->info.version);
  std::sort(versions.begin(), versions.end(), versionLess);
  if (!version.empty()) {
    for (const auto& entry : matches) {
      if (entry->info.version == version) return entry;
    }
    return makeError(ErrorCode::kNotFound,
                     fmt::format("model {} has no version {} (it has: {})", idOrName, version,
                                 fmt::join(versions, ", ")),
                     {{"model", idOrName}, {"version", version}, {"versions", versions}});
  }
  if (pick == Pick::kUnique && matches.size() > 1) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("model {} has several versions ({}): name one", idOrName,
                                 fmt::join(versions, ", ")),
                     {{"model", idOrName}, {"versions", versions}});
  }
  std::shared_ptr<Entry> best;
  for (const auto& entry : matches) {
    const bool ready = entry->info.state == ModelState::kReady;
    const bool bestReady = best && best->info.state == ModelState::kReady;
    if (!best || (ready && !bestReady) ||
        (ready == bestReady && versionLess(best->info.version, entry->info.version))) {
      best = entry;
    }
  }
  return best;
}

ModelInfo ModelRegistry::Impl::snapshotLocked(const Entry& entry) const {
  ModelInfo info = entry.info;
  info.holds = entry.holds;
  info.statistics.executionCount = static_cast<std::uint64_t>(std::llround(entry.executions));
  info.statistics.batchSizes.clear();
  for (const auto& [size, executions] : entry.batchExecutions) {
    const auto rounded = static_cast<std::uint64_t>(std::llround(executions));
    if (rounded > 0) info.statistics.batchSizes[size] = rounded;
  }
  return info;
}

nlohmann::json ModelRegistry::Impl::describe(const ModelInfo& info) {
  nlohmann::json placements = nlohmann::json::array();
  for (const Placement& placement : info.placements) {
    placements.push_back({{"deviceId", placement.deviceId},
                          {"provider", placement.provider},
                          {"chargedBytes", placement.chargedBytes},
                          {"allocationId", placement.allocationId}});
  }
  return {{"modelId", info.id},
          {"name", info.name},
          {"version", info.version},
          {"placements", placements}};
}

void ModelRegistry::Impl::publish(std::string type, std::string severity, std::string deviceId,
                                  std::string message, nlohmann::json details) {
  Event event;
  event.type = std::move(type);
  event.severity = std::move(severity);
  event.deviceId = std::move(deviceId);
  event.message = std::move(message);
  event.details = std::move(details);
  events_.publish(std::move(event));
}

// ---- load -------------------------------------------------------------------------------------

Result<ModelRegistry::Impl::Prepared> ModelRegistry::Impl::prepare(LoadRequest request) const {
  if (request.name.empty()) request.name = request.path.stem().string();
  if (Status valid = validateIdentifier("name", request.name); !valid.ok()) return valid.error();
  if (looksLikeModelId(request.name)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "model name '" + request.name + "' looks like a model id; choose another");
  }
  if (Status valid = validateIdentifier("version", request.version); !valid.ok()) {
    return valid.error();
  }
  if (request.devices.empty() && (request.replicas < 1 || request.replicas > 64)) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("replicas must be between 1 and 64, got {}", request.replicas));
  }
  if (request.runner.instances > 64) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("instances must be between 1 and 64, got {}", request.runner.instances));
  }
  if (request.keepAlive && request.keepAlive->count() < 0) {
    return makeError(ErrorCode::kInvalidArgument, "keepAlive must not be negative");
  }
  if (request.runner.instances < 1) request.runner.instances = options_.defaultInstances;
  if (request.runner.maxQueue == 0) request.runner.maxQueue = options_.maxQueue;
  Result<fs::path> resolved =
      request.managed    ? resolveModelFile(request.path, options_.managedRoots)
      : request.uploaded ? resolveModelFile(request.path, {options_.uploadDirectory})
                         : resolveModelFile(request.path, options_.modelRoots);
  if (!resolved.ok()) return resolved.error();
  Prepared prepared;
  std::error_code error;
  prepared.sizeBytes = fs::file_size(*resolved, error);
  if (error) {
    return makeError(ErrorCode::kNotFound, "cannot read the size of " + resolved->string());
  }
  Result<std::string> digest = sha256File(*resolved);
  if (!digest.ok()) return digest.error();
  prepared.sha256 = *digest;
  prepared.file = *resolved;
  request.path = *resolved;
  prepared.request = std::move(request);
  return prepared;
}

std::shared_ptr<ModelRegistry::Impl::Entry> ModelRegistry::Impl::newEntryLocked(
    const Prepared& prepared, std::optional<std::string> fixedId) {
  auto entry = std::make_shared<Entry>();
  std::string id = fixedId.value_or(newModelId());
  while (entries_.count(id) > 0) id = newModelId();
  ModelInfo& info = entry->info;
  info.id = id;
  info.name = prepared.request.name;
  info.version = prepared.request.version;
  info.path = prepared.file.string();
  info.sha256 = prepared.sha256;
  info.sizeBytes = prepared.sizeBytes;
  info.state = ModelState::kLoading;
  info.pinned = prepared.request.pinned;
  info.persist = prepared.request.persist;
  info.keepAlive = prepared.request.keepAlive;
  info.runner = prepared.request.runner;
  info.loadedAt = std::chrono::system_clock::now();
  info.statistics.queueSeconds = makeLatencyHistogram();
  info.statistics.computeSeconds = makeLatencyHistogram();
  info.statistics.totalSeconds = makeLatencyHistogram();
  entry->request = prepared.request;
  entry->lastActive = SteadyClock::now();
  entries_[id] = entry;
  return entry;
}

Result<ModelInfo> ModelRegistry::Impl::load(const LoadRequest& request,
                                            std::optional<std::string> fixedId, bool keepFailed) {
  Result<Prepared> prepared = prepare(request);
  if (!prepared.ok()) return prepared.error();
  std::shared_ptr<Entry> entry;
  {
    std::unique_lock lock(mutex_);
    while (true) {
      if (stopping_) {
        return makeError(ErrorCode::kUnavailable, "the model registry is shutting down");
      }
      std::shared_ptr<Entry> existing;
      for (const auto& [id, candidate] : entries_) {
        if (candidate->info.name == prepared->request.name &&
            candidate->info.version == prepared->request.version) {
          existing = candidate;
        }
      }
      if (!existing) break;
      if (existing->info.state == ModelState::kFailed) {
        entries_.erase(existing->info.id);
        break;
      }
      const bool sameFile = existing->info.path == prepared->file.string() &&
                            existing->info.sha256 == prepared->sha256;
      const std::string label = existing->info.name + ":" + existing->info.version;
      if (!sameFile) {
        return makeError(
            ErrorCode::kConflict,
            fmt::format("model {} is already {} from {} (sha256 {}); unload it first or load "
                        "the new file as another version",
                        label, existing->info.state == ModelState::kLoading ? "loading" : "loaded",
                        existing->info.path, existing->info.sha256),
            {{"modelId", existing->info.id},
             {"state", modelStateName(existing->info.state)},
             {"path", existing->info.path}});
      }
      if (existing->info.state == ModelState::kLoading) {
        changed_.wait(lock);  // the same file: wait for that load and answer with its outcome
        continue;
      }
      if (existing->info.state == ModelState::kUnloading) {
        return makeError(ErrorCode::kConflict,
                         "model " + label + " is being unloaded; load it again afterwards",
                         {{"modelId", existing->info.id}, {"state", "unloading"}});
      }
      // Ready: the same file is loaded already; bring it back if it was evicted.
      ++existing->info.inFlight;
      Status resident = ensureResident(lock, existing, /*force=*/true);
      --existing->info.inFlight;
      changed_.notify_all();
      if (!resident.ok()) return resident.error();
      return snapshotLocked(*existing);
    }
    entry = newEntryLocked(*prepared, std::move(fixedId));
  }

  Result<ModelMetadata> metadata = inspectModel(prepared->file);
  Result<std::vector<Replica>> replicas =
      metadata.ok()
          ? createReplicas(entry->info.id, prepared->request, prepared->file, prepared->sizeBytes)
          : Result<std::vector<Replica>>(metadata.error());
  if (!replicas.ok()) {
    Error error = replicas.error();
    ModelInfo info;
    {
      std::lock_guard lock(mutex_);
      if (keepFailed) {
        entry->info.state = ModelState::kFailed;
        entry->info.stateReason = error.message;
      } else {
        entries_.erase(entry->info.id);
      }
      info = snapshotLocked(*entry);
      changed_.notify_all();
    }
    spdlog::warn("model {}:{} failed to load: {}", info.name, info.version, error.message);
    nlohmann::json details = describe(info);
    details["error"] = error.message;
    details["path"] = info.path;
    publish("model.load_failed", "error", "",
            fmt::format("model {}:{} failed to load: {}", info.name, info.version, error.message),
            details);
    return error;
  }

  ModelInfo info;
  {
    std::lock_guard lock(mutex_);
    entry->metadata = std::make_shared<const ModelMetadata>(std::move(metadata.value()));
    entry->info.metadata = *entry->metadata;
    installLocked(*entry, std::move(replicas.value()));
    entry->info.state = ModelState::kReady;
    entry->info.loadedAt = std::chrono::system_clock::now();
    info = snapshotLocked(*entry);
    changed_.notify_all();
  }
  if (info.persist && store_) {
    PersistedModel row{info.id,
                       info.name,
                       info.version,
                       info.path,
                       info.sha256,
                       info.sizeBytes,
                       encodeLoadOptions(entry->request),
                       true,
                       info.pinned,
                       info.loadedAt};
    if (Status stored = store_->put(row); !stored.ok()) {
      spdlog::error("model {}:{} loaded but not persisted: {}", info.name, info.version,
                    stored.error().message);
    }
  }
  std::uint64_t charged = 0;
  for (const Placement& placement : info.placements) charged += placement.chargedBytes;
  publish("model.loaded", "info", info.placements.empty() ? "" : info.placements[0].deviceId,
          fmt::format("model {}:{} loaded on {} device(s), {} bytes charged", info.name,
                      info.version, info.placements.size(), charged),
          describe(info));
  return info;
}

void ModelRegistry::Impl::installLocked(Entry& entry, std::vector<Replica> replicas) {
  entry.replicas = std::move(replicas);
  entry.info.placements.clear();
  for (const Replica& replica : entry.replicas) entry.info.placements.push_back(replica.placement);
  entry.info.evicted = false;
  entry.lastActive = SteadyClock::now();
}

Result<std::vector<ModelRegistry::Impl::Replica>> ModelRegistry::Impl::createReplicas(
    const std::string& modelId, const LoadRequest& request, const fs::path& file,
    std::uint64_t fileBytes) {
  std::shared_ptr<const devices::InventorySnapshot> snapshot = inventory_.snapshot();
  Result<std::vector<PlacementTarget>> targets = choosePlacement(*snapshot, memory_, request);
  if (!targets.ok()) return targets.error();
  const std::string label = request.name + ":" + request.version;
  std::lock_guard measuring(measureMutex_);
  std::vector<Replica> created;
  const auto fail = [&](Error error) -> Error {
    destroyReplicas(std::move(created), "load failed");
    return error;
  };
  for (const PlacementTarget& target : *targets) {
    const std::uint64_t floor = std::max(fileBytes, request.memoryBytes.value_or(0));
    // Make room for at least the floor first, so an obviously too big model is not even opened.
    if (Result<memory::DeviceMemoryStatus> status = memory_.status(target.deviceId);
        status.ok() && status->availableBytes < floor) {
      reclaim(target.deviceId, floor - status->availableBytes);
    }
    const std::string source = measurementSource(target);
    if (source != "rss") {
      // Live driver readings need the device's allocator open (also keeps the CUDA context's
      // own cost out of the model's delta).
      if (Status opened = memory_.openDevice(target.deviceId); !opened.ok()) {
        spdlog::warn("model {}: memory of {} measured from the last device poll: {}", label,
                     target.deviceId, opened.error().message);
      }
    }
    const std::optional<std::uint64_t> before = usedBytes(memory_, source);
    RunnerOptions options = request.runner;
    options.session.provider = target.provider;
    options.session.deviceOrdinal = target.deviceOrdinal;
    Result<std::unique_ptr<ModelRunner>> runner = ModelRunner::create(file, options);
    if (!runner.ok()) {
      Error error = runner.error();
      error.message = fmt::format("model {} could not be opened on {}: {}", label, target.deviceId,
                                  error.message);
      error.details["deviceId"] = target.deviceId;
      return fail(std::move(error));
    }
    // The warm-up feeds zeros with dynamic dimensions at 1, which data-dependent models (Slice
    // steps, Resize scales, indices) legitimately reject: that says nothing about real inputs,
    // so the model still loads (its memory is then measured without a run). Only running out of
    // memory fails the load.
    if (Status warm = (*runner)->warmUp(); !warm.ok()) {
      if (warm.error().code == ErrorCode::kResourceExhausted) {
        Error error = warm.error();
        error.message = fmt::format("model {} failed its warm-up run on {}: {}", label,
                                    target.deviceId, error.message);
        error.details["deviceId"] = target.deviceId;
        return fail(std::move(error));
      }
      spdlog::warn("model {}: warm-up on {} skipped ({}); memory is measured without a run", label,
                   target.deviceId, warm.error().message);
    }
    const std::optional<std::uint64_t> after = usedBytes(memory_, source);
    const std::uint64_t measured = before && after && *after > *before ? *after - *before : 0;
    memory::AllocateRequest charge;
    charge.deviceId = target.deviceId;
    charge.bytes = std::max(measured, floor);
    charge.kind = memory::AllocationKind::kModel;
    charge.label = label;
    charge.owner = modelId;
    charge.accountOnly = true;
    // If it does not fit, our own eviction (not the ledger's installed reclaimer) frees the
    // shortfall once and the charge is retried once.
    Result<memory::AllocateResult> charged =
        memory_.allocate(charge, [this](const std::string& deviceId, std::uint64_t bytesNeeded) {
          return reclaim(deviceId, bytesNeeded);
        });
    if (!charged.ok()) {
      runner.value().reset();
      Error error = charged.error();
      error.message = fmt::format(
          "model {} needs {} bytes on {} ({} measured), and no idle "
          "model could be evicted to make room: {}",
          label, charge.bytes, target.deviceId, measured, error.message);
      error.details["modelBytes"] = charge.bytes;
      error.details["measuredBytes"] = measured;
      error.details["deviceId"] = target.deviceId;
      return fail(std::move(error));
    }
    Replica replica;
    replica.target = target;
    replica.placement.deviceId = target.deviceId;
    replica.placement.provider = std::string(providerName(target.provider));
    replica.placement.instances = options.instances;
    replica.placement.chargedBytes = charge.bytes;
    replica.placement.allocationId = charged->record.id;
    replica.runner = std::shared_ptr<ModelRunner>(std::move(runner.value()));
    created.push_back(std::move(replica));
  }
  return created;
}

ModelRegistry::Impl::Released ModelRegistry::Impl::destroyReplicas(std::vector<Replica> replicas,
                                                                   const std::string& reason) {
  Released released;
  if (replicas.empty()) return released;
  std::lock_guard measuring(measureMutex_);
  std::map<std::string, std::optional<std::uint64_t>> before;
  std::vector<Placement> placements;
  for (const Replica& replica : replicas) {
    before.emplace(measurementSource(replica.target), std::nullopt);
    placements.push_back(replica.placement);
  }
  for (auto& [source, bytes] : before) bytes = usedBytes(memory_, source);
  replicas.clear();  // the runners: their destructors wait for anything still running
  returnFreedHeapToTheSystem();
  for (const auto& [source, bytes] : before) {
    const std::optional<std::uint64_t> after = usedBytes(memory_, source);
    if (bytes && after && *bytes > *after) released.releasedBytes += *bytes - *after;
  }
  for (const Placement& placement : placements) {
    released.chargedBytes += placement.chargedBytes;
    released.chargedByDevice[placement.deviceId] += placement.chargedBytes;
    if (placement.allocationId.empty()) continue;
    Result<memory::AllocationRecord> record = memory_.release(placement.allocationId, reason);
    if (!record.ok()) {
      spdlog::error("model memory charge {} not released: {}", placement.allocationId,
                    record.error().message);
    }
  }
  return released;
}

// ---- reload after eviction ----------------------------------------------------------------------

Status ModelRegistry::Impl::ensureResident(std::unique_lock<std::mutex>& lock,
                                           const std::shared_ptr<Entry>& entry, bool force) {
  const std::string label = entry->info.name + ":" + entry->info.version;
  while (entry->info.evicted) {
    if (entry->info.state != ModelState::kReady) {
      return makeError(ErrorCode::kUnavailable,
                       fmt::format("model {} is {}", label, modelStateName(entry->info.state)),
                       {{"modelId", entry->info.id}, {"state", modelStateName(entry->info.state)}});
    }
    if (!force && !options_.autoReload) {
      return makeError(ErrorCode::kUnavailable,
                       fmt::format("model {} was evicted to free memory; load it again (automatic "
                                   "reload is off)",
                                   label),
                       {{"modelId", entry->info.id}, {"evicted", true}});
    }
    if (entry->reloading) {
      const std::uint64_t generation = entry->reloadGeneration;
      changed_.wait(lock, [&] { return !entry->reloading; });
      if (entry->info.evicted && entry->reloadGeneration != generation && entry->lastReloadError) {
        return *entry->lastReloadError;  // that reload was ours too: do not try again at once
      }
      continue;
    }
    entry->reloading = true;
    const LoadRequest request = entry->request;
    const std::string id = entry->info.id;
    const std::uint64_t size = entry->info.sizeBytes;
    lock.unlock();
    Result<std::vector<Replica>> replicas = createReplicas(id, request, request.path, size);
    lock.lock();
    entry->reloading = false;
    ++entry->reloadGeneration;
    changed_.notify_all();
    if (!replicas.ok()) {
      entry->lastReloadError = replicas.error();
      publish("model.load_failed", "error", "",
              fmt::format("model {} could not be reloaded after eviction: {}", label,
                          replicas.error().message),
              describe(entry->info));
      return replicas.error();
    }
    entry->lastReloadError.reset();
    installLocked(*entry, std::move(replicas.value()));
    ++entry->info.reloads;
    nlohmann::json details = describe(entry->info);
    details["reload"] = true;
    publish("model.loaded", "info",
            entry->info.placements.empty() ? "" : entry->info.placements[0].deviceId,
            fmt::format("model {} reloaded after eviction", label), details);
  }
  return {};
}

}  // namespace deviceops::inference
