// The canonical dataset (docs/TRAINING.md, "Datasets") as tensors, and the order in which a
// trainer visits it (docs/TRAINING.md, "Training semantics").
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "common/result.h"
#include "training_formats/spec.h"

namespace deviceops::trainer {

struct TrainingData {
  at::Tensor trainFeatures;       // [Ntrain, F] float, on the training device
  at::Tensor trainTargets;        // [Ntrain]: int64 class indices or float targets
  at::Tensor validationFeatures;  // [Nval, F]
  at::Tensor validationTargets;   // [Nval]
  std::int64_t trainSamples() const { return trainFeatures.size(0); }
  std::int64_t validationSamples() const { return validationFeatures.size(0); }
};

// Reads spec.datasetPath whole and splits it: a permutation seeded by spec.seed puts the last
// round(N * validationSplit) samples in validation. kInvalidArgument (the job cannot run) when the
// file is missing or does not fit the job: wrong feature count, no labels for classification or
// labels >= outputs, no targets for regression, no training sample left.
Result<TrainingData> loadTrainingData(const training::JobSpec& spec, const at::Device& device);

// The order of the training samples in `epoch` (1-based): a permutation of 0..trainSamples-1 from
// a generator seeded by seed + epoch (int64, CPU). The same on every rank and every attempt.
at::Tensor epochOrder(std::int64_t trainSamples, std::uint64_t seed, std::int64_t epoch);

}  // namespace deviceops::trainer
