// ModelRegistry: eviction (memory pressure and keep-alive) and unloading. Locking as described in
// registry_impl.h: the entry is marked (evicted / unloading) under mutex_, its runners are
// destroyed and its ledger charges released with mutex_ released.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <system_error>

#include "inference/registry.h"
#include "inference/registry_impl.h"

namespace deviceops::inference {
namespace fs = std::filesystem;

// ---- eviction ----------------------------------------------------------------------------------

bool ModelRegistry::Impl::evictableLocked(const Entry& entry) const {
  return entry.info.state == ModelState::kReady && !entry.info.evicted && !entry.info.pinned &&
         entry.info.inFlight == 0 && entry.holds == 0 && !entry.reloading &&
         !entry.replicas.empty();
}

void ModelRegistry::Impl::evict(std::unique_lock<std::mutex>& lock,
                                const std::shared_ptr<Entry>& entry, const std::string& deviceId,
                                const std::string& reason, Released& total) {
  std::vector<Replica> replicas = std::move(entry->replicas);
  entry->replicas.clear();
  const ModelInfo before = snapshotLocked(*entry);
  entry->info.placements.clear();
  entry->info.evicted = true;
  ++entry->info.evictions;
  changed_.notify_all();
  lock.unlock();
  Released released = destroyReplicas(std::move(replicas), "evicted");
  total.releasedBytes += released.releasedBytes;
  total.chargedBytes += released.chargedBytes;
  for (const auto& [device, bytes] : released.chargedByDevice)
    total.chargedByDevice[device] += bytes;
  nlohmann::json details = describe(before);
  details["reason"] = reason;
  details["chargedBytes"] = released.chargedBytes;
  details["releasedBytes"] = released.releasedBytes;
  spdlog::info("model {}:{} evicted ({}): {} bytes charged, {} measured released", before.name,
               before.version, reason, released.chargedBytes, released.releasedBytes);
  publish("model.evicted", "warning", deviceId,
          fmt::format("model {}:{} evicted ({}), {} bytes returned to the ledger", before.name,
                      before.version, reason, released.chargedBytes),
          details);
  lock.lock();
}

std::uint64_t ModelRegistry::Impl::reclaim(const std::string& deviceKey,
                                           std::uint64_t bytesNeeded) {
  if (bytesNeeded == 0) return 0;
  std::string deviceId = deviceKey;
  if (const devices::DeviceView* view = inventory_.snapshot()->find(deviceKey)) {
    deviceId = view->id;
  }
  Released total;
  std::unique_lock lock(mutex_);
  while (total.chargedByDevice[deviceId] < bytesNeeded) {
    std::shared_ptr<Entry> victim;
    for (const auto& [id, entry] : entries_) {
      if (!evictableLocked(*entry)) continue;
      const bool onDevice =
          std::any_of(entry->replicas.begin(), entry->replicas.end(),
                      [&](const Replica& replica) { return replica.target.deviceId == deviceId; });
      if (onDevice && (!victim || entry->lastActive < victim->lastActive)) victim = entry;
    }
    if (!victim) break;
    evict(lock, victim, deviceId,
          fmt::format("memory: {} bytes needed on {}", bytesNeeded, deviceId), total);
  }
  return total.chargedByDevice[deviceId];
}

void ModelRegistry::Impl::evictIdle() {
  const auto now = SteadyClock::now();
  std::unique_lock lock(mutex_);
  while (true) {
    std::shared_ptr<Entry> victim;
    for (const auto& [id, entry] : entries_) {
      const std::chrono::seconds keepAlive =
          entry->info.keepAlive.value_or(options_.defaultKeepAlive);
      if (keepAlive.count() > 0 && evictableLocked(*entry) && now - entry->lastActive > keepAlive) {
        victim = entry;
        break;
      }
    }
    if (!victim) return;
    Released ignored;
    const std::string deviceId = victim->replicas.front().target.deviceId;  // evict() clears it
    evict(lock, victim, deviceId, "keepAlive", ignored);
  }
}

// ---- unload ------------------------------------------------------------------------------------

Result<UnloadResult> ModelRegistry::Impl::unload(const std::string& idOrName,
                                                 const std::string& version) {
  std::unique_lock lock(mutex_);
  Result<std::shared_ptr<Entry>> found = lookupLocked(idOrName, version, Pick::kUnique);
  if (!found.ok()) return found.error();
  return unloadLocked(lock, *found, /*forget=*/true);
}

Result<UnloadResult> ModelRegistry::Impl::unloadLocked(std::unique_lock<std::mutex>& lock,
                                                       std::shared_ptr<Entry> entry, bool forget) {
  const std::string label = entry->info.name + ":" + entry->info.version;
  if (entry->info.state == ModelState::kLoading) {
    return makeError(ErrorCode::kConflict,
                     "model " + label + " is still loading; unload it once it is ready",
                     {{"modelId", entry->info.id}, {"state", "loading"}});
  }
  if (entry->info.state == ModelState::kUnloading) {
    return makeError(ErrorCode::kConflict, "model " + label + " is already being unloaded",
                     {{"modelId", entry->info.id}, {"state", "unloading"}});
  }
  if (forget && entry->holds > 0) {
    return makeError(ErrorCode::kConflict,
                     fmt::format("model {} is held by {} running generation(s); cancel them or "
                                 "wait",
                                 label, entry->holds),
                     {{"modelId", entry->info.id}, {"holds", entry->holds}});
  }
  const ModelState previous = entry->info.state;
  entry->info.state = ModelState::kUnloading;
  changed_.notify_all();
  const bool drained = changed_.wait_for(
      lock, options_.unloadWait, [&] { return entry->info.inFlight == 0 && !entry->reloading; });
  if (!drained) {
    entry->info.state = previous;
    changed_.notify_all();
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("model {} still has {} request(s) in flight after {} ms; try "
                                 "again",
                                 label, entry->info.inFlight, options_.unloadWait.count()),
                     {{"modelId", entry->info.id}, {"inFlight", entry->info.inFlight}});
  }
  std::vector<Replica> replicas = std::move(entry->replicas);
  entry->replicas.clear();
  UnloadResult result;
  result.model = snapshotLocked(*entry);
  lock.unlock();
  Released released = destroyReplicas(std::move(replicas), forget ? "model unloaded" : "shutdown");
  result.releasedBytes = released.releasedBytes;
  result.chargedBytes = released.chargedBytes;
  if (forget && store_) {
    if (Status removed = store_->remove(result.model.id); !removed.ok()) {
      spdlog::error("model {} unloaded but still in the registry database: {}", label,
                    removed.error().message);
    }
  }
  lock.lock();
  entries_.erase(result.model.id);
  const bool pathInUse = std::any_of(entries_.begin(), entries_.end(), [&](const auto& item) {
    return item.second->info.path == result.model.path;
  });
  changed_.notify_all();
  lock.unlock();
  if (forget && entry->request.uploaded && !pathInUse) {
    std::error_code error;
    fs::remove(result.model.path, error);
  }
  nlohmann::json details = describe(result.model);
  details["releasedBytes"] = result.releasedBytes;
  details["chargedBytes"] = result.chargedBytes;
  publish("model.unloaded", "info",
          result.model.placements.empty() ? "" : result.model.placements[0].deviceId,
          fmt::format("model {} unloaded: {} bytes charged, {} measured returned", label,
                      result.chargedBytes, result.releasedBytes),
          details);
  lock.lock();
  return result;
}

}  // namespace deviceops::inference
