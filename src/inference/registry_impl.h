// ModelRegistry::Impl: the registry's state and its internal operations (internal header). Split:
// registry.cc (loading, reloads), registry_eviction.cc (eviction, unloading), registry_serve.cc
// (inference, start/stop, uploads, listing, the public class).
//
// Locking:
// - mutex_ guards entries_, started_, stopping_ and every Entry's fields except `metadata`
//   (set before the entry turns ready, never changed afterwards) and `request` and the
//   identity fields of `info` (id, name, version, path: fixed at creation). store_ is set by
//   start() before any load and not changed until destruction.
// - changed_ (with mutex_) is notified whenever an entry's state, inFlight or reloading changes.
// - measureMutex_ (recursive: a load may evict on the same thread) serialises creating and
//   destroying runners, so RSS/driver deltas belong to one model. Taken before mutex_, never
//   while holding it.
// No runner is created, run or destroyed with mutex_ held.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "inference/registry.h"
#include "inference/registry_placement.h"
#include "inference/registry_store.h"

namespace deviceops::inference {

using SteadyClock = std::chrono::steady_clock;

// Gives memory freed by destroyed sessions back to the OS (malloc_trim), so RSS deltas show it.
void returnFreedHeapToTheSystem();

class ModelRegistry::Impl {
 public:
  Impl(const devices::Inventory& inventory, memory::MemoryService& memory, RegistryOptions options,
       EventSink& events);
  ~Impl();

  Status start();
  void stop();
  // fixedId: keep this id (a persisted model); keepFailed: a failure stays listed as kFailed.
  Result<ModelInfo> load(const LoadRequest& request, std::optional<std::string> fixedId = {},
                         bool keepFailed = false);
  Result<ModelInfo> loadUploadFile(const std::filesystem::path& received, LoadRequest request);
  Result<UnloadResult> unload(const std::string& idOrName, const std::string& version);
  std::vector<ModelInfo> list() const;
  Result<ModelInfo> find(const std::string& idOrName, const std::string& version) const;
  Result<InferResult> infer(InferRequest request);
  // Counts a hold on the entry; returns the function that releases it.
  Result<std::pair<std::string, std::function<void()>>> hold(const std::string& idOrName,
                                                             const std::string& version);
  std::uint64_t reclaim(const std::string& deviceId, std::uint64_t bytesNeeded);
  const RegistryOptions& options() const { return options_; }

 private:
  struct Replica {
    PlacementTarget target;
    Placement placement;
    std::shared_ptr<ModelRunner> runner;
  };

  struct Entry {
    ModelInfo info;       // what list()/find() show; statistics accumulate here
    LoadRequest request;  // as loaded, path resolved: what a reload repeats
    std::shared_ptr<const ModelMetadata> metadata;
    std::vector<Replica> replicas;  // empty while loading, evicted or being torn down
    bool reloading = false;
    std::size_t holds = 0;  // ModelHolds outstanding
    std::uint64_t reloadGeneration = 0;
    std::optional<Error> lastReloadError;
    double executions = 0;                  // a request in a batch of n counts 1/n
    std::map<int, double> batchExecutions;  // batch size -> executions (same weighting)
    SteadyClock::time_point lastActive;     // last load, reload or finished request (LRU)
  };

  struct Prepared {
    LoadRequest request;  // name defaulted, path resolved
    std::filesystem::path file;
    std::string sha256;
    std::uint64_t sizeBytes = 0;
  };

  struct Released {
    std::uint64_t releasedBytes = 0;  // measured
    std::uint64_t chargedBytes = 0;   // what the ledger held
    std::map<std::string, std::uint64_t> chargedByDevice;
  };

  enum class Pick { kNewestReady, kUnique };

  static bool versionLess(const std::string& a, const std::string& b);
  static nlohmann::json describe(const ModelInfo& info);

  Result<std::shared_ptr<Entry>> lookupLocked(const std::string& idOrName,
                                              const std::string& version, Pick pick) const;
  ModelInfo snapshotLocked(const Entry& entry) const;
  void publish(std::string type, std::string severity, std::string deviceId, std::string message,
               nlohmann::json details);

  Result<Prepared> prepare(LoadRequest request) const;
  std::shared_ptr<Entry> newEntryLocked(const Prepared& prepared,
                                        std::optional<std::string> fixedId);
  void installLocked(Entry& entry, std::vector<Replica> replicas);
  // Places, creates, warms up, measures and charges one runner per device; on failure
  // everything it made is undone. Takes measureMutex_; call without mutex_.
  Result<std::vector<Replica>> createReplicas(const std::string& modelId,
                                              const LoadRequest& request,
                                              const std::filesystem::path& file,
                                              std::uint64_t fileBytes);
  // Destroys the runners (measuring the bytes returned) and releases their ledger charges.
  Released destroyReplicas(std::vector<Replica> replicas, const std::string& reason);
  // Precondition: lock held, the caller counted itself in entry->info.inFlight. Reloads an
  // evicted entry (once, others wait for it); force: even when autoReload is off.
  Status ensureResident(std::unique_lock<std::mutex>& lock, const std::shared_ptr<Entry>& entry,
                        bool force);
  bool evictableLocked(const Entry& entry) const;
  // Precondition: lock held and evictableLocked(*entry). Unlocks while tearing down; relocks.
  void evict(std::unique_lock<std::mutex>& lock, const std::shared_ptr<Entry>& entry,
             const std::string& deviceId, const std::string& reason, Released& total);
  void evictIdle();
  // forget: also remove it from the database (an unload, not a shutdown). Returns with lock held.
  Result<UnloadResult> unloadLocked(std::unique_lock<std::mutex>& lock,
                                    std::shared_ptr<Entry> entry, bool forget);
  void recordLocked(Entry& entry, const Result<RunResult>* run, std::chrono::nanoseconds total,
                    std::uint64_t rows);

  const devices::Inventory& inventory_;
  memory::MemoryService& memory_;
  const RegistryOptions options_;
  EventSink& events_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;  // by id
  std::unique_ptr<RegistryStore> store_;
  bool started_ = false;
  bool stopping_ = false;
  bool reclaimerInstalled_ = false;
  std::recursive_mutex measureMutex_;

  std::thread keeper_;                  // keep-alive: evicts idle models
  std::condition_variable keeperWake_;  // with mutex_
};

}  // namespace deviceops::inference
