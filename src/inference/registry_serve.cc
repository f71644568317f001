// ModelRegistry: inference, listing, uploads, start/stop and the public forwarding functions.
// Locking as described in registry_impl.h.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <set>
#include <system_error>

#include "common/sha256.h"
#include "inference/registry.h"
#include "inference/registry_impl.h"
#include "inference/registry_metrics.h"

namespace deviceops::inference {
namespace fs = std::filesystem;
namespace {

double toSeconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double>(duration).count();
}

std::vector<std::string> specNames(const std::vector<TensorSpec>& specs) {
  std::vector<std::string> names;
  for (const TensorSpec& spec : specs) names.push_back(spec.name);
  return names;
}

// kInvalidArgument naming the tensor when the inputs do not match what the model declares, or an
// asked-for output does not exist.
Status validateRequest(const ModelMetadata& metadata, const std::string& label,
                       const InferRequest& request) {
  const std::vector<std::string> expected = specNames(metadata.inputs);
  std::set<std::string> seen;
  for (const Tensor& tensor : request.inputs) {
    const auto spec = std::find_if(metadata.inputs.begin(), metadata.inputs.end(),
                                   [&](const TensorSpec& s) { return s.name == tensor.name; });
    if (spec == metadata.inputs.end()) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("model {} has no input '{}'; it expects: {}", label, tensor.name,
                                   fmt::join(expected, ", ")),
                       {{"tensor", tensor.name}, {"expectedInputs", expected}});
    }
    if (!seen.insert(tensor.name).second) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("input '{}' is given more than once", tensor.name),
                       {{"tensor", tensor.name}});
    }
    if (Status valid = tensor.validate(); !valid.ok()) return valid;
    if (Status fits = checkAgainstSpec(tensor, *spec); !fits.ok()) return fits;
  }
  for (const std::string& name : expected) {
    if (seen.count(name) == 0) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("input '{}' is missing; model {} expects: {}", name, label,
                                   fmt::join(expected, ", ")),
                       {{"tensor", name}, {"expectedInputs", expected}});
    }
  }
  const std::vector<std::string> outputs = specNames(metadata.outputs);
  for (const std::string& name : request.outputs) {
    if (std::find(outputs.begin(), outputs.end(), name) == outputs.end()) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("model {} has no output '{}'; it has: {}", label, name,
                                   fmt::join(outputs, ", ")),
                       {{"tensor", name}, {"expectedOutputs", outputs}});
    }
  }
  return {};
}

// Rows a request carries: the first dimension of the first input when the model declares it
// dynamic (a batch dimension), else 1.
std::uint64_t rowsOf(const ModelMetadata& metadata, const InferRequest& request) {
  if (metadata.inputs.empty() || metadata.inputs[0].shape.empty() ||
      metadata.inputs[0].shape[0] != -1) {
    return 1;
  }
  for (const Tensor& tensor : request.inputs) {
    if (tensor.name == metadata.inputs[0].name && !tensor.shape.empty() && tensor.shape[0] > 0) {
      return static_cast<std::uint64_t>(tensor.shape[0]);
    }
  }
  return 1;
}

}  // namespace

void returnFreedHeapToTheSystem() { malloc_trim(0); }

// ---- start / stop ------------------------------------------------------------------------------

Status ModelRegistry::Impl::start() {
  {
    std::lock_guard lock(mutex_);
    if (started_ || stopping_) {
      return makeError(ErrorCode::kConflict, "the model registry was started already");
    }
    started_ = true;
  }
  if (!options_.databaseFile.empty()) {
    Result<std::unique_ptr<RegistryStore>> opened = RegistryStore::open(options_.databaseFile);
    if (!opened.ok()) return opened.error();
    Result<std::vector<PersistedModel>> rows = (*opened)->list();
    if (!rows.ok()) return rows.error();
    {
      std::lock_guard lock(mutex_);
      store_ = std::move(opened.value());
    }
    for (const PersistedModel& row : *rows) {
      Result<LoadRequest> decoded = decodeLoadOptions(row.optionsJson);
      LoadRequest request = decoded.ok() ? *decoded : LoadRequest{};
      request.name = row.name;
      request.version = row.version;
      request.path = row.path;
      request.persist = true;
      request.pinned = row.pinned;
      Result<ModelInfo> loaded =
          decoded.ok() ? load(request, row.id, /*keepFailed=*/true) : decoded.error();
      if (loaded.ok()) continue;
      spdlog::warn("persisted model {}:{} not loaded: {}", row.name, row.version,
                   loaded.error().message);
      std::lock_guard lock(mutex_);
      if (entries_.count(row.id) > 0) continue;  // kept as kFailed by load()
      Prepared prepared;
      prepared.request = request;
      prepared.file = row.path;
      prepared.sha256 = row.sha256;
      prepared.sizeBytes = row.sizeBytes;
      std::shared_ptr<Entry> entry = newEntryLocked(prepared, row.id);
      entry->info.state = ModelState::kFailed;
      entry->info.stateReason = loaded.error().message;
    }
  }
  memory_.setReclaimer([this](const std::string& deviceId, std::uint64_t bytesNeeded) {
    return reclaim(deviceId, bytesNeeded);
  });
  std::lock_guard lock(mutex_);
  reclaimerInstalled_ = true;
  keeper_ = std::thread([this] {
    std::unique_lock keeperLock(mutex_);
    while (!stopping_) {
      keeperWake_.wait_for(keeperLock, options_.idleCheckInterval, [this] { return stopping_; });
      if (stopping_) break;
      keeperLock.unlock();
      evictIdle();
      keeperLock.lock();
    }
  });
  return {};
}

void ModelRegistry::Impl::stop() {
  bool reclaimer = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    reclaimer = reclaimerInstalled_;
  }
  if (reclaimer) memory_.setReclaimer({});
  keeperWake_.notify_all();
  if (keeper_.joinable()) keeper_.join();
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] {
    return std::none_of(entries_.begin(), entries_.end(), [](const auto& item) {
      return item.second->info.state == ModelState::kLoading || item.second->reloading;
    });
  });
  while (!entries_.empty()) {
    std::shared_ptr<Entry> entry = entries_.begin()->second;
    Result<UnloadResult> unloaded = unloadLocked(lock, entry, /*forget=*/false);
    if (unloaded.ok() || entries_.count(entry->info.id) == 0) continue;
    // Requests still running after unloadWait: drop our references (the runners live until
    // those requests finish) and return the ledger charges.
    spdlog::warn("model {}:{} unloaded with {} request(s) still running", entry->info.name,
                 entry->info.version, entry->info.inFlight);
    std::vector<Replica> replicas = std::move(entry->replicas);
    entry->replicas.clear();
    entry->info.state = ModelState::kUnloading;
    entries_.erase(entry->info.id);
    lock.unlock();
    destroyReplicas(std::move(replicas), "shutdown");
    lock.lock();
  }
}

// ---- uploads, listing --------------------------------------------------------------------------

Result<ModelInfo> ModelRegistry::Impl::loadUploadFile(const fs::path& received,
                                                      LoadRequest request) {
  std::error_code error;
  // Whatever happens below, the received file does not stay under its temporary name.
  struct RemoveReceived {
    const fs::path& path;
    ~RemoveReceived() {
      std::error_code ignored;
      fs::remove(path, ignored);
    }
  } removeReceived{received};
  if (options_.uploadDirectory.empty()) {
    return makeError(ErrorCode::kUnavailable, "model uploads are not configured on this node");
  }
  const std::uint64_t size = fs::file_size(received, error);
  if (error) return makeError(ErrorCode::kInvalidArgument, "the model upload could not be read");
  if (size > options_.maxUploadBytes) {
    return makeError(ErrorCode::kPayloadTooLarge,
                     fmt::format("the model upload is {} bytes; the limit is {} bytes", size,
                                 options_.maxUploadBytes),
                     {{"sizeBytes", size}, {"maxUploadBytes", options_.maxUploadBytes}});
  }
  if (size == 0) return makeError(ErrorCode::kInvalidArgument, "the model upload is empty");
  Result<std::string> digest = sha256File(received);
  if (!digest.ok()) return digest.error();
  fs::create_directories(options_.uploadDirectory, error);
  const fs::path file = options_.uploadDirectory / (*digest + ".onnx");
  if (!fs::exists(file, error)) {
    // Same file system (both under the data directory): the rename is atomic and copies nothing.
    fs::rename(received, file, error);
    if (error) {
      return makeError(ErrorCode::kUnavailable,
                       "the model upload could not be stored: " + error.message());
    }
  }
  if (request.name.empty()) request.name = "upload-" + digest->substr(0, 12);
  request.path = file;
  request.uploaded = true;
  Result<ModelInfo> loaded = load(request);
  if (!loaded.ok()) {
    std::lock_guard lock(mutex_);
    const fs::path canonical = fs::weakly_canonical(file, error);
    const bool inUse = std::any_of(entries_.begin(), entries_.end(), [&](const auto& item) {
      return item.second->info.path == canonical.string();
    });
    if (!inUse) fs::remove(file, error);
  }
  return loaded;
}

std::vector<ModelInfo> ModelRegistry::Impl::list() const {
  std::vector<ModelInfo> models;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, entry] : entries_) models.push_back(snapshotLocked(*entry));
  }
  std::sort(models.begin(), models.end(), [](const ModelInfo& a, const ModelInfo& b) {
    if (a.name != b.name) return a.name < b.name;
    return versionLess(a.version, b.version);
  });
  return models;
}

Result<ModelInfo> ModelRegistry::Impl::find(const std::string& idOrName,
                                            const std::string& version) const {
  std::lock_guard lock(mutex_);
  Result<std::shared_ptr<Entry>> found = lookupLocked(idOrName, version, Pick::kNewestReady);
  if (!found.ok()) return found.error();
  return snapshotLocked(**found);
}

// ---- inference ---------------------------------------------------------------------------------

void ModelRegistry::Impl::recordLocked(Entry& entry, const Result<RunResult>* run,
                                       std::chrono::nanoseconds total, std::uint64_t rows) {
  ModelStatistics& statistics = entry.info.statistics;
  if (run != nullptr && run->ok()) {
    const RunResult& result = **run;
    ++statistics.successCount;
    statistics.inferenceCount += rows;
    statistics.queueTotal += result.queueTime;
    statistics.computeTotal += result.computeTime;
    statistics.requestTotal += total;
    statistics.queueSeconds.observe(toSeconds(result.queueTime));
    statistics.computeSeconds.observe(toSeconds(result.computeTime));
    statistics.totalSeconds.observe(toSeconds(total));
    const int batch = std::max(1, result.batchSize);
    entry.executions += 1.0 / batch;
    entry.batchExecutions[batch] += 1.0 / batch;
  } else {
    ++statistics.failureCount;
    statistics.failTotal += total;
  }
  const auto now = std::chrono::system_clock::now();
  statistics.lastInference = now;
  entry.info.lastUsed = now;
  entry.lastActive = SteadyClock::now();
}

Result<InferResult> ModelRegistry::Impl::infer(InferRequest request) {
  const auto received = SteadyClock::now();
  std::unique_lock lock(mutex_);
  if (stopping_) return makeError(ErrorCode::kUnavailable, "the model registry is shutting down");
  Result<std::shared_ptr<Entry>> found =
      lookupLocked(request.model, request.version, Pick::kNewestReady);
  if (!found.ok()) return found.error();
  const std::shared_ptr<Entry> entry = *found;
  const std::string label = entry->info.name + ":" + entry->info.version;
  switch (entry->info.state) {
    case ModelState::kLoading: {
      Error loading =
          makeError(ErrorCode::kUnavailable, "model " + label + " is loading",
                    {{"modelId", entry->info.id}, {"state", "loading"}, {"retryAfterSeconds", 1}});
      loading.retryAfter = std::chrono::seconds(1);
      return loading;
    }
    case ModelState::kUnloading:
      return makeError(ErrorCode::kUnavailable, "model " + label + " is being unloaded",
                       {{"modelId", entry->info.id}, {"state", "unloading"}});
    case ModelState::kFailed:
      return makeError(ErrorCode::kUnavailable,
                       fmt::format("model {} failed to load: {}", label, entry->info.stateReason),
                       {{"modelId", entry->info.id}, {"state", "failed"}});
    case ModelState::kReady:
      break;
  }
  const std::shared_ptr<const ModelMetadata> metadata = entry->metadata;
  ++entry->info.inFlight;
  // Every path below ends here: statistics, and the in-flight count that unload() waits for.
  const auto finish = [&](const Result<RunResult>* run, std::uint64_t rows) {
    if (!lock.owns_lock()) lock.lock();
    recordLocked(*entry, run, SteadyClock::now() - received, rows);
    --entry->info.inFlight;
    changed_.notify_all();
  };
  lock.unlock();

  if (Status valid = validateRequest(*metadata, label, request); !valid.ok()) {
    finish(nullptr, 0);
    return valid.error();
  }
  const std::uint64_t rows = rowsOf(*metadata, request);
  lock.lock();
  if (Status resident = ensureResident(lock, entry, /*force=*/false); !resident.ok()) {
    finish(nullptr, 0);
    return resident.error();
  }
  if (entry->info.state != ModelState::kReady || entry->replicas.empty()) {
    finish(nullptr, 0);
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("model {} is {}", label, modelStateName(entry->info.state)),
                     {{"modelId", entry->info.id}, {"state", modelStateName(entry->info.state)}});
  }
  std::shared_ptr<ModelRunner> runner;
  std::size_t leastBusy = 0;
  for (const Replica& replica : entry->replicas) {
    const std::size_t busy = replica.runner->inFlight();
    if (!runner || busy < leastBusy) {
      runner = replica.runner;
      leastBusy = busy;
    }
  }
  lock.unlock();

  RunRequest run;
  run.inputs = std::move(request.inputs);
  run.outputs = std::move(request.outputs);
  run.control = std::move(request.control);
  Result<RunResult> result = runner->infer(std::move(run));
  runner.reset();  // before inFlight drops: an unload may destroy the runner right after
  finish(&result, rows);
  lock.unlock();
  if (!result.ok()) return result.error();
  InferResult answer;
  answer.modelId = entry->info.id;
  answer.modelName = entry->info.name;
  answer.modelVersion = entry->info.version;
  answer.outputs = std::move(result->outputs);
  answer.run = std::move(result.value());
  answer.run.outputs.clear();
  return answer;
}

Result<std::pair<std::string, std::function<void()>>> ModelRegistry::Impl::hold(
    const std::string& idOrName, const std::string& version) {
  std::unique_lock lock(mutex_);
  if (stopping_) return makeError(ErrorCode::kUnavailable, "the model registry is shutting down");
  ASSIGN_OR_RETURN(const std::shared_ptr<Entry> entry,
                   lookupLocked(idOrName, version, Pick::kNewestReady));
  const std::string label = entry->info.name + ":" + entry->info.version;
  if (entry->info.state != ModelState::kReady) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("model {} is {}", label, modelStateName(entry->info.state)),
                     {{"modelId", entry->info.id}, {"state", modelStateName(entry->info.state)}});
  }
  ++entry->info.inFlight;  // ensureResident's precondition; keeps unload() away meanwhile
  Status resident = ensureResident(lock, entry, /*force=*/true);
  --entry->info.inFlight;
  if (resident.ok()) ++entry->holds;
  changed_.notify_all();
  if (!resident.ok()) return resident.error();
  auto release = [this, entry] {
    std::lock_guard guard(mutex_);
    --entry->holds;
    entry->lastActive = SteadyClock::now();
    changed_.notify_all();
  };
  return std::make_pair(entry->info.id, std::function<void()>(release));
}

// ---- ModelHold ---------------------------------------------------------------------------------

ModelHold::ModelHold(ModelHold&& other) noexcept
    : modelId_(std::move(other.modelId_)), release_(std::exchange(other.release_, nullptr)) {}

ModelHold& ModelHold::operator=(ModelHold&& other) noexcept {
  if (this != &other) {
    release();
    modelId_ = std::move(other.modelId_);
    release_ = std::exchange(other.release_, nullptr);
  }
  return *this;
}

ModelHold::~ModelHold() { release(); }

void ModelHold::release() {
  if (release_) std::exchange(release_, nullptr)();
}

// ---- ModelRegistry -----------------------------------------------------------------------------

ModelRegistry::ModelRegistry(const devices::Inventory& inventory, memory::MemoryService& memory,
                             RegistryOptions options, EventSink& events)
    : impl_(std::make_unique<Impl>(inventory, memory, std::move(options), events)) {}

ModelRegistry::~ModelRegistry() = default;

Status ModelRegistry::start() { return impl_->start(); }
void ModelRegistry::stop() { impl_->stop(); }
Result<ModelInfo> ModelRegistry::load(const LoadRequest& request) { return impl_->load(request); }
const RegistryOptions& ModelRegistry::options() const { return impl_->options(); }

Result<ModelInfo> ModelRegistry::loadUploadFile(const std::filesystem::path& received,
                                                LoadRequest request) {
  return impl_->loadUploadFile(received, std::move(request));
}
Result<UnloadResult> ModelRegistry::unload(const std::string& idOrName,
                                           const std::string& version) {
  return impl_->unload(idOrName, version);
}
std::vector<ModelInfo> ModelRegistry::list() const { return impl_->list(); }
Result<ModelInfo> ModelRegistry::find(const std::string& idOrName,
                                      const std::string& version) const {
  return impl_->find(idOrName, version);
}
Result<InferResult> ModelRegistry::infer(InferRequest request) {
  return impl_->infer(std::move(request));
}
Result<ModelHold> ModelRegistry::hold(const std::string& idOrName, const std::string& version) {
  ASSIGN_OR_RETURN(auto held, impl_->hold(idOrName, version));
  ModelHold result;
  result.modelId_ = std::move(held.first);
  result.release_ = std::move(held.second);
  return result;
}

std::uint64_t ModelRegistry::reclaim(const std::string& deviceId, std::uint64_t bytesNeeded) {
  return impl_->reclaim(deviceId, bytesNeeded);
}
void ModelRegistry::writeMetrics(std::string& out) const {
  writeRegistryMetrics(impl_->list(), out);
}

}  // namespace deviceops::inference
