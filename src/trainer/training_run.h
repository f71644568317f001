// The state and steps of one rank's training attempt, shared by trainer.cc (set-up, resume) and
// training_loop.cc (steps, epochs, checkpoints, completion). Internal to the trainer.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trainer/data.h"
#include "trainer/distributed.h"
#include "trainer/environment.h"
#include "trainer/model.h"
#include "trainer/objective.h"
#include "trainer/progress.h"
#include "trainer/trainer.h"

namespace deviceops::trainer {

namespace run_detail {
using Clock = std::chrono::steady_clock;
inline double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}
inline std::string firstLine(const std::string& text) { return text.substr(0, text.find('\n')); }
inline Error cannotRun(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}
}  // namespace run_detail

// One rank of one training attempt. Thread-compatibility: used by one thread.
class TrainingRun {
 public:
  TrainingRun(const training::JobSpec& spec, const RunOptions& options)
      : spec_(spec), options_(options), progress_(options.rank == 0 ? options.progressFd : -1) {}

  int run() {
    if (Status s = setUp(); !s.ok()) return fail(kExitCannotRun, s.error().message);
    return loop();
  }

  int fail(int exitCode, const std::string& message) {
    log("error: " + message);
    progress_.emit({{"type", "error"}, {"message", run_detail::firstLine(message)}});
    return exitCode;
  }

 private:
  // trainer.cc: preparing the attempt.
  bool leader() const { return options_.rank == 0; }
  void log(const std::string& line) const {
    std::printf("[rank %d] %s\n", options_.rank, line.c_str());
    std::fflush(stdout);
  }

  Status setUp();
  Status restore();
  void broadcastInitialState();
  // training_loop.cc: the steps, epochs, checkpoints and the end.
  int loop();
  void prepareEpoch();
  bool trainStep();
  void flushPending();
  void maybeReportProgress();
  std::optional<std::string> finishEpoch();
  nlohmann::json meta(bool epochDone) const;
  std::string writeCheckpoint(bool epochDone, bool best);
  int stop();
  int complete(const std::string& reason);

  const training::JobSpec& spec_;
  const RunOptions& options_;
  ProgressWriter progress_;
  at::Device device_{at::kCPU};
  int threads_ = 1;
  FileLock lock_;
  std::filesystem::path checkpointDir_;
  TrainingData data_;
  std::unique_ptr<TrainModel> model_;
  std::vector<at::Tensor> params_;
  std::int64_t parameterCount_ = 0;
  at::Tensor flat_;  // every gradient, then [stop flag, loss, metric]: one all-reduce per step
  at::Tensor stopSlot_, lossSlot_, metricSlot_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<Communicator> comm_;
  MetricChoice metric_;

  std::int64_t stepsPerEpoch_ = 0, totalSteps_ = 0, epochSamples_ = 0;
  // Position: steps done in total and in the current (1-based) epoch.
  std::int64_t step_ = 0, epoch_ = 1, stepInEpoch_ = 0;
  nlohmann::json history_ = nlohmann::json::array();
  std::optional<double> bestValue_;
  std::string earlyStopReason_;
  nlohmann::json resumedFrom_;      // checkpoint path or null
  at::Tensor lossSum_, metricSum_;  // over the current epoch (double, on the device)
  // One rank: per-step loss (mean) and metric tensors wait here and are added to the sums when
  // read, which saves two tensor operations per step.
  static constexpr std::size_t kMaxPending = 1024;
  std::vector<at::Tensor> pendingLoss_, pendingMetric_;
  std::vector<double> pendingLengths_;
  at::Tensor epochFeatures_, epochTargets_;
  double learningRate_ = -1;

  run_detail::Clock::time_point trainStart_, epochStart_, lastProgress_;
  double lastProgressLossSum_ = 0;
  std::int64_t samplesSinceProgress_ = 0, epochSamplesThisAttempt_ = 0;
};

}  // namespace deviceops::trainer
