#include "training/job_manager.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <thread>

#include "common/sha256.h"
#include "training/job_live.h"
#include "training/trainer_process.h"

namespace deviceops::training {
namespace {

constexpr std::uint64_t kTrainerBaselineBytes = 256ull << 20;  // libtorch process, allocator

std::string newJobId() {
  static thread_local std::mt19937_64 generator{std::random_device{}()};
  return fmt::format("job-{:012x}", generator() & 0xffffffffffffull);
}

// Activation elements of one sample through the built-in layers (forward + the kept copies).
std::int64_t activationsPerSample(const ModelSpec& model) {
  if (!model.builtIn()) return model.inputs * 8;
  std::int64_t total = model.inputs, channels = 0, height = 0, width = 0;
  for (const Layer& layer : buildLayers(model)) {
    switch (layer.kind) {
      case LayerKind::kReshape:
        channels = layer.shape[0], height = layer.shape[1], width = layer.shape[2];
        break;
      case LayerKind::kConv2d:
        channels = layer.out;
        height = (height + 2 * layer.padding - layer.kernel) / layer.stride + 1;
        width = (width + 2 * layer.padding - layer.kernel) / layer.stride + 1;
        total += channels * height * width;
        break;
      case LayerKind::kMaxPool2d:
        height /= layer.kernel, width /= layer.kernel;
        total += channels * height * width;
        break;
      case LayerKind::kLinear:
        total += layer.out;
        break;
      default:
        total += layer.out > 0 ? layer.out : channels * height * width;
        break;
    }
  }
  return total;
}

}  // namespace

std::uint64_t JobManager::estimateMemoryBytes(const JobSpec& spec, std::uint64_t datasetBytes) {
  const auto ranks = static_cast<std::int64_t>(std::max<std::size_t>(spec.devices.size(), 1));
  const std::int64_t parameters =
      spec.model.builtIn() ? parameterCount(spec.model) : spec.model.inputs * 1024;
  const std::int64_t optimizerSlots =
      spec.optimizer.type == "sgd" ? (spec.optimizer.momentum > 0 ? 1 : 0) : 2;
  const std::int64_t localBatch = (spec.batchSize + ranks - 1) / ranks;
  const std::int64_t batchForEval = std::max<std::int64_t>(localBatch, 1024);
  const std::uint64_t bytes =
      datasetBytes + static_cast<std::uint64_t>(parameters) * 4 * (2 + optimizerSlots) +
      static_cast<std::uint64_t>(batchForEval * activationsPerSample(spec.model)) * 4 * 3 +
      kTrainerBaselineBytes;
  return bytes;
}

Result<std::unique_ptr<JobManager>> JobManager::open(TrainingOptions options,
                                                     DatasetCatalog& datasets,
                                                     const devices::Inventory& inventory,
                                                     memory::MemoryService* memory,
                                                     EventSink& events) {
  const std::filesystem::path root = options.dataDir / "training";
  std::error_code error;
  std::filesystem::create_directories(root / "jobs", error);
  if (error) {
    return makeError(
        ErrorCode::kUnavailable,
        fmt::format("cannot create {}: {}", (root / "jobs").string(), error.message()));
  }
  Result<std::unique_ptr<JobStore>> store = JobStore::open(root / "jobs.db");
  if (!store.ok()) return store.error();
  std::unique_ptr<JobManager> manager(new JobManager(std::move(options), datasets, inventory,
                                                     memory, events, std::move(store.value())));
  if (Status status = manager->recover(); !status.ok()) return status.error();
  datasets.setInUseCheck(
      [raw = manager.get()](const std::string& id) { return raw->jobsUsingDataset(id); });
  return manager;
}

JobManager::JobManager(TrainingOptions options, DatasetCatalog& datasets,
                       const devices::Inventory& inventory, memory::MemoryService* memory,
                       EventSink& events, std::unique_ptr<JobStore> store)
    : options_(std::move(options)),
      datasets_(datasets),
      inventory_(inventory),
      memory_(memory),
      events_(events),
      store_(std::move(store)) {}

JobManager::~JobManager() {
  stop();
  datasets_.setInUseCheck(nullptr);
}

Status JobManager::recover() {
  Result<std::vector<JobRecord>> stored = store_->list();
  if (!stored.ok()) return stored.error();
  std::vector<JobRecord> loaded = std::move(stored).value();
  std::lock_guard lock(mutex_);
  for (JobRecord& job : loaded) {
    live_[job.id] = std::make_shared<Live>();
    if (isActive(job.state)) {
      job.allocationIds.clear();  // the ledger released them at its own restart
      transition(job, JobState::kInterrupted,
                 fmt::format("the daemon stopped while the job was {}; resumable from step {}",
                             jobStateName(job.state), job.progress.lastCheckpointStep.value_or(0)));
    }
    if (job.state == JobState::kQueued) queue_.push_back(job.id);
    const std::string id = job.id;
    jobs_.emplace(id, std::move(job));
  }
  for (auto& [id, job] : jobs_) {
    if (options_.autoResume && job.state == JobState::kInterrupted && hasValidCheckpoint(id)) {
      job.resumeNext = true;
      transition(job, JobState::kQueued, "resumed automatically after a daemon restart");
      queue_.push_back(id);
    }
    if (Status status = persist(job); !status.ok()) return status;
  }
  schedule();
  return Status::success();
}

Status JobManager::persist(const JobRecord& job) { return store_->put(job); }

void JobManager::transition(JobRecord& job, JobState state, std::string reason) {
  job.state = state;
  job.transitions.push_back({state, std::chrono::system_clock::now(), reason});
  if (state != JobState::kQueued) job.waitingReason.clear();
  if (Status status = persist(job); !status.ok()) {
    spdlog::error("training: cannot record job {} as {}: {}", job.id, jobStateName(state),
                  status.error().message);
  }
  publish(job.id, "state",
          {{"state", jobStateName(state)}, {"reason", reason}, {"step", job.progress.step}});
  Event event;
  event.type = fmt::format("training.{}", jobStateName(state));
  event.deviceId = job.deviceIds.empty() ? "" : job.deviceIds.front();
  event.severity = state == JobState::kFailed        ? "error"
                   : state == JobState::kInterrupted ? "warning"
                                                     : "info";
  event.message = fmt::format("training job {} {}: {}", job.id, jobStateName(state), reason);
  event.details = {{"jobId", job.id}, {"state", jobStateName(state)}, {"attempt", job.attempt}};
  events_.publish(std::move(event));
}

void JobManager::publish(const std::string& jobId, std::string type, nlohmann::json data) {
  auto it = live_.find(jobId);
  if (it == live_.end()) return;
  Live& live = *it->second;
  live.backlog.push_back({++live.sequence, std::move(type), std::move(data)});
  while (live.backlog.size() > options_.eventBacklog) live.backlog.pop_front();
  changed_.notify_all();
}

Status JobManager::resolve(JobSpec& spec, std::vector<std::string>& deviceIds,
                           std::vector<std::string>& trainerDevices,
                           std::uint64_t& datasetBytes) const {
  Result<DatasetInfo> dataset = datasets_.get(spec.dataset);
  if (!dataset.ok()) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("dataset: \"{}\" not found (GET /api/training/data lists them)", spec.dataset));
  }
  if (dataset->state != "ready") {
    return makeError(ErrorCode::kConflict,
                     fmt::format("dataset \"{}\" is {}: upload its missing part first",
                                 dataset->name, dataset->state));
  }
  const DatasetSchema& schema = dataset->schema;
  if (spec.task == Task::kClassification && schema.classes.empty()) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("task: dataset \"{}\" has no classes (more than 1024 distinct "
                                 "labels); use task \"regression\"",
                                 dataset->name));
  }
  if (spec.task == Task::kRegression && !schema.numericLabels) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("task: dataset \"{}\" has non-numeric labels; use task "
                                 "\"classification\"",
                                 dataset->name));
  }
  spec.dataset = dataset->id;
  spec.datasetPath = dataset->path;
  spec.model.inputs = schema.features;
  spec.model.outputs =
      spec.task == Task::kClassification ? static_cast<std::int64_t>(schema.classes.size()) : 1;
  if (spec.model.builtIn()) {
    if (Status status = validateModelSpec(spec.model); !status.ok()) return status;
  }
  std::error_code error;
  datasetBytes = std::filesystem::file_size(dataset->path, error);
  if (error) datasetBytes = 0;

  const auto snapshot = inventory_.snapshot();
  deviceIds.clear();
  trainerDevices.clear();
  for (const std::string& requested : spec.devices) {
    const devices::DeviceView* device = nullptr;
    if (requested == "cpu") {
      for (const auto& candidate : snapshot->devices) {
        if (candidate.record.type == devices::DeviceType::kCpu) device = &candidate;
      }
    } else {
      device = snapshot->find(requested);
    }
    if (device == nullptr) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("devices: \"{}\" is not a device of this node", requested));
    }
    if (device->record.type == devices::DeviceType::kCpu) {
      trainerDevices.emplace_back("cpu");
    } else if (device->record.backend == "nvidia") {
      trainerDevices.push_back("cuda:" + device->record.localKey);
    } else {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("devices: \"{}\" is a {} device; training runs on the CPU and "
                                   "on NVIDIA GPUs (CUDA)",
                                   requested, device->record.backend));
    }
    deviceIds.push_back(device->id);
  }
  if (spec.threads == 0) {
    const auto cpuRanks = static_cast<unsigned>(
        std::count(trainerDevices.begin(), trainerDevices.end(), std::string("cpu")));
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    spec.threads = static_cast<int>(std::max(1u, cpuRanks > 0 ? cores / cpuRanks : cores));
  }
  return Status::success();
}

Result<JobRecord> JobManager::submit(JobSpec spec, const std::string& owner) {
  JobRecord job;
  std::uint64_t datasetBytes = 0;
  if (Status status = resolve(spec, job.deviceIds, job.trainerDevices, datasetBytes);
      !status.ok()) {
    return status.error();
  }
  job.memoryBytesPerRank = spec.memoryBytes.value_or(estimateMemoryBytes(spec, datasetBytes));
  if (memory_ != nullptr) {
    std::map<std::string, std::uint64_t> perDevice;
    for (const std::string& id : job.deviceIds) perDevice[id] += job.memoryBytesPerRank;
    for (const auto& [deviceId, bytes] : perDevice) {
      Result<memory::DeviceMemoryStatus> status = memory_->status(deviceId);
      if (status.ok() && status->budgetBytes > 0 && bytes > status->budgetBytes) {
        return makeError(
            ErrorCode::kResourceExhausted,
            fmt::format("the job needs {} bytes on {} but its whole training budget "
                        "is {} bytes; lower batchSize or the model size",
                        bytes, deviceId, status->budgetBytes),
            {{"deviceId", deviceId}, {"neededBytes", bytes}, {"budgetBytes", status->budgetBytes}});
      }
    }
  }
  job.id = newJobId();
  job.owner = owner;
  job.createdAt = std::chrono::system_clock::now();
  spec.workDir = (options_.dataDir / "training" / "jobs" / job.id).string();
  job.spec = std::move(spec);
  job.progress.epochs = job.spec.epochs;
  std::error_code error;
  std::filesystem::create_directories(std::filesystem::path(job.spec.workDir) / "logs", error);
  if (error) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("cannot create {}: {}", job.spec.workDir, error.message()));
  }
  std::unique_lock lock(mutex_);
  if (stopping_) return makeError(ErrorCode::kUnavailable, "the daemon is shutting down");
  live_[job.id] = std::make_shared<Live>();
  const std::string id = job.id;
  auto [it, inserted] = jobs_.emplace(id, std::move(job));
  transition(it->second, JobState::kQueued, fmt::format("submitted by {}", owner));
  queue_.push_back(id);
  schedule();
  JobRecord& stored = jobs_.at(id);
  if (!options_.queueWhenFull && stored.state == JobState::kQueued &&
      stored.waitingReason.rfind("memory", 0) == 0) {
    Error refused =
        makeError(ErrorCode::kConflict, fmt::format("the job does not fit now ({}) and [training] "
                                                    "queueWhenFull is false",
                                                    stored.waitingReason));
    queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
    jobs_.erase(id);
    live_.erase(id);
    lock.unlock();
    (void)store_->remove(id);
    std::filesystem::remove_all(options_.dataDir / "training" / "jobs" / id, error);
    return refused;
  }
  return stored;
}

Result<std::vector<std::string>> JobManager::reserve(JobRecord& job) {
  std::vector<std::string> allocations;
  if (memory_ == nullptr) return allocations;
  for (std::size_t rank = 0; rank < job.deviceIds.size(); ++rank) {
    memory::AllocateRequest request;
    request.deviceId = job.deviceIds[rank];
    request.bytes = job.memoryBytesPerRank;
    request.kind = memory::AllocationKind::kTraining;
    request.label = fmt::format("training {} rank {}", job.id, rank);
    request.owner = job.owner;
    request.accountOnly = true;
    Result<memory::AllocateResult> result = memory_->allocate(request);
    if (!result.ok()) {
      for (const std::string& id : allocations) (void)memory_->release(id, "training not started");
      return result.error();
    }
    allocations.push_back(result->record.id);
  }
  return allocations;
}

void JobManager::releaseReservations(JobRecord& job) {
  if (memory_ != nullptr) {
    for (const std::string& id : job.allocationIds) (void)memory_->release(id, "training ended");
  }
  job.allocationIds.clear();
}

void JobManager::schedule() {
  if (stopping_) return;
  std::size_t active = 0;
  for (const auto& [id, job] : jobs_) active += isActive(job.state) ? 1 : 0;
  while (!queue_.empty() && active < static_cast<std::size_t>(options_.maxConcurrentJobs)) {
    JobRecord& job = jobs_.at(queue_.front());
    Result<std::vector<std::string>> reserved = reserve(job);
    if (!reserved.ok()) {
      // Strict FIFO: a large job at the head is not overtaken (it would starve).
      const std::string reason = "memory: " + reserved.error().message;
      if (job.waitingReason != reason) {
        job.waitingReason = reason;
        (void)persist(job);
        publish(job.id, "waiting", {{"reason", reason}});
      }
      return;
    }
    queue_.pop_front();
    job.allocationIds = std::move(reserved.value());
    ++job.attempt;
    Live& live = *live_.at(job.id);
    live.resetAttempt();
    transition(job, JobState::kStarting,
               fmt::format("attempt {} on {}", job.attempt, fmt::join(job.deviceIds, ", ")));
    ++active;
    // Detached: a finished thread must not keep its stack until someone joins it; stop() waits
    // for runningMonitors_ to reach 0 instead.
    ++runningMonitors_;
    std::thread([this, id = job.id] { monitor(id); }).detach();
  }
  if (!queue_.empty()) {
    JobRecord& head = jobs_.at(queue_.front());
    const std::string reason = fmt::format("waiting for a slot ({} of {} jobs running)", active,
                                           options_.maxConcurrentJobs);
    if (head.waitingReason.empty()) head.waitingReason = reason;
  }
}

Result<JobRecord> JobManager::stop(const std::string& jobId,
                                   std::optional<std::chrono::milliseconds> grace) {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(jobId);
  if (it == jobs_.end()) return makeError(ErrorCode::kNotFound, "no training job " + jobId);
  JobRecord& job = it->second;
  if (job.state == JobState::kQueued) {
    queue_.erase(std::remove(queue_.begin(), queue_.end(), jobId), queue_.end());
    transition(job, JobState::kStopped, "stopped before it started");
    changed_.notify_all();
    return job;
  }
  if (job.state == JobState::kStopping) return job;
  if (!isActive(job.state)) {
    return makeError(ErrorCode::kConflict,
                     fmt::format("job {} is {}; only queued or running jobs can be stopped", jobId,
                                 jobStateName(job.state)));
  }
  Live& live = *live_.at(jobId);
  live.stopRequested = true;
  live.stopGrace = grace.value_or(options_.stopGrace);
  transition(
      job, JobState::kStopping,
      fmt::format("stop requested; checkpointing (killed after {} ms)", live.stopGrace.count()));
  return job;
}

bool JobManager::hasValidCheckpoint(const std::string& jobId) const {
  const auto it = jobs_.find(jobId);
  if (it == jobs_.end()) return false;
  std::error_code error;
  const std::filesystem::path directory =
      std::filesystem::path(it->second.spec.workDir) / "checkpoints";
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const std::filesystem::path& path = entry.path();
    if (path.extension() == ".pt" &&
        std::filesystem::exists(std::filesystem::path(path.string() + ".sha256"))) {
      return true;
    }
  }
  return false;
}

Result<JobRecord> JobManager::resume(const std::string& jobId) {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(jobId);
  if (it == jobs_.end()) return makeError(ErrorCode::kNotFound, "no training job " + jobId);
  JobRecord& job = it->second;
  if (job.state != JobState::kStopped && job.state != JobState::kInterrupted &&
      job.state != JobState::kFailed) {
    return makeError(ErrorCode::kConflict,
                     fmt::format("job {} is {}; only stopped, interrupted or failed jobs resume",
                                 jobId, jobStateName(job.state)));
  }
  if (!hasValidCheckpoint(jobId)) {
    return makeError(ErrorCode::kConflict,
                     fmt::format("job {} has no checkpoint to resume from; start a new job "
                                 "(resuming would silently start over)",
                                 jobId));
  }
  if (stopping_) return makeError(ErrorCode::kUnavailable, "the daemon is shutting down");
  job.resumeNext = true;
  job.exitCode.reset();
  job.signal.reset();
  job.error.clear();
  job.lastLogLines.clear();
  transition(job, JobState::kQueued, "resume requested");
  queue_.push_back(jobId);
  schedule();
  return job;
}

Result<JobRecord> JobManager::get(const std::string& jobId) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(jobId);
  if (it == jobs_.end()) return makeError(ErrorCode::kNotFound, "no training job " + jobId);
  JobRecord job = it->second;
  return job;
}

std::vector<JobRecord> JobManager::list() const {
  std::lock_guard lock(mutex_);
  std::vector<JobRecord> out;
  for (const auto& [id, job] : jobs_) out.push_back(job);
  std::sort(out.begin(), out.end(),
            [](const JobRecord& a, const JobRecord& b) { return a.createdAt < b.createdAt; });
  return out;
}

Status JobManager::remove(const std::string& jobId) {
  std::filesystem::path directory;
  {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(jobId);
    if (it == jobs_.end()) return makeError(ErrorCode::kNotFound, "no training job " + jobId);
    if (!isEnded(it->second.state)) {
      return makeError(ErrorCode::kConflict, fmt::format("job {} is {}; stop it first", jobId,
                                                         jobStateName(it->second.state)));
    }
    directory = it->second.spec.workDir;
    if (Status removed = store_->remove(jobId); !removed.ok()) return removed;
    jobs_.erase(it);
    live_.erase(jobId);
    changed_.notify_all();
  }
  std::error_code error;
  std::filesystem::remove_all(directory, error);
  return Status::success();
}

std::vector<std::string> JobManager::jobsUsingDataset(const std::string& datasetId) const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [id, job] : jobs_) {
    if (job.spec.dataset == datasetId && job.state != JobState::kCompleted) out.push_back(id);
  }
  return out;
}

Result<EventBatch> JobManager::events(const std::string& jobId, std::uint64_t afterSequence,
                                      std::chrono::milliseconds wait) const {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    auto job = jobs_.find(jobId);
    auto live = live_.find(jobId);
    if (job == jobs_.end() || live == live_.end()) {
      return makeError(ErrorCode::kNotFound, "no training job " + jobId);
    }
    EventBatch batch;
    for (const JobEvent& event : live->second->backlog) {
      if (event.sequence > afterSequence) batch.events.push_back(event);
    }
    batch.ended = isEnded(job->second.state);
    if (!batch.events.empty() || batch.ended) return batch;
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return batch;
  }
}

Result<std::vector<std::string>> JobManager::logs(const std::string& jobId, int rank,
                                                  std::size_t lines) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(jobId);
  if (it == jobs_.end()) return makeError(ErrorCode::kNotFound, "no training job " + jobId);
  if (rank < 0 ||
      static_cast<std::size_t>(rank) >= std::max<std::size_t>(1, it->second.deviceIds.size())) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("rank: must be 0..{}", it->second.deviceIds.size() - 1));
  }
  return tailLines(
      std::filesystem::path(it->second.spec.workDir) / "logs" / fmt::format("rank-{}.log", rank),
      lines);
}

Result<nlohmann::json> JobManager::checkpoints(const std::string& jobId) const {
  std::filesystem::path directory;
  {
    std::lock_guard lock(mutex_);
    auto it = jobs_.find(jobId);
    if (it == jobs_.end()) return makeError(ErrorCode::kNotFound, "no training job " + jobId);
    directory = std::filesystem::path(it->second.spec.workDir) / "checkpoints";
  }
  nlohmann::json out = nlohmann::json::array();
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(directory, error)) {
    const std::filesystem::path& path = entry.path();
    if (path.extension() != ".pt") continue;
    std::ifstream sidecar(path.string() + ".sha256");
    std::string expected;
    sidecar >> expected;
    Result<std::string> actual = sha256File(path);
    const std::string stem = path.stem().string();
    nlohmann::json item = {{"file", path.filename().string()},
                           {"bytes", entry.file_size(error)},
                           {"best", stem == "best"},
                           {"valid", actual.ok() && !expected.empty() && *actual == expected}};
    if (stem.rfind("ckpt-", 0) == 0) item["step"] = std::stoll(stem.substr(5));
    out.push_back(std::move(item));
  }
  std::sort(out.begin(), out.end(), [](const nlohmann::json& a, const nlohmann::json& b) {
    return a.value("step", std::int64_t{-1}) > b.value("step", std::int64_t{-1});
  });
  return out;
}

std::filesystem::path JobManager::jobDirectory(const std::string& jobId) const {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(jobId);
  return it == jobs_.end() ? std::filesystem::path()
                           : std::filesystem::path(it->second.spec.workDir);
}

Status JobManager::setExportedModel(const std::string& jobId, const std::string& modelId) {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(jobId);
  if (it == jobs_.end()) return makeError(ErrorCode::kNotFound, "no training job " + jobId);
  it->second.exportedModelId = modelId;
  return persist(it->second);
}

void JobManager::stop() {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  for (auto& [id, live] : live_) {
    live->shutdown = true;
    if (!live->stopRequested) {
      live->stopRequested = true;
      live->stopGrace = options_.stopGrace;
    }
  }
  changed_.notify_all();
  changed_.wait(lock, [this] { return runningMonitors_ == 0; });
}

}  // namespace deviceops::training
