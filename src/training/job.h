// A training job as the daemon records it: the resolved spec, the state machine with every
// transition, the latest progress and the per-epoch history, and how the trainer ended.
//
//   queued -> starting -> running -> stopping -> completed | stopped | failed | interrupted
//
// `completed`, `stopped`, `failed`, `interrupted` are terminal for an attempt; stopped,
// interrupted and failed jobs with a checkpoint can be resumed (a new attempt, queued again).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "training_formats/spec.h"

namespace deviceops::training {

using SystemTime = std::chrono::system_clock::time_point;

enum class JobState {
  kQueued,
  kStarting,
  kRunning,
  kStopping,
  kCompleted,
  kStopped,
  kFailed,
  kInterrupted
};
std::string_view jobStateName(JobState state);
std::optional<JobState> parseJobState(std::string_view name);
// An attempt ended here: stopped, interrupted or failed (resumable when a checkpoint exists),
// or completed.
bool isEnded(JobState state);
// The job holds (or is about to hold) devices: starting, running, stopping.
bool isActive(JobState state);

struct Transition {
  JobState state = JobState::kQueued;
  SystemTime time;
  std::string reason;
};

struct JobProgress {
  std::int64_t epoch = 0;  // 1-based epoch in progress; 0 before the first step
  std::int64_t epochs = 0;
  std::int64_t step = 0;
  std::int64_t totalSteps = 0;
  std::int64_t stepsPerEpoch = 0;
  std::optional<double> loss, learningRate, samplesPerSecond;
  double elapsedSeconds = 0;         // training time of all attempts so far
  double attemptElapsedSeconds = 0;  // of the current attempt (trainer-reported)
  std::optional<double> etaSeconds;
  nlohmann::json lastEpoch = nullptr;                // the newest "epoch" event
  nlohmann::json history = nlohmann::json::array();  // every "epoch" event, in order
  std::optional<std::int64_t> lastCheckpointStep;
  std::string lastCheckpoint;
};

struct JobRecord {
  std::string id;
  JobSpec spec;
  std::string owner = "anonymous";
  JobState state = JobState::kQueued;
  std::vector<Transition> transitions;
  int attempt = 0;                          // trainer starts so far
  bool resumeNext = false;                  // the next attempt resumes from a checkpoint
  std::vector<std::string> deviceIds;       // inventory ids, one per rank
  std::vector<std::string> trainerDevices;  // "cpu" | "cuda:N", one per rank
  std::uint64_t memoryBytesPerRank = 0;
  std::vector<std::string> allocationIds;  // ledger records while active
  std::string waitingReason;               // queued: why it has not started
  std::optional<int> exitCode;
  std::optional<int> signal;
  std::string error;                      // failed: what went wrong, one line
  std::vector<std::string> lastLogLines;  // failed: the end of rank 0's (or the failing rank's) log
  std::string weightsPath;                // completed: model.safetensors
  std::string exportedModelId;            // after export
  std::vector<int> pids;                  // trainer processes of the running attempt, by rank
  JobProgress progress;
  SystemTime createdAt;

  const Transition* lastTransition() const;
};

nlohmann::json toJson(const JobRecord& job);          // full form (also what is persisted)
nlohmann::json toSummaryJson(const JobRecord& job);   // for lists: no history
nlohmann::json toProgressJson(const JobRecord& job);  // GET /progress
Result<JobRecord> jobFromJson(const nlohmann::json& json);

}  // namespace deviceops::training
