#include "trainer/data.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <cstring>

#include "training_formats/safetensors.h"

namespace deviceops::trainer {

namespace {

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}

at::Tensor permutation(std::int64_t n, std::uint64_t seed) {
  at::Generator generator = at::detail::createCPUGenerator(seed);
  return at::randperm(n, generator, at::TensorOptions().dtype(at::kLong));
}

at::Tensor floatTensor(const training::SafeTensor& t, std::vector<std::int64_t> shape) {
  at::Tensor out = at::empty(shape, at::kFloat);
  if (t.dtype == training::SafeDtype::kF32) {
    std::memcpy(out.data_ptr<float>(), t.data.data(), t.data.size());
  } else {
    std::vector<float> values = t.toFloat();
    std::memcpy(out.data_ptr<float>(), values.data(), values.size() * sizeof(float));
  }
  return out;
}

}  // namespace

Result<TrainingData> loadTrainingData(const training::JobSpec& spec, const at::Device& device) {
  Result<training::SafeTensorFile> file = training::readSafeTensorsFile(spec.datasetPath);
  if (!file.ok()) {
    return invalid("dataset " + spec.datasetPath + ": " + file.error().message);
  }
  const training::SafeTensor* features = file->find("features");
  if (!features || features->shape.size() != 2 || features->dtype != training::SafeDtype::kF32) {
    return invalid("dataset " + spec.datasetPath + ": no F32 [N, F] tensor \"features\"");
  }
  const std::int64_t n = features->shape[0], f = features->shape[1];
  if (f != spec.model.inputs) {
    return invalid("dataset has " + std::to_string(f) + " features per sample but the model has " +
                   std::to_string(spec.model.inputs) + " inputs");
  }
  at::Tensor x = floatTensor(*features, {n, f});
  at::Tensor y;
  if (spec.task == training::Task::kClassification) {
    const training::SafeTensor* labels = file->find("labels");
    if (!labels || labels->elementCount() != n) {
      return invalid("dataset has no class labels for its " + std::to_string(n) +
                     " samples; a classification job needs them");
    }
    std::vector<std::int64_t> values = labels->toInt64();
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (values[i] < 0 || values[i] >= spec.model.outputs) {
        return invalid("dataset label " + std::to_string(values[i]) + " at row " +
                       std::to_string(i) + " is outside the model's " +
                       std::to_string(spec.model.outputs) + " classes");
      }
    }
    y = at::empty({n}, at::kLong);
    std::memcpy(y.data_ptr<std::int64_t>(), values.data(), values.size() * sizeof(std::int64_t));
  } else {
    const training::SafeTensor* targets = file->find("targets");
    if (!targets || targets->elementCount() != n) {
      return invalid("dataset has no numeric targets for its " + std::to_string(n) +
                     " samples; a regression job needs them");
    }
    y = floatTensor(*targets, {n});
  }
  const auto validation = static_cast<std::int64_t>(std::llround(double(n) * spec.validationSplit));
  if (n - validation < 1) {
    return invalid("dataset has " + std::to_string(n) + " samples: none left for training after " +
                   "the validation split");
  }
  at::Tensor order = permutation(n, spec.seed);
  at::Tensor trainIndex = order.narrow(0, 0, n - validation);
  at::Tensor validationIndex = order.narrow(0, n - validation, validation);
  TrainingData data;
  data.trainFeatures = x.index_select(0, trainIndex).to(device);
  data.trainTargets = y.index_select(0, trainIndex).to(device);
  data.validationFeatures = x.index_select(0, validationIndex).to(device);
  data.validationTargets = y.index_select(0, validationIndex).to(device);
  return data;
}

at::Tensor epochOrder(std::int64_t trainSamples, std::uint64_t seed, std::int64_t epoch) {
  return permutation(trainSamples, seed + static_cast<std::uint64_t>(epoch));
}

}  // namespace deviceops::trainer
