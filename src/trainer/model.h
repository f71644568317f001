// The model a trainer trains: a built-in architecture made of the layers of
// training::buildLayers (parameters registered under exactly the layer names, so parameters are
// "l0.weight", "l0.bias", ...), or a TorchScript module uploaded by the client.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "training_formats/safetensors.h"
#include "training_formats/spec.h"

namespace deviceops::trainer {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Thread-compatibility: one thread at a time.
class TrainModel {
 public:
  virtual ~TrainModel() = default;
  // [N, inputs] float -> [N, outputs] (a regression model may also return [N]).
  virtual at::Tensor forward(const at::Tensor& input) = 0;
  virtual void setTraining(bool training) = 0;
  // Parameters and buffers by name, in a fixed order. The tensors alias the model's.
  virtual NamedTensors parameters() = 0;
  virtual NamedTensors buffers() = 0;
  virtual void to(const at::Device& device) = 0;
  // TorchScript models save the trained module (model.pt); built-in ones have nothing to save.
  virtual Status saveTorchScript(const std::filesystem::path& file) = 0;
};

// Builds the model of `spec` (validated). Parameters are initialised from the global torch RNG:
// seed it first. kInvalidArgument when a TorchScript file does not load.
Result<std::unique_ptr<TrainModel>> buildModel(const training::ModelSpec& spec);

// Every floating-point parameter and buffer (what model.safetensors holds).
NamedTensors floatTensors(TrainModel& model);

// model.safetensors: floatTensors() as F32 by name.
training::SafeTensorFile weightsFile(TrainModel& model);
// Copies every tensor of floatTensors() from `weights` (by name; any numeric dtype).
// kInvalidArgument naming the tensor when one is missing or has another shape.
Status loadWeights(TrainModel& model, const training::SafeTensorFile& weights);

}  // namespace deviceops::trainer
