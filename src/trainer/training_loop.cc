#include "trainer/checkpoint.h"
#include "trainer/checkpoint_files.h"
#include "trainer/training_run.h"
#include "training_formats/safetensors.h"

namespace deviceops::trainer {

namespace fs = std::filesystem;
using nlohmann::json;
using run_detail::cannotRun;
using run_detail::Clock;
using run_detail::firstLine;
using run_detail::secondsSince;
using training::JobSpec;

int TrainingRun::loop() {
  trainStart_ = lastProgress_ = Clock::now();
  progress_.emit({{"type", "started"},
                  {"step", step_},
                  {"totalSteps", totalSteps_},
                  {"stepsPerEpoch", stepsPerEpoch_},
                  {"epochs", spec_.epochs},
                  {"device", options_.device},
                  {"threads", threads_},
                  {"worldSize", options_.worldSize},
                  {"parameters", parameterCount_},
                  {"trainSamples", data_.trainSamples()},
                  {"validationSamples", data_.validationSamples()},
                  {"resumedFrom", resumedFrom_}});
  log("training " + std::to_string(parameterCount_) + " parameters on " + options_.device + ", " +
      std::to_string(threads_) + " threads, from step " + std::to_string(step_) + " of " +
      std::to_string(totalSteps_));
  if (!earlyStopReason_.empty()) return complete(earlyStopReason_);
  for (; epoch_ <= spec_.epochs; ++epoch_, stepInEpoch_ = 0) {
    prepareEpoch();
    while (stepInEpoch_ < stepsPerEpoch_) {
      if (trainStep()) return stop();
      const std::int64_t every = spec_.checkpoint.everySteps;
      if (every > 0 && step_ % every == 0 && stepInEpoch_ < stepsPerEpoch_) {
        writeCheckpoint(false, false);
      }
    }
    if (std::optional<std::string> reason = finishEpoch()) return complete(*reason);
  }
  return complete("finished all epochs");
}

void TrainingRun::prepareEpoch() {
  at::Tensor order = epochOrder(data_.trainSamples(), spec_.seed, epoch_).to(device_);
  if (!epochFeatures_.defined()) {
    epochFeatures_ = torch::empty_like(data_.trainFeatures);
    epochTargets_ = torch::empty_like(data_.trainTargets);
  }
  at::index_select_out(epochFeatures_, data_.trainFeatures, 0, order);
  at::index_select_out(epochTargets_, data_.trainTargets, 0, order);
  if (stepInEpoch_ == 0) {
    lossSum_.zero_();
    metricSum_.zero_();
  }
  lastProgressLossSum_ = stepInEpoch_ == 0 ? 0.0 : lossSum_.item<double>();
  samplesSinceProgress_ = 0;
  epochSamplesThisAttempt_ = 0;
  epochStart_ = lastProgress_ = Clock::now();
}

bool TrainingRun::trainStep() {
  const std::int64_t begin = stepInEpoch_ * spec_.batchSize;
  const std::int64_t length = std::min(spec_.batchSize, data_.trainSamples() - begin);
  at::Tensor x = epochFeatures_.narrow(0, begin, length);
  at::Tensor y = epochTargets_.narrow(0, begin, length);
  const int world = options_.worldSize;
  if (world > 1) {
    x = x.slice(0, options_.rank, length, world);
    y = y.slice(0, options_.rank, length, world);
  }
  const double rate = training::learningRateAt(spec_.schedule, spec_.optimizer.learningRate, step_,
                                               stepsPerEpoch_, totalSteps_);
  if (rate != learningRate_) {
    setLearningRate(*optimizer_, rate);
    learningRate_ = rate;
  }
  flat_.zero_();
  at::Tensor loss, metric;
  if (x.size(0) > 0) {
    at::Tensor out = taskOutput(spec_, model_->forward(x));
    // Sum over this rank's samples / global batch size; with one rank simply the mean.
    loss = world == 1 ? taskLoss(spec_, out, y, at::Reduction::Mean)
                      : taskLoss(spec_, out, y, at::Reduction::Sum).div(double(length));
    loss.backward();
    metric = metricSum(spec_, out.detach(), y);
  }
  bool stopNow = stopRequested().load(std::memory_order_relaxed) ||
                 (options_.stopAfter && options_.stopAfter(step_ + 1));
  if (world > 1) {
    if (loss.defined()) {
      lossSlot_.copy_(loss.detach().view({1}));
      metricSlot_.copy_(metric.view({1}));
    }
    if (stopNow) stopSlot_.fill_(1.0);
    comm_->allReduceSum(flat_);
    lossSum_.add_(lossSlot_.squeeze(), double(length));
    metricSum_.add_(metricSlot_.squeeze());
    stopNow = stopSlot_.item<float>() > 0.5f;
  } else {
    pendingLoss_.push_back(loss.detach());
    pendingMetric_.push_back(metric);
    pendingLengths_.push_back(double(length));
    if (pendingLoss_.size() >= kMaxPending) flushPending();
  }
  optimizer_->step();
  ++step_;
  ++stepInEpoch_;
  samplesSinceProgress_ += length;
  epochSamplesThisAttempt_ += length;
  if (leader()) maybeReportProgress();
  return stopNow;
}

void TrainingRun::flushPending() {
  if (pendingLoss_.empty()) return;
  at::Tensor lengths = torch::tensor(pendingLengths_, torch::TensorOptions().dtype(at::kDouble));
  lossSum_.add_(at::stack(pendingLoss_).to(at::kDouble).mul_(lengths.to(device_)).sum());
  metricSum_.add_(at::stack(pendingMetric_).sum());
  pendingLoss_.clear();
  pendingMetric_.clear();
  pendingLengths_.clear();
}

void TrainingRun::maybeReportProgress() {
  const auto now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - lastProgress_).count();
  if (seconds * 1000.0 < double(spec_.progressIntervalMs)) return;
  flushPending();
  const double total = lossSum_.item<double>();
  const double loss =
      (total - lastProgressLossSum_) / double(std::max<std::int64_t>(samplesSinceProgress_, 1));
  const double rate = double(samplesSinceProgress_) / seconds;
  progress_.emit({{"type", "progress"},
                  {"epoch", epoch_},
                  {"step", step_},
                  {"totalSteps", totalSteps_},
                  {"loss", loss},
                  {"learningRate", learningRate_},
                  {"samplesPerSecond", rate},
                  {"elapsedSeconds", secondsSince(trainStart_)}});
  lastProgressLossSum_ = total;
  samplesSinceProgress_ = 0;
  lastProgress_ = now;
}

std::optional<std::string> TrainingRun::finishEpoch() {
  flushPending();
  const bool classification = spec_.task == training::Task::kClassification;
  const double seconds = secondsSince(epochStart_);
  json event = {{"type", "epoch"},
                {"epoch", epoch_},
                {"step", step_},
                {"loss", lossSum_.item<double>() / double(epochSamples_)}};
  event[classification ? "accuracy" : "mae"] = metricSum_.item<double>() / double(epochSamples_);
  if (leader() && data_.validationSamples() > 0) {
    Evaluation e = evaluate(*model_, spec_, data_.validationFeatures, data_.validationTargets);
    event["val_loss"] = e.loss;
    if (classification) {
      event["val_accuracy"] = e.accuracy;
    } else {
      event["val_mae"] = e.mae;
      event["val_rmse"] = e.rmse;
    }
  }
  event["seconds"] = seconds;
  event["samplesPerSecond"] = seconds > 0 ? double(epochSamplesThisAttempt_) / seconds : 0.0;
  // What a progress event would say at this point: a job shorter than progressIntervalMs sends
  // none, and its totals must still be known when it ends.
  event["learningRate"] = learningRate_;
  event["elapsedSeconds"] = secondsSince(trainStart_);
  history_.push_back(event);
  progress_.emit(event);
  if (leader()) log(event.dump());

  bool best = false;
  if (leader() && event.contains(metric_.name)) {
    const double value = event[metric_.name];
    best = !bestValue_ || better(value, *bestValue_, metric_, 0.0);
    if (best) bestValue_ = value;
  }
  bool earlyStop = false;
  if (leader() && spec_.earlyStopping.enabled) {
    earlyStop = epochsWithoutImprovement(history_, metric_, spec_.earlyStopping.minDelta) >=
                spec_.earlyStopping.patience;
  }
  if (options_.worldSize > 1) {
    at::Tensor flag = torch::full({1}, earlyStop ? 1.0f : 0.0f, flat_.options());
    comm_->broadcastFromRoot(flag);
    earlyStop = flag.item<float>() > 0.5f;
  }
  if (earlyStop) {
    earlyStopReason_ = "early stopping: " + metric_.name + " did not improve for " +
                       std::to_string(spec_.earlyStopping.patience) + " epochs";
  }
  writeCheckpoint(true, best);
  if (earlyStop) return earlyStopReason_;
  return std::nullopt;
}

json TrainingRun::meta(bool epochDone) const {
  json m = {{"step", step_},
            {"epoch", epochDone ? epoch_ + 1 : epoch_},
            {"stepInEpoch", epochDone ? 0 : stepInEpoch_},
            {"history", history_},
            {"bestMetric", metric_.name},
            {"bestValue", bestValue_ ? json(*bestValue_) : json(nullptr)},
            {"epochLossSum", epochDone ? 0.0 : lossSum_.item<double>()},
            {"epochMetricSum", epochDone ? 0.0 : metricSum_.item<double>()}};
  if (!earlyStopReason_.empty()) m["earlyStopped"] = earlyStopReason_;
  return m;
}

std::string TrainingRun::writeCheckpoint(bool epochDone, bool best) {
  if (!leader()) return "";
  flushPending();
  const std::string bytes = serializeCheckpoint(*model_, *optimizer_, meta(epochDone));
  const fs::path file = fs::absolute(checkpointPath(checkpointDir_, step_));
  if (Status s = writeCheckpointFile(file, bytes); !s.ok())
    throw std::runtime_error(s.error().message);
  best = best && spec_.checkpoint.keepBest;
  if (best) {
    if (Status s = writeCheckpointFile(checkpointDir_ / "best.pt", bytes); !s.ok()) {
      throw std::runtime_error(s.error().message);
    }
  }
  pruneCheckpoints(checkpointDir_, spec_.checkpoint.keepLast);
  progress_.emit({{"type", "checkpoint"},
                  {"step", step_},
                  {"epoch", epoch_},
                  {"file", file.string()},
                  {"best", best}});
  return file.string();
}

int TrainingRun::stop() {
  const std::string file = writeCheckpoint(false, false);
  progress_.emit({{"type", "stopped"}, {"step", step_}, {"checkpoint", file}});
  log("stopped at step " + std::to_string(step_) + " on request");
  return kExitStopped;
}

int TrainingRun::complete(const std::string& reason) {
  if (leader()) {
    const fs::path weights = fs::absolute(fs::path(spec_.workDir) / "model.safetensors");
    const training::SafeTensorFile file = weightsFile(*model_);
    if (Status s = training::writeSafeTensorsFile(weights, file); !s.ok()) {
      throw std::runtime_error(s.error().message);
    }
    if (Status s = model_->saveTorchScript(fs::path(spec_.workDir) / "model.pt"); !s.ok()) {
      throw std::runtime_error(s.error().message);
    }
    progress_.emit({{"type", "completed"},
                    {"step", step_},
                    {"weights", weights.string()},
                    {"reason", reason}});
    log("completed: " + reason);
  }
  return kExitCompleted;
}

}  // namespace deviceops::trainer
