#include "generation/suite_import.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <system_error>

#include "common/sha256.h"
#include "generation/suite_validation.h"
#include "inference/registry_paths.h"

namespace deviceops::generation {
namespace fs = std::filesystem;
namespace {

Result<nlohmann::json> readJsonFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return makeError(ErrorCode::kNotFound, fmt::format("{} does not exist", file.string()),
                     {{"path", file.string()}});
  }
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{} is not a JSON object", file.string()),
                     {{"path", file.string()}});
  }
  return json;
}

// The JSON object in `file` when it exists; an empty object when it does not.
Result<nlohmann::json> optionalJsonFile(const fs::path& file) {
  std::error_code error;
  if (!fs::exists(file, error)) return nlohmann::json::object();
  return readJsonFile(file);
}

std::uint64_t folderBytes(const fs::path& folder) {
  std::uint64_t total = 0;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(folder, error)) {
    if (entry.is_regular_file(error)) total += entry.file_size(error);
  }
  return total;
}

Result<Component> modelComponent(Role role, const fs::path& requested,
                                 const std::vector<fs::path>& roots) {
  Result<fs::path> file = inference::resolveModelFile(requested, roots);
  if (!file.ok()) {
    Error error = file.error();
    error.message = fmt::format("{}: {}", roleName(role), error.message);
    error.details["component"] = roleName(role);
    return error;
  }
  Component component;
  component.role = role;
  component.path = *file;
  Result<inference::ModelMetadata> metadata = inference::inspectModel(*file);
  if (!metadata.ok()) {
    Error error = metadata.error();
    error.message = fmt::format("{} ({}): {}", roleName(role), file->string(), error.message);
    error.details["component"] = roleName(role);
    return error;
  }
  component.metadata = std::move(metadata.value());
  ASSIGN_OR_RETURN(component.sha256, sha256File(*file));
  component.sizeBytes = folderBytes(file->parent_path());
  return component;
}

Result<Component> tokenizerComponent(Role role, const fs::path& requested,
                                     const std::vector<fs::path>& roots) {
  Result<fs::path> folder = inference::resolveModelDirectory(requested, roots);
  if (!folder.ok()) {
    Error error = folder.error();
    error.message = fmt::format("{}: {}", roleName(role), error.message);
    error.details["component"] = roleName(role);
    return error;
  }
  Sha256 hash;
  for (const char* name : {"vocab.json", "merges.txt"}) {
    std::ifstream in(*folder / name, std::ios::binary);
    if (!in) {
      return makeError(ErrorCode::kNotFound,
                       fmt::format("{}: {} has no {}", roleName(role), folder->string(), name),
                       {{"component", roleName(role)}, {"path", (*folder / name).string()}});
    }
    std::stringstream text;
    text << in.rdbuf();
    hash.update(text.str());
  }
  Component component;
  component.role = role;
  component.path = *folder;
  component.sha256 = hash.finishHex();
  component.sizeBytes = folderBytes(*folder);
  return component;
}

Status applySchedulerFolder(const fs::path& folder, SuiteSettings& settings) {
  ASSIGN_OR_RETURN(nlohmann::json scheduler,
                   optionalJsonFile(folder / "scheduler" / "scheduler_config.json"));
  settings.scheduler = std::move(scheduler);
  return Status::success();
}

Status applyConfigs(const fs::path& folder, SuiteSettings& settings) {
  ASSIGN_OR_RETURN(nlohmann::json index, optionalJsonFile(folder / "model_index.json"));
  if (index.contains("force_zeros_for_empty_prompt") &&
      index["force_zeros_for_empty_prompt"].is_boolean()) {
    settings.forceZerosForEmptyPrompt = index["force_zeros_for_empty_prompt"].get<bool>();
  }
  ASSIGN_OR_RETURN(nlohmann::json vae, optionalJsonFile(folder / "vae_decoder" / "config.json"));
  if (vae.contains("scaling_factor") && vae["scaling_factor"].is_number()) {
    settings.vaeScalingFactor = vae["scaling_factor"].get<double>();
  }
  if (vae.contains("sample_size") && vae["sample_size"].is_number_integer()) {
    settings.vaeTileLatent = std::max(2, vae["sample_size"].get<int>() / 8);
  }
  ASSIGN_OR_RETURN(nlohmann::json unet, optionalJsonFile(folder / "unet" / "config.json"));
  if (unet.contains("sample_size") && unet["sample_size"].is_number_integer()) {
    settings.sampleSize = unet["sample_size"].get<int>() * 8;
  }
  return applySchedulerFolder(folder, settings);
}

Status importBaseFolder(const fs::path& requested, const std::vector<fs::path>& roots,
                        SuiteDefinition& definition) {
  ASSIGN_OR_RETURN(const fs::path folder, inference::resolveModelDirectory(requested, roots));
  definition.source["base"] = folder.string();
  const struct {
    Role role;
    const char* path;
    bool optional;
  } kLayout[] = {
      {Role::kTokenizer, "tokenizer", false},
      {Role::kTokenizer2, "tokenizer_2", false},
      {Role::kTextEncoder, "text_encoder/model.onnx", false},
      {Role::kTextEncoder2, "text_encoder_2/model.onnx", false},
      {Role::kUnet, "unet/model.onnx", false},
      {Role::kVaeDecoder, "vae_decoder/model.onnx", false},
      {Role::kVaeEncoder, "vae_encoder/model.onnx", true},
  };
  for (const auto& item : kLayout) {
    std::error_code error;
    if (item.optional && !fs::exists(folder / item.path, error)) continue;
    Result<Component> component = isModelRole(item.role)
                                      ? modelComponent(item.role, folder / item.path, roots)
                                      : tokenizerComponent(item.role, folder / item.path, roots);
    if (!component.ok()) return component.error();
    definition.components[item.role] = std::move(component.value());
  }
  return applyConfigs(folder, definition.settings);
}

Status importRefinerFolder(const fs::path& requested, const std::vector<fs::path>& roots,
                           SuiteDefinition& definition) {
  ASSIGN_OR_RETURN(const fs::path folder, inference::resolveModelDirectory(requested, roots));
  definition.source["refiner"] = folder.string();
  ASSIGN_OR_RETURN(Component unet,
                   modelComponent(Role::kRefinerUnet, folder / "unet/model.onnx", roots));
  definition.components[Role::kRefinerUnet] = std::move(unet);
  ASSIGN_OR_RETURN(nlohmann::json index, optionalJsonFile(folder / "model_index.json"));
  if (index.contains("force_zeros_for_empty_prompt") &&
      index["force_zeros_for_empty_prompt"].is_boolean()) {
    definition.settings.refinerForceZerosForEmptyPrompt =
        index["force_zeros_for_empty_prompt"].get<bool>();
  }
  // The shared components: the refiner's own copies are used only when the base has none.
  nlohmann::json ignored = nlohmann::json::array();
  const struct {
    Role role;
    const char* path;
  } kShared[] = {{Role::kTextEncoder2, "text_encoder_2/model.onnx"},
                 {Role::kVaeDecoder, "vae_decoder/model.onnx"},
                 {Role::kVaeEncoder, "vae_encoder/model.onnx"}};
  for (const auto& item : kShared) {
    std::error_code error;
    if (!fs::exists(folder / item.path, error)) continue;
    const Component* base = definition.find(item.role);
    if (base) {
      ASSIGN_OR_RETURN(const std::string sha, sha256File(folder / item.path));
      if (sha != base->sha256) ignored.push_back(roleName(item.role));
      continue;
    }
    ASSIGN_OR_RETURN(Component component, modelComponent(item.role, folder / item.path, roots));
    definition.components[item.role] = std::move(component);
  }
  if (!ignored.empty()) definition.source["refinerIgnored"] = ignored;
  return Status::success();
}

// ---- manifest ---------------------------------------------------------------------------------

Status checkDeclared(const nlohmann::json& declared, const Component& component, const char* key,
                     const std::vector<inference::TensorSpec>& specs, const std::string& tensor,
                     std::int64_t found) {
  if (!declared.contains(key)) return Status::success();
  if (!declared[key].is_number_integer()) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("manifest: components.{}.{} must be an integer", roleName(component.role), key),
        {{"component", roleName(component.role)}, {"field", key}});
  }
  (void)specs;
  const std::int64_t expected = declared[key].get<std::int64_t>();
  if (found != expected) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("manifest: {} declares {} {} but its tensor '{}' has {}",
                    roleName(component.role), key, expected, tensor,
                    found == 0 ? std::string("no such tensor") : std::to_string(found)),
        {{"component", roleName(component.role)},
         {"tensor", tensor},
         {"declared", expected},
         {"found", found}});
  }
  return Status::success();
}

Status checkDeclaredSignature(const nlohmann::json& declared, const Component& component) {
  if (!component.metadata) return Status::success();
  const inference::ModelMetadata& model = *component.metadata;
  switch (component.role) {
    case Role::kTextEncoder:
    case Role::kTextEncoder2: {
      const std::string hidden = contextOutputName(model);
      RETURN_IF_ERROR(checkDeclared(declared, component, "hiddenWidth", model.outputs, hidden,
                                    lastDimension(model.outputs, hidden)));
      return checkDeclared(declared, component, "pooledWidth", model.outputs, "text_embeds",
                           lastDimension(model.outputs, "text_embeds"));
    }
    case Role::kUnet:
    case Role::kRefinerUnet: {
      RETURN_IF_ERROR(checkDeclared(declared, component, "contextWidth", model.inputs,
                                    "encoder_hidden_states",
                                    lastDimension(model.inputs, "encoder_hidden_states")));
      RETURN_IF_ERROR(checkDeclared(declared, component, "pooledWidth", model.inputs, "text_embeds",
                                    lastDimension(model.inputs, "text_embeds")));
      RETURN_IF_ERROR(checkDeclared(declared, component, "timeIds", model.inputs, "time_ids",
                                    lastDimension(model.inputs, "time_ids")));
      const auto sample = std::find_if(model.inputs.begin(), model.inputs.end(),
                                       [](const auto& spec) { return spec.name == "sample"; });
      return checkDeclared(
          declared, component, "latentChannels", model.inputs, "sample",
          sample != model.inputs.end() && sample->shape.size() > 1 ? sample->shape[1] : 0);
    }
    case Role::kVaeDecoder: {
      const auto latent =
          std::find_if(model.inputs.begin(), model.inputs.end(),
                       [](const auto& spec) { return spec.name == "latent_sample"; });
      return checkDeclared(
          declared, component, "latentChannels", model.inputs, "latent_sample",
          latent != model.inputs.end() && latent->shape.size() > 1 ? latent->shape[1] : 0);
    }
    default:
      return Status::success();
  }
}

Status applyManifestSettings(const nlohmann::json& settings, SuiteSettings& out) {
  if (!settings.is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "manifest: settings must be an object");
  }
  const auto number = [&](const char* key, double& field) -> Status {
    if (!settings.contains(key)) return Status::success();
    if (!settings[key].is_number()) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("manifest: settings.{} must be a number", key),
                       {{"field", std::string("settings.") + key}});
    }
    field = settings[key].get<double>();
    return Status::success();
  };
  const auto integer = [&](const char* key, int& field) -> Status {
    if (!settings.contains(key)) return Status::success();
    if (!settings[key].is_number_integer()) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("manifest: settings.{} must be an integer", key),
                       {{"field", std::string("settings.") + key}});
    }
    field = settings[key].get<int>();
    return Status::success();
  };
  const auto boolean = [&](const char* key, bool& field) -> Status {
    if (!settings.contains(key)) return Status::success();
    if (!settings[key].is_boolean()) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("manifest: settings.{} must be true or false", key),
                       {{"field", std::string("settings.") + key}});
    }
    field = settings[key].get<bool>();
    return Status::success();
  };
  RETURN_IF_ERROR(number("vaeScalingFactor", out.vaeScalingFactor));
  RETURN_IF_ERROR(boolean("forceZerosForEmptyPrompt", out.forceZerosForEmptyPrompt));
  RETURN_IF_ERROR(boolean("refinerForceZerosForEmptyPrompt", out.refinerForceZerosForEmptyPrompt));
  RETURN_IF_ERROR(number("aestheticScore", out.aestheticScore));
  RETURN_IF_ERROR(number("negativeAestheticScore", out.negativeAestheticScore));
  RETURN_IF_ERROR(integer("sampleSize", out.sampleSize));
  RETURN_IF_ERROR(integer("defaultSteps", out.defaultSteps));
  RETURN_IF_ERROR(number("defaultGuidance", out.defaultGuidance));
  RETURN_IF_ERROR(number("defaultDenoisingStart", out.defaultDenoisingStart));
  RETURN_IF_ERROR(integer("vaeTileLatent", out.vaeTileLatent));
  RETURN_IF_ERROR(number("vaeTileOverlap", out.vaeTileOverlap));
  return Status::success();
}

Status importManifest(const nlohmann::json& manifest, const std::vector<fs::path>& roots,
                      SuiteDefinition& definition) {
  if (!manifest.is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "manifest must be a JSON object");
  }
  if (manifest.contains("kind") && manifest["kind"] != "sdxl") {
    return makeError(ErrorCode::kInvalidArgument, "manifest: only kind \"sdxl\" is supported",
                     {{"field", "kind"}});
  }
  if (!manifest.contains("components") || !manifest["components"].is_object()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "manifest: components must be an object of role -> {path}",
                     {{"field", "components"}});
  }
  definition.source["manifest"] = true;
  for (const auto& [key, item] : manifest["components"].items()) {
    const std::optional<Role> role = parseRole(key);
    if (!role) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("manifest: unknown component role '{}'", key),
                       {{"field", "components." + key}});
    }
    if (!item.is_object() || !item.contains("path") || !item["path"].is_string()) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("manifest: components.{}.path must be a string", key),
                       {{"field", "components." + key + ".path"}});
    }
    const fs::path path = item["path"].get<std::string>();
    ASSIGN_OR_RETURN(Component component, isModelRole(*role)
                                              ? modelComponent(*role, path, roots)
                                              : tokenizerComponent(*role, path, roots));
    if (item.contains("sha256") && item["sha256"] != component.sha256) {
      return makeError(
          ErrorCode::kInvalidArgument,
          fmt::format("manifest: {} sha256 differs from the file's ({})", key, component.sha256),
          {{"component", key}, {"found", component.sha256}});
    }
    RETURN_IF_ERROR(checkDeclaredSignature(item, component));
    definition.components[*role] = std::move(component);
  }
  if (manifest.contains("settings")) {
    RETURN_IF_ERROR(applyManifestSettings(manifest["settings"], definition.settings));
  }
  if (manifest.contains("scheduler")) {
    if (!manifest["scheduler"].is_object()) {
      return makeError(ErrorCode::kInvalidArgument, "manifest: scheduler must be an object",
                       {{"field", "scheduler"}});
    }
    definition.settings.scheduler = manifest["scheduler"];
  }
  return Status::success();
}

}  // namespace

Result<SuiteDefinition> importSuite(const ImportRequest& request,
                                    const std::vector<fs::path>& modelRoots) {
  SuiteDefinition definition;
  definition.name = request.name;
  if (request.manifest) {
    if (request.path || request.refinerPath) {
      return makeError(ErrorCode::kInvalidArgument,
                       "give either a manifest or path/refinerPath, not both");
    }
    if (definition.name.empty() && request.manifest->is_object() &&
        request.manifest->contains("name") && (*request.manifest)["name"].is_string()) {
      definition.name = (*request.manifest)["name"].get<std::string>();
    }
    RETURN_IF_ERROR(importManifest(*request.manifest, modelRoots, definition));
  } else {
    if (!request.path) {
      return makeError(ErrorCode::kInvalidArgument, "give path (an ONNX export folder) or manifest",
                       {{"field", "path"}});
    }
    RETURN_IF_ERROR(importBaseFolder(*request.path, modelRoots, definition));
    if (request.refinerPath) {
      RETURN_IF_ERROR(importRefinerFolder(*request.refinerPath, modelRoots, definition));
    }
  }
  if (definition.name.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "a suite name is required", {{"field", "name"}});
  }
  return definition;
}

}  // namespace deviceops::generation
