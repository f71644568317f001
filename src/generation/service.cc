#include "generation/service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>
#include <system_error>

#include "common/atomic_file.h"
#include "common/prometheus.h"
#include "common/time_format.h"
#include "generation/resident_memory.h"

namespace deviceops::generation {
namespace fs = std::filesystem;
namespace {

constexpr std::size_t kMaxEventsPerJob = 20000;

std::string newJobId() {
  static std::mutex mutex;
  static std::mt19937_64 random{std::random_device{}()};
  std::lock_guard lock(mutex);
  return fmt::format("gen-{:012x}", random() & 0xffffffffffffULL);
}

nlohmann::json timeOrNull(const std::optional<std::chrono::system_clock::time_point>& time) {
  return time ? nlohmann::json(formatIso8601(*time)) : nlohmann::json(nullptr);
}

}  // namespace

std::string_view jobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "failed";
}

nlohmann::json toJson(const ResolvedRequest& resolved) {
  const GenerationRequest& r = resolved.request;
  return {{"prompt", r.prompt},
          {"prompt2", r.prompt2},
          {"negativePrompt", r.negativePrompt},
          {"negativePrompt2", r.negativePrompt2},
          {"width", resolved.width},
          {"height", resolved.height},
          {"steps", resolved.steps},
          {"guidance", resolved.guidance},
          {"guidanceRescale", r.guidanceRescale},
          {"scheduler", diffusion::samplerName(r.scheduler)},
          {"timestepSpacing", diffusion::spacingName(resolved.scheduler.spacing)},
          {"seed", resolved.seed},
          {"batch", r.batch},
          {"clipSkip", r.clipSkip},
          {"refiner",
           {{"mode", refinerModeName(resolved.refinerMode)},
            {"denoisingStart", resolved.denoisingStart},
            {"aestheticScore", resolved.aestheticScore},
            {"negativeAestheticScore", resolved.negativeAestheticScore}}},
          {"vae",
           {{"name", resolved.vae},
            {"tiling", tilingModeName(r.vae.tiling)},
            {"tiled", resolved.tiled},
            {"tileSize", resolved.tileLatent * 8},
            {"overlap", resolved.tileOverlap},
            {"slicing", r.vae.slicing}}},
          {"output", r.output == OutputFormat::kPng ? "png" : "latents"},
          {"previewEvery", r.previewEvery},
          {"estimatedBytes", resolved.estimatedBytes}};
}

nlohmann::json toJson(const GenerationJob& job) {
  if (job.restored) return *job.restored;
  nlohmann::json images = nlohmann::json::array();
  for (const JobImage& image : job.images) {
    images.push_back({{"index", image.index},
                      {"seed", image.seed},
                      {"fileName", image.fileName},
                      {"contentType", image.contentType},
                      {"sizeBytes", image.sizeBytes},
                      {"url", fmt::format("/api/generation/{}/images/{}", job.id, image.index)},
                      {"quality", image.quality}});
  }
  nlohmann::json out = {
      {"id", job.id},
      {"suite", job.suiteName},
      {"suiteId", job.suiteId},
      {"state", jobStateName(job.state)},
      {"parameters", toJson(job.request)},
      {"createdAt", formatIso8601(job.createdAt)},
      {"startedAt", timeOrNull(job.startedAt)},
      {"finishedAt", timeOrNull(job.finishedAt)},
      {"progress", {{"stage", job.stage}, {"step", job.step}, {"totalSteps", job.totalSteps}}},
      {"images", images},
      {"report", job.report},
      {"error", nullptr}};
  if (job.error) {
    out["error"] = {{"code", errorCodeName(job.error->code)}, {"message", job.error->message}};
  }
  return out;
}

GenerationService::GenerationService(SuiteManager& suites, inference::ModelRegistry& registry,
                                     GenerationOptions options, EventSink& events)
    : suites_(suites), registry_(registry), options_(std::move(options)), events_(events) {}

GenerationService::~GenerationService() { stop(); }

Status GenerationService::start() {
  std::error_code error;
  fs::create_directories(options_.directory, error);
  if (error) {
    return makeError(
        ErrorCode::kUnavailable,
        fmt::format("cannot create {}: {}", options_.directory.string(), error.message()));
  }
  std::vector<std::shared_ptr<Job>> restored;
  for (const auto& entry : fs::directory_iterator(options_.directory, error)) {
    std::ifstream in(entry.path() / "job.json");
    if (!in) continue;
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
    if (json.is_discarded() || !json.contains("id")) {
      spdlog::warn("generation: skipping unreadable {}", (entry.path() / "job.json").string());
      continue;
    }
    auto job = std::make_shared<Job>();
    job->info.id = json.value("id", "");
    job->info.restored = json;
    const std::string state = json.value("state", "failed");
    job->info.state = state == "succeeded"   ? JobState::kSucceeded
                      : state == "cancelled" ? JobState::kCancelled
                                             : JobState::kFailed;
    if (Result<std::chrono::system_clock::time_point> created =
            parseRfc3339(json.value("createdAt", ""));
        created.ok()) {
      job->info.createdAt = *created;
    }
    for (const nlohmann::json& image : json.value("images", nlohmann::json::array())) {
      JobImage item;
      item.index = image.value("index", 0);
      item.fileName = image.value("fileName", "");
      item.contentType = image.value("contentType", "");
      job->info.images.push_back(std::move(item));
    }
    restored.push_back(std::move(job));
  }
  std::lock_guard lock(mutex_);
  for (auto& job : restored) jobs_[job->info.id] = std::move(job);
  started_ = true;
  stopping_ = false;
  worker_ = std::thread([this] { run(); });
  spdlog::info("generation: {} finished job(s) read from {}", jobs_.size(),
               options_.directory.string());
  return Status::success();
}

void GenerationService::stop() {
  {
    std::lock_guard lock(mutex_);
    if (!started_) return;
    started_ = false;
    stopping_ = true;
    for (auto& [id, job] : jobs_) job->cancelled->store(true);
    while (!queue_.empty()) {
      std::shared_ptr<Job> job = queue_.front();
      queue_.pop_front();
      finishLocked(*job, JobState::kCancelled,
                   makeError(ErrorCode::kUnavailable, "the daemon stopped before the job ran"));
    }
    changed_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
}

Result<std::shared_ptr<GenerationService::Job>> GenerationService::lookupLocked(
    const std::string& id) const {
  const auto found = jobs_.find(id);
  if (found == jobs_.end()) {
    return makeError(ErrorCode::kNotFound, fmt::format("no generation job '{}'", id),
                     {{"jobId", id}});
  }
  return found->second;
}

void GenerationService::addEventLocked(Job& job, std::string type, nlohmann::json data) {
  if (job.events.size() >= kMaxEventsPerJob && type == "preview") return;
  GenerationEvent event;
  event.sequence = job.events.empty() ? 1 : job.events.back().sequence + 1;
  event.type = std::move(type);
  event.data = std::move(data);
  job.events.push_back(std::move(event));
  changed_.notify_all();
}

void GenerationService::finishLocked(Job& job, JobState state, std::optional<Error> error) {
  job.info.state = state;
  job.info.finishedAt = std::chrono::system_clock::now();
  job.info.error = std::move(error);
  nlohmann::json data = {{"state", jobStateName(state)}, {"jobId", job.info.id}};
  if (job.info.error) data["error"] = job.info.error->message;
  if (state == JobState::kSucceeded) data["images"] = toJson(job.info)["images"];
  addEventLocked(job,
                 state == JobState::kSucceeded   ? "done"
                 : state == JobState::kCancelled ? "cancelled"
                                                 : "failed",
                 std::move(data));
}

Result<GenerationJob> GenerationService::submit(const GenerationRequest& request) {
  ASSIGN_OR_RETURN(const SuiteInfo suite, suites_.get(request.suite));
  const std::uint64_t budget = options_.largestBudget ? options_.largestBudget() : 0;
  ASSIGN_OR_RETURN(ResolvedRequest resolved,
                   resolveRequest(request, suite.definition, options_.limits, budget));
  Result<std::string> vae = suites_.resolveVae(suite.id, request.vae.name);
  if (!vae.ok()) {
    Error error = vae.error();
    error.code = ErrorCode::kInvalidArgument;  // a field of this request names it
    return error;
  }
  resolved.vae = *vae;
  auto job = std::make_shared<Job>();
  job->info.id = newJobId();
  job->info.suiteId = suite.id;
  job->info.suiteName = suite.name;
  job->info.request = std::move(resolved);
  job->info.createdAt = std::chrono::system_clock::now();
  job->info.totalSteps = job->info.request.steps;
  std::lock_guard lock(mutex_);
  if (!started_ || stopping_) {
    return makeError(ErrorCode::kUnavailable, "the generation service is not running");
  }
  if (queue_.size() >= options_.maxQueue) {
    Error full = makeError(
        ErrorCode::kUnavailable,
        fmt::format("{} generation jobs are queued already; try again later", queue_.size()),
        {{"queued", queue_.size()}});
    full.retryAfter = std::chrono::seconds(5);
    return full;
  }
  addEventLocked(*job, "queued", {{"jobId", job->info.id}, {"position", queue_.size()}});
  jobs_[job->info.id] = job;
  queue_.push_back(job);
  changed_.notify_all();
  return job->info;
}

std::vector<GenerationJob> GenerationService::list() const {
  std::lock_guard lock(mutex_);
  std::vector<GenerationJob> out;
  for (const auto& [id, job] : jobs_) out.push_back(job->info);
  std::sort(out.begin(), out.end(), [](const GenerationJob& a, const GenerationJob& b) {
    return a.createdAt != b.createdAt ? a.createdAt > b.createdAt : a.id < b.id;
  });
  return out;
}

Result<GenerationJob> GenerationService::get(const std::string& id) const {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(const std::shared_ptr<Job> job, lookupLocked(id));
  return job->info;
}

Result<GenerationJob> GenerationService::cancel(const std::string& id) {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(const std::shared_ptr<Job> job, lookupLocked(id));
  switch (job->info.state) {
    case JobState::kQueued:
      queue_.erase(std::remove(queue_.begin(), queue_.end(), job), queue_.end());
      job->cancelled->store(true);
      finishLocked(*job, JobState::kCancelled, makeError(ErrorCode::kUnavailable, "cancelled"));
      break;
    case JobState::kRunning:
      job->cancelled->store(true);
      addEventLocked(*job, "stage", {{"stage", "cancelling"}});
      break;
    default:
      return makeError(ErrorCode::kConflict,
                       fmt::format("generation {} already {}", id, jobStateName(job->info.state)),
                       {{"jobId", id}, {"state", jobStateName(job->info.state)}});
  }
  return job->info;
}

Result<GenerationService::ImageFile> GenerationService::image(const std::string& id,
                                                              int index) const {
  JobImage found;
  {
    std::lock_guard lock(mutex_);
    ASSIGN_OR_RETURN(const std::shared_ptr<Job> job, lookupLocked(id));
    const auto image = std::find_if(job->info.images.begin(), job->info.images.end(),
                                    [&](const JobImage& item) { return item.index == index; });
    if (job->info.state != JobState::kSucceeded || image == job->info.images.end()) {
      return makeError(ErrorCode::kNotFound,
                       fmt::format("generation {} has no image {} ({})", id, index,
                                   jobStateName(job->info.state)),
                       {{"jobId", id}, {"index", index}});
    }
    found = *image;
  }
  std::ifstream in(options_.directory / id / found.fileName, std::ios::binary);
  if (!in) {
    return makeError(ErrorCode::kNotFound,
                     fmt::format("the file of image {} of {} is gone", index, id),
                     {{"jobId", id}, {"index", index}});
  }
  std::stringstream bytes;
  bytes << in.rdbuf();
  return ImageFile{bytes.str(), found.contentType, found.fileName};
}

Result<GenerationEventBatch> GenerationService::events(const std::string& id, std::uint64_t after,
                                                       std::chrono::milliseconds wait) const {
  std::unique_lock lock(mutex_);
  ASSIGN_OR_RETURN(const std::shared_ptr<Job> job, lookupLocked(id));
  const auto finished = [&] {
    return job->info.state == JobState::kSucceeded || job->info.state == JobState::kFailed ||
           job->info.state == JobState::kCancelled;
  };
  const auto pending = [&] { return !job->events.empty() && job->events.back().sequence > after; };
  changed_.wait_for(lock, wait, [&] { return pending() || finished() || stopping_; });
  GenerationEventBatch batch;
  for (const GenerationEvent& event : job->events) {
    if (event.sequence > after) batch.events.push_back(event);
  }
  batch.ended = finished();
  return batch;
}

void GenerationService::writeMetrics(std::string& out) const {
  std::map<std::string, double> states;
  for (JobState state : {JobState::kQueued, JobState::kRunning, JobState::kSucceeded,
                         JobState::kFailed, JobState::kCancelled}) {
    states[std::string(jobStateName(state))] = 0;
  }
  std::lock_guard lock(mutex_);
  for (const auto& [id, job] : jobs_) ++states[std::string(jobStateName(job->info.state))];
  prometheus::TextWriter writer(out);
  writer.family("deviceops_generation_jobs", "gauge", "Generation jobs known, by state.");
  for (const auto& [state, count] : states) {
    writer.sample("deviceops_generation_jobs", {{"state", state}}, count);
  }
  writer.family("deviceops_generation_queue_length", "gauge", "Generation jobs waiting to run.");
  writer.sample("deviceops_generation_queue_length", prometheus::Labels{},
                static_cast<double>(queue_.size()));
  writer.family("deviceops_generation_images_total", "counter", "Images generated.");
  writer.sample("deviceops_generation_images_total", prometheus::Labels{},
                static_cast<double>(imagesTotal_));
  writer.family("deviceops_generation_seconds_total", "counter",
                "Seconds spent generating: in model calls and in the pipeline around them.");
  writer.sample("deviceops_generation_seconds_total", {{"kind", "model"}}, modelSecondsTotal_);
  writer.sample("deviceops_generation_seconds_total", {{"kind", "pipeline"}},
                pipelineSecondsTotal_);
}

void GenerationService::run() {
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = queue_.front();
      queue_.pop_front();
      job->info.state = JobState::kRunning;
      job->info.startedAt = std::chrono::system_clock::now();
      job->info.stage = "load";
      addEventLocked(*job, "stage", {{"stage", "load"}});
    }
    execute(job);
    enforceRetention();
  }
}

void GenerationService::execute(const std::shared_ptr<Job>& job) {
  const ResolvedRequest& request = job->info.request;
  const std::uint64_t rssBefore = residentBytes();
  std::uint64_t rssPeak = rssBefore;
  PipelineCallbacks callbacks;
  callbacks.cancelled = job->cancelled;
  callbacks.event = [&](const std::string& type, nlohmann::json data) {
    rssPeak = std::max(rssPeak, residentBytes());
    std::lock_guard lock(mutex_);
    if (type == "stage") job->info.stage = data.value("stage", "");
    if (type == "step") job->info.step = data.value("step", 0);
    addEventLocked(*job, type, std::move(data));
  };
  const bool withRefiner = request.refinerMode != RefinerMode::kNever;
  Result<GenerationOutcome> outcome = [&]() -> Result<GenerationOutcome> {
    ASSIGN_OR_RETURN(std::unique_ptr<SuiteLease> lease,
                     suites_.acquire(job->info.suiteId, withRefiner, request.vae));
    if (job->cancelled->load()) {
      return makeError(ErrorCode::kUnavailable, "cancelled", {{"cancelled", true}});
    }
    // What the held components hold in the ledger, per device.
    std::map<std::string, std::uint64_t> ledger;
    for (const auto& [role, model] : lease->models) {
      Result<inference::ModelInfo> info = registry_.find(model);
      if (!info.ok()) continue;
      for (const inference::Placement& placement : info->placements) {
        ledger[placement.deviceId] += placement.chargedBytes;
      }
    }
    Result<GenerationOutcome> result =
        runGeneration(registry_, *lease, request, callbacks, history_);
    if (result.ok()) {
      rssPeak = std::max(rssPeak, residentBytes());
      result->report["memory"] = {{"ledgerBytesByDevice", ledger},
                                  {"peakRssBytes", rssPeak},
                                  {"rssGrowthBytes", rssPeak - std::min(rssPeak, rssBefore)}};
    }
    return result;
  }();  // the lease (and its holds) is released here, before the job is marked finished

  if (outcome.ok()) {
    std::vector<JobImage> images;
    for (const GeneratedImage& image : outcome->images) {
      images.push_back({image.index, image.seed, image.fileName, image.contentType,
                        static_cast<std::uint64_t>(image.bytes.size()), image.quality});
    }
    GenerationJob finished;
    {
      std::lock_guard lock(mutex_);
      job->info.images = std::move(images);
      job->info.report = std::move(outcome->report);
      job->info.step = job->info.totalSteps;
      finished = job->info;
      finished.state = JobState::kSucceeded;
      finished.finishedAt = std::chrono::system_clock::now();
    }
    persist(finished, outcome->images);
    std::lock_guard lock(mutex_);
    imagesTotal_ += job->info.images.size();
    pipelineSecondsTotal_ += job->info.report.value("pipelineSeconds", 0.0);
    modelSecondsTotal_ += job->info.report.value("totalSeconds", 0.0) -
                          job->info.report.value("pipelineSeconds", 0.0);
    job->info.stage = "done";
    finishLocked(*job, JobState::kSucceeded, std::nullopt);
    events_.publish(Event{std::chrono::system_clock::now(),
                          "generation.succeeded",
                          "",
                          "info",
                          fmt::format("generation {} on suite {}: {} image(s) in {:.2f} s",
                                      job->info.id, job->info.suiteName, job->info.images.size(),
                                      job->info.report.value("totalSeconds", 0.0)),
                          {{"jobId", job->info.id}, {"suite", job->info.suiteName}}});
    return;
  }
  const bool cancelled = job->cancelled->load();
  GenerationJob finished;
  {
    std::lock_guard lock(mutex_);
    finishLocked(*job, cancelled ? JobState::kCancelled : JobState::kFailed,
                 cancelled ? makeError(ErrorCode::kUnavailable, "cancelled") : outcome.error());
    finished = job->info;
  }
  persist(finished, {});
  if (!cancelled) {
    spdlog::warn("generation {} failed: {}", job->info.id, outcome.error().message);
    events_.publish(
        Event{std::chrono::system_clock::now(),
              "generation.failed",
              "",
              "warning",
              fmt::format("generation {} failed: {}", job->info.id, outcome.error().message),
              {{"jobId", job->info.id}, {"suite", job->info.suiteName}}});
  }
}

void GenerationService::persist(const GenerationJob& job,
                                const std::vector<GeneratedImage>& images) {
  const fs::path folder = options_.directory / job.id;
  std::error_code error;
  fs::create_directories(folder, error);
  for (const GeneratedImage& image : images) {
    if (Status written = writeFileAtomically(folder / image.fileName, image.bytes); !written.ok()) {
      spdlog::error("generation {}: writing {}: {}", job.id, image.fileName,
                    written.error().message);
    }
  }
  if (Status written = writeFileAtomically(folder / "job.json", toJson(job).dump(2));
      !written.ok()) {
    spdlog::error("generation {}: writing job.json: {}", job.id, written.error().message);
  }
}

void GenerationService::enforceRetention() {
  std::vector<std::string> removed;
  {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<Job>> finished;
    for (const auto& [id, job] : jobs_) {
      if (job->info.state != JobState::kQueued && job->info.state != JobState::kRunning) {
        finished.push_back(job);
      }
    }
    if (finished.size() <= options_.retainJobs) return;
    std::sort(finished.begin(), finished.end(),
              [](const auto& a, const auto& b) { return a->info.createdAt < b->info.createdAt; });
    const std::size_t excess = finished.size() - options_.retainJobs;
    for (std::size_t i = 0; i < excess; ++i) {
      removed.push_back(finished[i]->info.id);
      jobs_.erase(finished[i]->info.id);
    }
  }
  for (const std::string& id : removed) {
    std::error_code error;
    fs::remove_all(options_.directory / id, error);
  }
}

}  // namespace deviceops::generation
