// JobManager: training jobs from submission to outcome (docs/TRAINING.md, ARCHITECTURE
// "Training").
//
// - submit() validates the spec against the dataset and the devices, estimates the memory each
//   rank needs, and queues the job (or refuses it when it can never fit, or does not fit now and
//   the policy is "refuse"). A scheduler starts queued jobs in order when a slot is free and the
//   ledger (kind "training", account-only) accepts every rank's reservation.
// - Each started attempt has a monitor thread that spawns the ranks, reads rank 0's progress
//   pipe, watches every rank, enforces stop grace periods, and records the outcome from exit
//   codes and signals — never from what the trainer claims alone. Reservations are released
//   when the processes are gone.
// - Everything is persisted (training.db) at every transition and epoch. open() marks jobs that
//   were active when the daemon died `interrupted`; autoResume queues them again.
//
// Thread-safety: all public methods may be called concurrently. mutex_ guards jobs_ and the
// per-job live state; the database has its own lock; no lock is held while waiting on a process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "common/events.h"
#include "common/result.h"
#include "devices/inventory.h"
#include "memory/memory_service.h"
#include "training/dataset_catalog.h"
#include "training/job.h"
#include "training/job_store.h"
#include "training_formats/spec.h"

namespace deviceops::training {

struct TrainingOptions {
  std::filesystem::path dataDir;            // <dataDir>/training/{jobs,datasets,...}
  std::filesystem::path trainerExecutable;  // deviceops-trainer
  int maxConcurrentJobs = 1;
  bool queueWhenFull = true;                   // false: refuse a job that does not fit now
  bool autoResume = false;                     // resume interrupted jobs at start-up
  std::chrono::milliseconds stopGrace{30000};  // SIGTERM -> SIGKILL
  std::size_t eventBacklog = 4096;             // live events kept per job for SSE replay
  std::size_t failureLogLines = 20;
};

// One live update of a job, as sent on GET /api/training/{id}/events.
struct JobEvent {
  std::uint64_t sequence = 0;  // per job, increasing from 1
  std::string type;            // "state" | "started" | "progress" | "epoch" | "checkpoint" | ...
  nlohmann::json data;
};

struct EventBatch {
  std::vector<JobEvent> events;
  bool ended = false;  // the job reached a state where no process runs; no more events follow
};

class JobManager {
 public:
  // `memory` and `events` must outlive the manager; `memory` may be null (no ledger).
  static Result<std::unique_ptr<JobManager>> open(TrainingOptions options, DatasetCatalog& datasets,
                                                  const devices::Inventory& inventory,
                                                  memory::MemoryService* memory, EventSink& events);
  ~JobManager();  // stop()
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  Result<JobRecord> submit(JobSpec spec, const std::string& owner);
  // Stops a running job: SIGTERM (checkpoint and exit), SIGKILL after `grace`. A queued job is
  // stopped at once. kConflict for a job that is not queued or active.
  Result<JobRecord> stop(const std::string& jobId, std::optional<std::chrono::milliseconds> grace);
  // Queues a new attempt that continues from the newest valid checkpoint. kConflict when the
  // job is not stopped/interrupted/failed or has no checkpoint.
  Result<JobRecord> resume(const std::string& jobId);
  Result<JobRecord> get(const std::string& jobId) const;
  std::vector<JobRecord> list() const;
  // Deletes an ended job and its files. kConflict while it is queued or active.
  Status remove(const std::string& jobId);
  // Job ids that need the dataset (queued, active, or resumable).
  std::vector<std::string> jobsUsingDataset(const std::string& datasetId) const;

  // Events after `afterSequence`, waiting up to `wait` for at least one.
  Result<EventBatch> events(const std::string& jobId, std::uint64_t afterSequence,
                            std::chrono::milliseconds wait) const;
  // The last `lines` lines of the rank's log.
  Result<std::vector<std::string>> logs(const std::string& jobId, int rank,
                                        std::size_t lines) const;
  // Checkpoint files (newest first): name, step, bytes, valid (sidecar matches), best.
  Result<nlohmann::json> checkpoints(const std::string& jobId) const;
  // Where a completed built-in job's weights and spec are (for export).
  std::filesystem::path jobDirectory(const std::string& jobId) const;
  Status setExportedModel(const std::string& jobId, const std::string& modelId);

  // Ends every attempt: SIGTERM to all trainers, wait up to stopGrace, SIGKILL the rest; jobs
  // become `interrupted` ("daemon stopped") and resumable. Idempotent.
  void stop();

  // Estimated bytes per rank (exposed for tests): dataset + parameters, gradients, optimizer
  // state + activations of one batch + the trainer's own baseline.
  static std::uint64_t estimateMemoryBytes(const JobSpec& spec, std::uint64_t datasetBytes);

 private:
  struct Live;  // per-job runtime state (processes, events, stop request)
  JobManager(TrainingOptions options, DatasetCatalog& datasets, const devices::Inventory& inventory,
             memory::MemoryService* memory, EventSink& events, std::unique_ptr<JobStore> store);

  Status recover();
  Status persist(const JobRecord& job);
  void transition(JobRecord& job, JobState state, std::string reason);            // mutex_ held
  void publish(const std::string& jobId, std::string type, nlohmann::json data);  // mutex_ held
  void schedule();                                           // mutex_ held: start what can start
  Result<std::vector<std::string>> reserve(JobRecord& job);  // mutex_ held
  void releaseReservations(JobRecord& job);                  // mutex_ held
  void monitor(std::string jobId);                           // the attempt's thread
  void handleProgressLine(const std::string& jobId, const std::string& line);
  Status resolve(JobSpec& spec, std::vector<std::string>& deviceIds,
                 std::vector<std::string>& trainerDevices, std::uint64_t& datasetBytes) const;
  bool hasValidCheckpoint(const std::string& jobId) const;

  TrainingOptions options_;
  DatasetCatalog& datasets_;
  const devices::Inventory& inventory_;
  memory::MemoryService* memory_;
  EventSink& events_;
  std::unique_ptr<JobStore> store_;  // thread-safe; serialises its own calls

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;  // any job event or state change
  std::map<std::string, JobRecord> jobs_;
  std::map<std::string, std::shared_ptr<Live>> live_;
  std::deque<std::string> queue_;  // queued job ids in order
  int runningMonitors_ = 0;        // attempts whose monitor thread has not finished
  bool stopping_ = false;
};

}  // namespace deviceops::training
