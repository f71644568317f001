// What a job optimises and reports: the loss of its task and the metrics of docs/TRAINING.md
// ("epoch" events: accuracy | mae, val_loss, val_accuracy | val_mae, val_rmse).
#pragma once

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "trainer/model.h"
#include "training_formats/spec.h"

namespace deviceops::trainer {

// The model output as the loss expects it: [N, C] logits for classification, [N] for regression
// (an [N, 1] output is flattened).
at::Tensor taskOutput(const training::JobSpec& spec, const at::Tensor& output);

// The loss of the batch (0-d tensor; differentiable): the sum or the mean over the samples
// (`reduction` is at::Reduction::Sum or ::Mean).
// Precondition: `output` is taskOutput(...); `target` int64 classes or float targets.
at::Tensor taskLoss(const training::JobSpec& spec, const at::Tensor& output,
                    const at::Tensor& target, std::int64_t reduction);

// Sum over the batch of the training metric (0-d, no gradient): correct predictions
// (classification) or absolute errors (regression).
at::Tensor metricSum(const training::JobSpec& spec, const at::Tensor& output,
                     const at::Tensor& target);

struct Evaluation {
  double loss = 0;      // mean per-sample loss
  double accuracy = 0;  // classification
  double mae = 0;       // regression
  double rmse = 0;      // regression
};

// Evaluates `model` in eval mode without gradients over (features, targets), in chunks; puts the
// model back into training mode. Precondition: at least one sample.
Evaluation evaluate(TrainModel& model, const training::JobSpec& spec, const at::Tensor& features,
                    const at::Tensor& targets);

// The optimizer of `spec` over `params` (sgd | adam | adamw with the spec's hyper-parameters).
std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const training::OptimizerSpec& spec,
                                                       const std::vector<at::Tensor>& params);
void setLearningRate(torch::optim::Optimizer& optimizer, double rate);

// The metric that picks best.pt and drives early stopping: earlyStopping.metric, or "loss" when
// there is no validation split.
struct MetricChoice {
  std::string name;
  bool higherIsBetter = false;  // val_accuracy
};
MetricChoice chooseMetric(const training::JobSpec& spec, bool hasValidation);
// candidate beats reference by more than minDelta (in the metric's direction).
bool better(double candidate, double reference, const MetricChoice& metric, double minDelta);
// Epochs since the last improvement (by more than minDelta) of the metric over the "epoch"
// events in `history`; entries without the metric are ignored.
std::int64_t epochsWithoutImprovement(const nlohmann::json& history, const MetricChoice& metric,
                                      double minDelta);

}  // namespace deviceops::trainer
