// Suite validation: every compatibility check of an SDXL suite, read from the ONNX signatures the
// components' sessions report (Component::metadata), never from file names or configs.
//
// Checks (Check::name): "components" (the roles a stage needs are present), "tokenizerInput"
// (input_ids int32/int64 rank 2), "hiddenStates" (the penultimate hidden state output exists),
// "contextWidth" (text_encoder + text_encoder_2 widths = UNet encoder_hidden_states),
// "pooledWidth" (text_encoder_2 text_embeds = UNet text_embeds), "timeIds" (6 base / 5 refiner),
// "latentChannels" (UNet sample = VAE latent_sample channels), "outSample", "timestep" (rank 0
// or 1, fp32/fp16/int64), "inputDtypes" (the UNet's float inputs share one dtype), "vaeOutput"
// (3 channels), "refinerContextWidth" (= text_encoder_2 width), "refinerPooledWidth",
// "refinerTimeIds", "refinerLatentChannels", "refinerTimestep", "vaeEncoderChannels".
// Pure function of the definition; thread-safe.
#pragma once

#include <string>

#include "generation/suite.h"

namespace deviceops::generation {

Validation validateSuite(const SuiteDefinition& definition);

// The hidden-state output a text encoder's context is taken from: "hidden_states.{L-1-clipSkip}"
// where hidden_states.L is its last layer (diffusers' hidden_states[-2] at clipSkip 0); empty when
// the model has no hidden_states.N outputs.
std::string contextOutputName(const inference::ModelMetadata& encoder, int clipSkip = 0);

// Last dimension of a named tensor (-1 dynamic, 0 when absent).
std::int64_t lastDimension(const std::vector<inference::TensorSpec>& specs,
                           const std::string& name);

}  // namespace deviceops::generation
