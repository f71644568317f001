#include "trainer/trainer.h"

#include <mutex>

#include "trainer/checkpoint.h"
#include "trainer/checkpoint_files.h"
#include "trainer/training_run.h"

namespace deviceops::trainer {

namespace fs = std::filesystem;
using nlohmann::json;
using run_detail::cannotRun;
using run_detail::Clock;
using run_detail::firstLine;
using run_detail::secondsSince;
using training::JobSpec;

std::atomic<bool>& stopRequested() {
  static std::atomic<bool> flag{false};
  return flag;
}

Status TrainingRun::setUp() {
  if (options_.worldSize < 1 || options_.rank < 0 || options_.rank >= options_.worldSize) {
    return cannotRun("rank " + std::to_string(options_.rank) + " is not in a world of " +
                     std::to_string(options_.worldSize));
  }
  if (spec_.workDir.empty()) return cannotRun("job.json has no workDir");
  if (Status s = training::validateModelSpec(spec_.model); !s.ok()) return s;
  Result<at::Device> device = parseDevice(options_.device);
  if (!device.ok()) return device.error();
  device_ = *device;
  threads_ = threadsPerRank(spec_.threads, options_.worldSize);
  at::set_num_threads(threads_);
  checkpointDir_ = fs::path(spec_.workDir) / "checkpoints";
  std::error_code ec;
  fs::create_directories(checkpointDir_, ec);
  if (ec) return cannotRun("cannot create " + checkpointDir_.string() + ": " + ec.message());
  if (leader()) {
    if (Status s = lock_.acquire(fs::path(spec_.workDir) / "trainer.lock"); !s.ok()) return s;
  }
  Result<TrainingData> data = loadTrainingData(spec_, device_);
  if (!data.ok()) return data.error();
  data_ = std::move(*data);

  bool batchNorm = false;
  {
    // The global RNG is process-wide: ranks running as threads of one process (tests) must not
    // interleave their initialisation.
    static std::mutex initMutex;
    std::lock_guard<std::mutex> lock(initMutex);
    torch::manual_seed(spec_.seed);
    Result<std::unique_ptr<TrainModel>> model = buildModel(spec_.model);
    if (!model.ok()) return model.error();
    model_ = std::move(*model);
  }
  if (spec_.model.builtIn()) {
    for (const auto& layer : training::buildLayers(spec_.model)) {
      batchNorm = batchNorm || layer.kind == training::LayerKind::kBatchNorm;
    }
  }
  model_->to(device_);
  model_->setTraining(true);
  for (auto& [name, tensor] : model_->parameters()) {
    if (!tensor.requires_grad()) continue;
    if (tensor.scalar_type() != at::kFloat)
      return cannotRun("parameter " + name + " is not float32");
    params_.push_back(tensor);
    parameterCount_ += tensor.numel();
  }
  if (params_.empty()) return cannotRun("the model has no trainable parameters");
  flat_ =
      torch::zeros({parameterCount_ + 3}, torch::TensorOptions().dtype(at::kFloat).device(device_));
  std::int64_t offset = 0;
  for (auto& param : params_) {
    param.mutable_grad() = flat_.narrow(0, offset, param.numel()).view(param.sizes());
    offset += param.numel();
  }
  stopSlot_ = flat_.narrow(0, offset, 1);
  lossSlot_ = flat_.narrow(0, offset + 1, 1);
  metricSlot_ = flat_.narrow(0, offset + 2, 1);
  optimizer_ = makeOptimizer(spec_.optimizer, params_);
  lossSum_ = torch::zeros({}, torch::TensorOptions().dtype(at::kDouble).device(device_));
  metricSum_ = torch::zeros_like(lossSum_);

  const std::int64_t n = data_.trainSamples(), batch = spec_.batchSize;
  if (batchNorm && batch < 2 * options_.worldSize) {
    return cannotRun("batchSize must be at least 2 per rank for a model with batch norm");
  }
  stepsPerEpoch_ = (n + batch - 1) / batch;
  // Batch norm cannot train on a batch of one sample per rank: such a last batch is dropped.
  if (batchNorm && stepsPerEpoch_ > 1 &&
      n - (stepsPerEpoch_ - 1) * batch < 2 * options_.worldSize) {
    --stepsPerEpoch_;
  }
  epochSamples_ = std::min(n, stepsPerEpoch_ * batch);
  totalSteps_ = stepsPerEpoch_ * spec_.epochs;
  const bool validation = data_.validationSamples() > 0;
  metric_ = chooseMetric(spec_, validation);

  if (options_.resume) {
    if (Status s = restore(); !s.ok()) return s;
  }
  auto connected =
      Communicator::connect(options_.rendezvous, options_.rank, options_.worldSize, device_);
  if (!connected.ok()) return connected.error();
  comm_ = std::move(*connected);
  broadcastInitialState();
  return Status::success();
}

Status TrainingRun::restore() {
  json restored;
  auto load = [&](std::string_view bytes) -> Status {
    Result<json> meta = restoreCheckpoint(bytes, *model_, *optimizer_, device_);
    if (!meta.ok()) return meta.error();
    const json& m = *meta;
    try {
      std::int64_t step = m.at("step"), epoch = m.at("epoch"), inEpoch = m.at("stepInEpoch");
      if (epoch < 1 || epoch > spec_.epochs + 1 || inEpoch < 0 || inEpoch > stepsPerEpoch_ ||
          step != (epoch - 1) * stepsPerEpoch_ + inEpoch) {
        return cannotRun("its position (step " + std::to_string(step) + ") does not fit this job");
      }
    } catch (const json::exception& e) {
      return cannotRun(std::string("bad meta: ") + e.what());
    }
    restored = m;
    return Status::success();
  };
  auto chosen =
      chooseCheckpoint(checkpointDir_, load, [this](const std::string& line) { log(line); });
  if (!chosen.ok())
    return cannotRun("cannot resume: no valid checkpoint in " + checkpointDir_.string());
  step_ = restored["step"];
  epoch_ = restored["epoch"];
  stepInEpoch_ = restored["stepInEpoch"];
  history_ = restored.value("history", json::array());
  if (restored.contains("bestValue") && restored["bestValue"].is_number()) {
    bestValue_ = restored["bestValue"].get<double>();
  }
  earlyStopReason_ = restored.value("earlyStopped", "");
  lossSum_.fill_(restored.value("epochLossSum", 0.0));
  metricSum_.fill_(restored.value("epochMetricSum", 0.0));
  resumedFrom_ = fs::absolute(chosen->file).string();
  log("resumed from " + chosen->file.string() + " at step " + std::to_string(step_));
  return Status::success();
}

void TrainingRun::broadcastInitialState() {
  if (options_.worldSize == 1) return;
  torch::NoGradGuard noGrad;
  at::Tensor position = torch::tensor({step_}, torch::TensorOptions().dtype(at::kLong)).to(device_);
  comm_->broadcastFromRoot(position);
  if (position.item<std::int64_t>() != step_) {
    throw std::runtime_error("rank 0 starts at step " +
                             std::to_string(position.item<std::int64_t>()) + ", this rank at " +
                             std::to_string(step_));
  }
  NamedTensors tensors = floatTensors(*model_);
  std::vector<at::Tensor> flat;
  for (auto& entry : tensors) flat.push_back(entry.second.detach().reshape({-1}));
  at::Tensor packed = torch::cat(flat);
  comm_->broadcastFromRoot(packed);
  std::int64_t offset = 0;
  for (auto& entry : tensors) {
    entry.second.copy_(packed.narrow(0, offset, entry.second.numel()).view(entry.second.sizes()));
    offset += entry.second.numel();
  }
}

int runTraining(const JobSpec& spec, const RunOptions& options) {
  TrainingRun run(spec, options);
  try {
    return run.run();
  } catch (const std::exception& e) {
    return run.fail(kExitFailed, firstLine(e.what()));
  }
}

}  // namespace deviceops::trainer
