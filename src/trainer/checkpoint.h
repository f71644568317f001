// What a checkpoint archive holds (docs/TRAINING.md, "Files in <workDir>"): a torch archive with
// `model/<name>` (parameters and buffers; '.' in names written as "__"), `optimizer/*` (the
// optimizer's own serialization), `rng` (the default CPU generator's state) and `meta` (a JSON
// string: step, epoch, stepInEpoch, history, best metric, ...). The files around it are
// checkpoint_files.h's business.
#pragma once

#include <torch/optim/optimizer.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"
#include "trainer/model.h"

namespace deviceops::trainer {

// Serializes the current state. Throws c10::Error only on library failure (out of memory).
std::string serializeCheckpoint(TrainModel& model, torch::optim::Optimizer& optimizer,
                                const nlohmann::json& meta);

// Restores model tensors, optimizer state and the RNG from `bytes` and returns the meta JSON.
// kInvalidArgument when the archive does not parse or does not match the model (missing tensor,
// other shape). On failure the model may be partly overwritten: restore another checkpoint.
Result<nlohmann::json> restoreCheckpoint(std::string_view bytes, TrainModel& model,
                                         torch::optim::Optimizer& optimizer,
                                         const at::Device& device);

}  // namespace deviceops::trainer
