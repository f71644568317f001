// GenerationService: image-generation jobs. submit() validates the whole request against the
// suite (request.h) before anything runs and queues the job; one worker runs the queue in order
// (one generation at a time per daemon: a generation already uses every core or the whole GPU),
// holding the suite through a SuiteLease while it runs. Jobs, their events (stage, step,
// preview, done/failed/cancelled) and their images live in memory and, once finished, in
// <directory>/<jobId>/ (job.json + images), read back at start; past `retainJobs` finished jobs
// the oldest are deleted with their files.
//
// Thread-safety: every public method may be called concurrently. mutex_ guards jobs_, queue_ and
// every Job's fields; the worker runs the pipeline without it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/events.h"
#include "generation/pipeline.h"
#include "generation/request.h"
#include "generation/suite_manager.h"

namespace deviceops::generation {

struct GenerationOptions {
  std::filesystem::path directory;  // <dataDir>/generation/jobs
  std::size_t maxQueue = 64;        // queued jobs; more: kUnavailable
  std::size_t retainJobs = 200;     // finished jobs kept with their images
  GenerationLimits limits;
  // The largest device budget in bytes (the 507 check); 0 or unset: not checked.
  std::function<std::uint64_t()> largestBudget;
};

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
std::string_view jobStateName(JobState state);

struct JobImage {
  int index = 0;
  std::uint64_t seed = 0;
  std::string fileName;
  std::string contentType;
  std::uint64_t sizeBytes = 0;
  nlohmann::json quality = nlohmann::json::object();
};

struct GenerationJob {
  std::string id;  // "gen-" + 12 hex
  std::string suiteId, suiteName;
  JobState state = JobState::kQueued;
  ResolvedRequest request;
  std::chrono::system_clock::time_point createdAt;
  std::optional<std::chrono::system_clock::time_point> startedAt, finishedAt;
  std::optional<Error> error;
  std::string stage;  // the current stage while running
  int step = 0, totalSteps = 0;
  std::vector<JobImage> images;
  nlohmann::json report = nlohmann::json::object();  // the pipeline's report + memory
  // A finished job read back at start: its stored JSON form, served as it is.
  std::optional<nlohmann::json> restored;
};

struct GenerationEvent {
  std::uint64_t sequence = 0;
  std::string type;  // "queued" | "stage" | "step" | "preview" | "done" | "failed" | "cancelled"
  nlohmann::json data;
};

struct GenerationEventBatch {
  std::vector<GenerationEvent> events;
  bool ended = false;  // the job finished and every event up to its last was returned
};

class GenerationService {
 public:
  GenerationService(SuiteManager& suites, inference::ModelRegistry& registry,
                    GenerationOptions options, EventSink& events);
  ~GenerationService();

  // Creates the directory, reads finished jobs back, starts the worker.
  Status start();
  // Cancels the running job, marks queued ones cancelled, joins the worker.
  void stop();

  // kNotFound (unknown suite), kInvalidArgument (bad parameters), kResourceExhausted (over the
  // budget, with the estimate), kUnavailable (queue full or stopping).
  Result<GenerationJob> submit(const GenerationRequest& request);
  std::vector<GenerationJob> list() const;
  Result<GenerationJob> get(const std::string& id) const;
  // A queued job is cancelled at once; a running one stops at its next model call (its suite
  // lease, and so the held memory, is released when the worker unwinds). Finished: kConflict.
  Result<GenerationJob> cancel(const std::string& id);
  struct ImageFile {
    std::string bytes;
    std::string contentType;
    std::string fileName;
  };
  Result<ImageFile> image(const std::string& id, int index) const;
  // Events after `after`, waiting at most `wait` for one.
  Result<GenerationEventBatch> events(const std::string& id, std::uint64_t after,
                                      std::chrono::milliseconds wait) const;
  // Prometheus families: deviceops_generation_jobs{state}, deviceops_generation_queue_length,
  // deviceops_generation_images_total, deviceops_generation_seconds_total{kind="model|pipeline"}.
  void writeMetrics(std::string& out) const;

 private:
  struct Job {
    GenerationJob info;
    std::vector<GenerationEvent> events;
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  };

  void run();
  void execute(const std::shared_ptr<Job>& job);
  void addEventLocked(Job& job, std::string type, nlohmann::json data);
  void finishLocked(Job& job, JobState state, std::optional<Error> error);
  void persist(const GenerationJob& job, const std::vector<GeneratedImage>& images);
  void enforceRetention();
  Result<std::shared_ptr<Job>> lookupLocked(const std::string& id) const;

  SuiteManager& suites_;
  inference::ModelRegistry& registry_;
  const GenerationOptions options_;
  EventSink& events_;
  QualityHistory history_;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stopping_ = false;
  bool started_ = false;
  std::uint64_t imagesTotal_ = 0;    // guarded by mutex_
  double modelSecondsTotal_ = 0;     // guarded by mutex_
  double pipelineSecondsTotal_ = 0;  // guarded by mutex_
  std::thread worker_;
};

// The API form (camelCase): id, suite, state, parameters, timestamps, progress, images (with
// URLs), error, report.
nlohmann::json toJson(const GenerationJob& job);
nlohmann::json toJson(const ResolvedRequest& request);

}  // namespace deviceops::generation
