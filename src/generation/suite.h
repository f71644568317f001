// Model suites: a named set of ONNX models and tokenizers with roles that together generate
// images (SDXL base + refiner + VAE). This header is the data model shared by import, validation,
// the store and the manager; it holds no ONNX Runtime state.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "inference/session.h"

namespace deviceops::generation {

enum class Role {
  kTokenizer,
  kTokenizer2,
  kTextEncoder,
  kTextEncoder2,
  kUnet,
  kRefinerUnet,
  kVaeDecoder,
  kVaeEncoder,
};
// "tokenizer", "tokenizer_2", "text_encoder", "text_encoder_2", "unet", "refiner_unet",
// "vae_decoder", "vae_encoder".
std::string_view roleName(Role role);
std::optional<Role> parseRole(std::string_view name);
// Tokenizers are folders read by the CLIP tokenizer; every other role is one ONNX model.
bool isModelRole(Role role);

struct Component {
  Role role = Role::kUnet;
  std::filesystem::path path;   // the model file (canonical) or the tokenizer folder
  std::string sha256;           // of the model file, or of vocab.json + merges.txt
  std::uint64_t sizeBytes = 0;  // the file plus its external data (models)
  // Read from an ONNX Runtime session at import (models only).
  std::optional<inference::ModelMetadata> metadata;
};

// What the suite's own configuration files say (model_index.json, */config.json,
// scheduler_config.json) or the manifest gives.
struct SuiteSettings {
  double vaeScalingFactor = 0.13025;
  bool forceZerosForEmptyPrompt = true;          // base: zero negative embeddings for ""
  bool refinerForceZerosForEmptyPrompt = false;  // refiner: encodes "" (SDXL refiner default)
  double aestheticScore = 6.0;
  double negativeAestheticScore = 2.5;
  int sampleSize = 1024;  // default width and height, pixels
  int defaultSteps = 30;
  double defaultGuidance = 5.0;
  double defaultDenoisingStart = 0.8;
  int vaeTileLatent = 128;  // latent rows/columns of one VAE tile (sample_size / 8)
  double vaeTileOverlap = 0.25;
  nlohmann::json scheduler = nlohmann::json::object();  // diffusers scheduler_config.json
};

struct SuiteDefinition {
  std::string name;
  std::string kind = "sdxl";
  std::map<Role, Component> components;
  SuiteSettings settings;
  nlohmann::json source = nlohmann::json::object();  // {"base": path, "refiner": path} or manifest
  bool hasRefiner() const { return components.count(Role::kRefinerUnet) > 0; }
  const Component* find(Role role) const;
};

// One compatibility check, read from the models' own signatures.
struct Check {
  std::string name;  // stable id: "contextWidth", "pooledWidth", "timeIds", ...
  std::string description;
  bool passed = false;
  std::string component;  // role name
  std::string tensor;
  std::string expected;
  std::string found;
};

struct Validation {
  std::vector<Check> checks;
  double score = 0;  // passed / total, 0..1
  bool compatible() const;
  const Check* firstFailure() const;
};

nlohmann::json toJson(const Component& component);
nlohmann::json toJson(const SuiteSettings& settings);
nlohmann::json toJson(const SuiteDefinition& definition);  // for the store: everything
nlohmann::json toJson(const Check& check);
nlohmann::json toJson(const Validation& validation);
// The store's form back. kInternal when it does not parse (a corrupt row).
Result<SuiteDefinition> definitionFromJson(const nlohmann::json& json);
Result<Component> componentFromJson(const nlohmann::json& json);

}  // namespace deviceops::generation
