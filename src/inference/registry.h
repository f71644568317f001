// ModelRegistry: the models this node serves — what they are, where they are placed, what they
// hold, and how they have been used.
//
// - load(): a file inside the configured model roots (symlinks resolved first; outside -> 403
//   kPermissionDenied) or an uploaded file already written under the upload directory. The
//   model is inspected, placed (the device with the most available ledger budget, or the pinned
//   devices, `replicas` of them), its ModelRunners created and warmed up, and the memory that
//   took (driver/RSS delta across load + warm-up, at least the file size) charged to the ledger
//   as kind "model". If it does not fit, idle unpinned models are evicted least-recently-used
//   first until it does, or the load is refused with the numbers (kResourceExhausted/kConflict).
// - States loading | ready | unloading | failed (with reason); a model whose runners were
//   evicted stays registered ("evicted": true) and, if autoReload, is reloaded by the next infer
//   — one reload at a time per model, concurrent requests wait for it instead of racing.
// - infer(): validates inputs against the model's specs (kInvalidArgument naming the tensor),
//   picks the least-busy replica, records statistics (counts, queue/compute/total latency
//   histograms, batch sizes).
// - unload(): waits for in-flight requests, destroys the runners, releases the ledger charge,
//   and reports how many bytes were actually returned (measured).
// - Models loaded with persist=true are stored (SQLite in the data directory) and loaded again
//   by start().
// - reclaim(): the MemoryService calls it when a raw allocation does not fit; evicts LRU idle
//   unpinned models on that device and returns the bytes freed.
//
// Thread-safety: every public method may be called concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/events.h"
#include "common/result.h"
#include "devices/inventory.h"
#include "inference/runner.h"
#include "memory/memory_service.h"

namespace deviceops::inference {

using SystemTime = std::chrono::system_clock::time_point;

struct RegistryOptions {
  std::vector<std::filesystem::path> modelRoots;  // load paths must resolve inside one
  std::filesystem::path uploadDirectory;          // uploads land here (inside the data dir)
  // Folders the daemon's own components write models into (patched custom VAEs); loadable only
  // through LoadRequest::managed, never by a client's path.
  std::vector<std::filesystem::path> managedRoots;
  std::filesystem::path databaseFile;  // registry persistence (SQLite)
  std::uint64_t maxUploadBytes = 2ull << 30;
  bool autoReload = true;                    // infer on an evicted model reloads it
  std::chrono::seconds defaultKeepAlive{0};  // 0: never unloaded for idleness
  int defaultInstances = 1;
  std::size_t maxQueue = 256;
  // How often the keep-alive thread looks for idle models (started by start()).
  std::chrono::milliseconds idleCheckInterval{1000};
  // unload() waits at most this long for in-flight requests before giving up (kUnavailable).
  std::chrono::milliseconds unloadWait{30000};
};

struct LoadRequest {
  std::string name;  // unique with version; defaults to the file stem
  std::string version = "1";
  std::filesystem::path path;        // as the client gave it
  bool uploaded = false;             // path is a file we wrote under uploadDirectory
  bool managed = false;              // path is a file a component wrote under managedRoots
  std::vector<std::string> devices;  // pin to these (ids, UUIDs or PCI ids); empty: placement
  int replicas = 1;                  // on how many devices (ignored when devices are given)
  RunnerOptions runner;
  bool persist = false;
  bool pinned = false;  // never evicted
  std::optional<std::chrono::seconds> keepAlive;
  std::string owner = "anonymous";
  // The execution provider the client asked for; empty: chosen from the device type (cpu ->
  // cpu, nvidia -> cuda). runner.session.provider other than cpu also counts as asked for; a
  // device that cannot run the asked-for provider is kInvalidArgument.
  std::optional<Provider> provider;
  // Bytes the client expects the model to need per device: the ledger charge is at least this
  // (and at least the measured delta and the file size).
  std::optional<std::uint64_t> memoryBytes;
};

enum class ModelState { kLoading, kReady, kUnloading, kFailed };
std::string_view modelStateName(ModelState state);

struct Placement {
  std::string deviceId;
  std::string provider;
  int instances = 1;
  std::uint64_t chargedBytes = 0;  // in the ledger
  std::string allocationId;        // the ledger record
};

// Cumulative latency histogram (Prometheus-style buckets in seconds).
struct Histogram {
  std::vector<double> bounds;         // upper bounds, ascending; +Inf implicit
  std::vector<std::uint64_t> counts;  // per bucket (not cumulative), size bounds.size() + 1
  double sum = 0;
  std::uint64_t count = 0;
  void observe(double value);
};

struct ModelStatistics {
  std::uint64_t successCount = 0;
  std::uint64_t failureCount = 0;
  std::uint64_t executionCount = 0;  // runs of the model (a batch counts once)
  std::uint64_t inferenceCount = 0;  // rows/requests served
  std::chrono::nanoseconds queueTotal{0}, computeTotal{0}, requestTotal{0}, failTotal{0};
  Histogram queueSeconds, computeSeconds, totalSeconds;
  std::map<int, std::uint64_t> batchSizes;  // batch size -> executions
  std::optional<SystemTime> lastInference;
};

struct ModelInfo {
  std::string id;  // "model-" + 16 hex
  std::string name;
  std::string version;
  std::string path;  // resolved file
  std::string sha256;
  std::uint64_t sizeBytes = 0;
  ModelMetadata metadata;
  ModelState state = ModelState::kLoading;
  std::string stateReason;
  bool evicted = false;
  bool pinned = false;
  bool persist = false;
  std::optional<std::chrono::seconds> keepAlive;
  RunnerOptions runner;
  std::vector<Placement> placements;
  SystemTime loadedAt;
  std::optional<SystemTime> lastUsed;
  ModelStatistics statistics;
  std::size_t inFlight = 0;
  std::size_t holds = 0;        // ModelHolds outstanding (running generations): not evictable
  std::uint64_t evictions = 0;  // times its runners were evicted (memory or keep-alive)
  std::uint64_t reloads = 0;    // times they were created again after an eviction
};

struct UnloadResult {
  ModelInfo model;
  std::uint64_t releasedBytes = 0;  // measured: driver/RSS before minus after
  std::uint64_t chargedBytes = 0;   // what the ledger held for it
};

struct InferRequest {
  std::string model;    // id or name
  std::string version;  // empty: the newest ready version
  std::vector<Tensor> inputs;
  std::vector<std::string> outputs;  // empty: all
  RunControl control;
};

struct InferResult {
  std::string modelId, modelName, modelVersion;
  std::vector<Tensor> outputs;
  RunResult run;
};

// Keeps one model resident while it exists: a held model is neither evicted (memory pressure,
// keep-alive) nor unloaded (kConflict). Move-only; releasing (destruction or release()) makes it
// evictable again and counts as use for LRU. Must not outlive the registry that gave it.
class ModelHold {
 public:
  ModelHold() = default;
  ModelHold(ModelHold&& other) noexcept;
  ModelHold& operator=(ModelHold&& other) noexcept;
  ModelHold(const ModelHold&) = delete;
  ModelHold& operator=(const ModelHold&) = delete;
  ~ModelHold();

  const std::string& modelId() const { return modelId_; }
  void release();

 private:
  friend class ModelRegistry;
  std::string modelId_;
  std::function<void()> release_;
};

class ModelRegistry {
 public:
  ModelRegistry(const devices::Inventory& inventory, memory::MemoryService& memory,
                RegistryOptions options, EventSink& events);
  ~ModelRegistry();

  // Opens the database and reloads persisted models (failures are logged and kept as kFailed),
  // installs reclaim() as the MemoryService's reclaimer and starts the keep-alive thread.
  Status start();
  // Removes the reclaimer, stops the keep-alive thread, waits for loads in progress and unloads
  // everything (persisted models stay in the database). Later loads are kUnavailable.
  void stop();

  Result<ModelInfo> load(const LoadRequest& request);
  // Stores an upload the HTTP server streamed to `received` (a file on the same file system as
  // uploadDirectory): hashed, renamed to <uploadDirectory>/<sha256>.onnx, loaded. `received` is
  // gone afterwards in every case. Over maxUploadBytes: kPayloadTooLarge.
  Result<ModelInfo> loadUploadFile(const std::filesystem::path& received, LoadRequest request);
  Result<UnloadResult> unload(const std::string& idOrName, const std::string& version = "");
  std::vector<ModelInfo> list() const;
  Result<ModelInfo> find(const std::string& idOrName, const std::string& version = "") const;
  Result<InferResult> infer(InferRequest request);
  // Holds a ready model resident (reloading it first if it was evicted, even when autoReload is
  // off). kNotFound for an unknown model, kUnavailable when it is loading/unloading/failed or
  // the reload fails.
  Result<ModelHold> hold(const std::string& idOrName, const std::string& version = "");
  // Evicts idle unpinned models on `deviceId` (LRU first) until `bytesNeeded` are freed or
  // none is left; returns the bytes freed.
  std::uint64_t reclaim(const std::string& deviceId, std::uint64_t bytesNeeded);

  // Prometheus text for per-model metrics (deviceops_inference_*).
  void writeMetrics(std::string& out) const;
  // As constructed: the model roots, defaults, limits.
  const RegistryOptions& options() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace deviceops::inference
