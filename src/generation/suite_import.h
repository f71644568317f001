// Suite import: from an Optimum/diffusers ONNX export folder (and a refiner folder of the same
// layout), or from an explicit JSON manifest. Every path must resolve inside the model roots
// (kPermissionDenied otherwise, kNotFound when missing). Each ONNX component is opened once with
// ONNX Runtime on the CPU to read its signature (a file that is not ONNX, or a truncated one, is
// kInvalidArgument naming the component); tokenizer folders must hold vocab.json and merges.txt.
//
// Folder layout (base): model_index.json, tokenizer/, tokenizer_2/, text_encoder/model.onnx,
// text_encoder_2/model.onnx, unet/model.onnx (+ model.onnx_data), vae_decoder/model.onnx,
// vae_encoder/model.onnx (optional), scheduler/scheduler_config.json, */config.json.
// Refiner folder: unet/ becomes the suite's refiner_unet; its tokenizer_2, text_encoder_2 and VAE
// are the base's (diffusers' refiner recipe shares them); a refiner copy whose bytes differ is
// reported in `source.refinerIgnored`.
//
// Manifest: {"name", "kind": "sdxl", "components": {"<role>": {"path", "sha256"?, declared
// signature values?}}, "settings": {...SuiteSettings keys}, "scheduler": {diffusers keys}}.
// Declared values (`hiddenWidth`, `pooledWidth` for text encoders; `contextWidth`, `pooledWidth`,
// `timeIds`, `latentChannels` for UNets; `latentChannels` for the VAE) are compared with the
// signature: a disagreement is kInvalidArgument naming the component and the tensor. A declared
// sha256 that differs is kInvalidArgument.
// Thread-safe (no shared state); slow for large models (each is opened once).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "generation/suite.h"

namespace deviceops::generation {

struct ImportRequest {
  std::string name;
  std::optional<std::filesystem::path> path;         // base export folder
  std::optional<std::filesystem::path> refinerPath;  // refiner export folder
  std::optional<nlohmann::json> manifest;
};

Result<SuiteDefinition> importSuite(const ImportRequest& request,
                                    const std::vector<std::filesystem::path>& modelRoots);

}  // namespace deviceops::generation
