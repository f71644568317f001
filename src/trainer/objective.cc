#include "trainer/objective.h"

#include <ATen/core/grad_mode.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <cmath>

namespace deviceops::trainer {

namespace {
constexpr std::int64_t kEvaluationChunk = 8192;
bool classification(const training::JobSpec& spec) {
  return spec.task == training::Task::kClassification;
}
}  // namespace

at::Tensor taskOutput(const training::JobSpec& spec, const at::Tensor& output) {
  if (!classification(spec) && output.dim() == 2 && output.size(1) == 1) return output.view({-1});
  return output;
}

at::Tensor taskLoss(const training::JobSpec& spec, const at::Tensor& output,
                    const at::Tensor& target, std::int64_t reduction) {
  if (classification(spec)) return at::cross_entropy_loss(output, target, {}, reduction);
  if (spec.loss == "mae") return at::l1_loss(output, target, reduction);
  if (spec.loss == "huber") return at::huber_loss(output, target, reduction, 1.0);
  return at::mse_loss(output, target, reduction);
}

at::Tensor metricSum(const training::JobSpec& spec, const at::Tensor& output,
                     const at::Tensor& target) {
  at::NoGradGuard noGrad;
  if (classification(spec)) return output.argmax(1).eq(target).sum();
  return (output - target).abs_().sum();
}

Evaluation evaluate(TrainModel& model, const training::JobSpec& spec, const at::Tensor& features,
                    const at::Tensor& targets) {
  at::NoGradGuard noGrad;
  model.setTraining(false);
  const std::int64_t n = features.size(0);
  at::Tensor loss = at::zeros({}, features.options().dtype(at::kDouble));
  at::Tensor metric = at::zeros_like(loss), squared = at::zeros_like(loss);
  for (std::int64_t begin = 0; begin < n; begin += kEvaluationChunk) {
    std::int64_t length = std::min(kEvaluationChunk, n - begin);
    at::Tensor x = features.narrow(0, begin, length), y = targets.narrow(0, begin, length);
    at::Tensor out = taskOutput(spec, model.forward(x));
    loss.add_(taskLoss(spec, out, y, at::Reduction::Sum));
    metric.add_(metricSum(spec, out, y));
    if (!classification(spec)) squared.add_((out - y).square_().sum());
  }
  model.setTraining(true);
  Evaluation result;
  result.loss = loss.item<double>() / double(n);
  if (classification(spec)) {
    result.accuracy = metric.item<double>() / double(n);
  } else {
    result.mae = metric.item<double>() / double(n);
    result.rmse = std::sqrt(squared.item<double>() / double(n));
  }
  return result;
}

std::unique_ptr<torch::optim::Optimizer> makeOptimizer(const training::OptimizerSpec& o,
                                                       const std::vector<at::Tensor>& params) {
  if (o.type == "sgd") {
    return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(o.learningRate)
                                                           .momentum(o.momentum)
                                                           .nesterov(o.nesterov)
                                                           .weight_decay(o.weightDecay));
  }
  if (o.type == "adamw") {
    return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(o.learningRate)
                                                             .betas({o.beta1, o.beta2})
                                                             .eps(o.epsilon)
                                                             .weight_decay(o.weightDecay));
  }
  return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(o.learningRate)
                                                          .betas({o.beta1, o.beta2})
                                                          .eps(o.epsilon)
                                                          .weight_decay(o.weightDecay));
}

void setLearningRate(torch::optim::Optimizer& optimizer, double rate) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(rate);
}

MetricChoice chooseMetric(const training::JobSpec& spec, bool hasValidation) {
  MetricChoice metric;
  metric.name = spec.earlyStopping.metric;
  if (!hasValidation && metric.name.starts_with("val_")) metric.name = "loss";
  metric.higherIsBetter = metric.name == "val_accuracy";
  return metric;
}

bool better(double candidate, double reference, const MetricChoice& metric, double minDelta) {
  return metric.higherIsBetter ? candidate > reference + minDelta
                               : candidate < reference - minDelta;
}

std::int64_t epochsWithoutImprovement(const nlohmann::json& history, const MetricChoice& metric,
                                      double minDelta) {
  std::optional<double> reference;
  std::int64_t since = 0;
  for (const nlohmann::json& past : history) {
    if (!past.contains(metric.name) || !past[metric.name].is_number()) continue;
    const double value = past[metric.name];
    if (!reference || better(value, *reference, metric, minDelta)) {
      reference = value;
      since = 0;
    } else {
      ++since;
    }
  }
  return since;
}

}  // namespace deviceops::trainer
