// `deviceops-trainer predict`: runs a trained model (job.json + model.safetensors) in eval mode
// over a NumPy input and writes the output as F32 .npy.
#pragma once

#include <filesystem>

#include "common/result.h"

namespace deviceops::trainer {

struct PredictRequest {
  std::filesystem::path job;      // job.json (training::toJson of the job)
  std::filesystem::path weights;  // model.safetensors
  std::filesystem::path input;    // [N, ...] (trailing dims multiply to model.inputs) or [inputs]
  std::filesystem::path output;   // written: [N, outputs] ([outputs] for a 1-d input)
};

// kInvalidArgument / kNotFound naming the file and the problem (bad job, weights that do not fit
// the model, an input of the wrong size or dtype); kInternal for library failures.
Status runPredict(const PredictRequest& request);

}  // namespace deviceops::trainer
