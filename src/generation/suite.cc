#include "generation/suite.h"

#include <algorithm>
#include <array>
#include <utility>

namespace deviceops::generation {
namespace {

constexpr std::array<std::pair<Role, std::string_view>, 8> kRoles = {{
    {Role::kTokenizer, "tokenizer"},
    {Role::kTokenizer2, "tokenizer_2"},
    {Role::kTextEncoder, "text_encoder"},
    {Role::kTextEncoder2, "text_encoder_2"},
    {Role::kUnet, "unet"},
    {Role::kRefinerUnet, "refiner_unet"},
    {Role::kVaeDecoder, "vae_decoder"},
    {Role::kVaeEncoder, "vae_encoder"},
}};

nlohmann::json specsToJson(const std::vector<inference::TensorSpec>& specs) {
  nlohmann::json out = nlohmann::json::array();
  for (const inference::TensorSpec& spec : specs) {
    out.push_back({{"name", spec.name},
                   {"datatype", inference::dataTypeName(spec.type)},
                   {"shape", spec.shape}});
  }
  return out;
}

Result<std::vector<inference::TensorSpec>> specsFromJson(const nlohmann::json& json) {
  std::vector<inference::TensorSpec> specs;
  if (!json.is_array()) return makeError(ErrorCode::kInternal, "tensor specs are not a list");
  for (const nlohmann::json& item : json) {
    inference::TensorSpec spec;
    spec.name = item.value("name", "");
    const std::optional<inference::DataType> type =
        inference::parseDataType(item.value("datatype", ""));
    if (!type) return makeError(ErrorCode::kInternal, "unknown datatype in a stored suite");
    spec.type = *type;
    spec.shape = item.value("shape", std::vector<std::int64_t>{});
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace

std::string_view roleName(Role role) {
  for (const auto& [value, name] : kRoles) {
    if (value == role) return name;
  }
  return "unknown";
}

std::optional<Role> parseRole(std::string_view name) {
  for (const auto& [value, text] : kRoles) {
    if (text == name) return value;
  }
  return std::nullopt;
}

bool isModelRole(Role role) { return role != Role::kTokenizer && role != Role::kTokenizer2; }

const Component* SuiteDefinition::find(Role role) const {
  const auto found = components.find(role);
  return found == components.end() ? nullptr : &found->second;
}

bool Validation::compatible() const { return firstFailure() == nullptr; }

const Check* Validation::firstFailure() const {
  const auto failed =
      std::find_if(checks.begin(), checks.end(), [](const Check& check) { return !check.passed; });
  return failed == checks.end() ? nullptr : &*failed;
}

nlohmann::json toJson(const Component& component) {
  nlohmann::json out = {{"role", roleName(component.role)},
                        {"path", component.path.string()},
                        {"sha256", component.sha256},
                        {"sizeBytes", component.sizeBytes}};
  if (component.metadata) {
    out["inputs"] = specsToJson(component.metadata->inputs);
    out["outputs"] = specsToJson(component.metadata->outputs);
    out["opset"] = component.metadata->opset;
    out["producer"] = component.metadata->producer;
  }
  return out;
}

nlohmann::json toJson(const SuiteSettings& settings) {
  return {{"vaeScalingFactor", settings.vaeScalingFactor},
          {"forceZerosForEmptyPrompt", settings.forceZerosForEmptyPrompt},
          {"refinerForceZerosForEmptyPrompt", settings.refinerForceZerosForEmptyPrompt},
          {"aestheticScore", settings.aestheticScore},
          {"negativeAestheticScore", settings.negativeAestheticScore},
          {"sampleSize", settings.sampleSize},
          {"defaultSteps", settings.defaultSteps},
          {"defaultGuidance", settings.defaultGuidance},
          {"defaultDenoisingStart", settings.defaultDenoisingStart},
          {"vaeTileLatent", settings.vaeTileLatent},
          {"vaeTileOverlap", settings.vaeTileOverlap},
          {"scheduler", settings.scheduler}};
}

nlohmann::json toJson(const SuiteDefinition& definition) {
  nlohmann::json components = nlohmann::json::array();
  for (const auto& [role, component] : definition.components)
    components.push_back(toJson(component));
  return {{"name", definition.name},
          {"kind", definition.kind},
          {"components", components},
          {"settings", toJson(definition.settings)},
          {"source", definition.source}};
}

nlohmann::json toJson(const Check& check) {
  return {{"name", check.name},     {"description", check.description},
          {"passed", check.passed}, {"component", check.component},
          {"tensor", check.tensor}, {"expected", check.expected},
          {"found", check.found}};
}

nlohmann::json toJson(const Validation& validation) {
  nlohmann::json checks = nlohmann::json::array();
  for (const Check& check : validation.checks) checks.push_back(toJson(check));
  return {{"score", validation.score}, {"compatible", validation.compatible()}, {"checks", checks}};
}

Result<Component> componentFromJson(const nlohmann::json& item) {
  try {
    Component component;
    const std::optional<Role> role = parseRole(item.at("role").get<std::string>());
    if (!role) return makeError(ErrorCode::kInternal, "unknown role in a stored component");
    component.role = *role;
    component.path = item.at("path").get<std::string>();
    component.sha256 = item.value("sha256", "");
    component.sizeBytes = item.value("sizeBytes", std::uint64_t{0});
    if (item.contains("inputs")) {
      inference::ModelMetadata metadata;
      ASSIGN_OR_RETURN(metadata.inputs, specsFromJson(item.at("inputs")));
      ASSIGN_OR_RETURN(metadata.outputs, specsFromJson(item.at("outputs")));
      metadata.opset = item.value("opset", std::int64_t{0});
      metadata.producer = item.value("producer", "");
      component.metadata = std::move(metadata);
    }
    return component;
  } catch (const nlohmann::json::exception& error) {
    return makeError(ErrorCode::kInternal,
                     std::string("stored component does not parse: ") + error.what());
  }
}

Result<SuiteDefinition> definitionFromJson(const nlohmann::json& json) {
  try {
    SuiteDefinition definition;
    definition.name = json.at("name").get<std::string>();
    definition.kind = json.value("kind", "sdxl");
    definition.source = json.value("source", nlohmann::json::object());
    const nlohmann::json& settings = json.at("settings");
    SuiteSettings& s = definition.settings;
    s.vaeScalingFactor = settings.value("vaeScalingFactor", s.vaeScalingFactor);
    s.forceZerosForEmptyPrompt =
        settings.value("forceZerosForEmptyPrompt", s.forceZerosForEmptyPrompt);
    s.refinerForceZerosForEmptyPrompt =
        settings.value("refinerForceZerosForEmptyPrompt", s.refinerForceZerosForEmptyPrompt);
    s.aestheticScore = settings.value("aestheticScore", s.aestheticScore);
    s.negativeAestheticScore = settings.value("negativeAestheticScore", s.negativeAestheticScore);
    s.sampleSize = settings.value("sampleSize", s.sampleSize);
    s.defaultSteps = settings.value("defaultSteps", s.defaultSteps);
    s.defaultGuidance = settings.value("defaultGuidance", s.defaultGuidance);
    s.defaultDenoisingStart = settings.value("defaultDenoisingStart", s.defaultDenoisingStart);
    s.vaeTileLatent = settings.value("vaeTileLatent", s.vaeTileLatent);
    s.vaeTileOverlap = settings.value("vaeTileOverlap", s.vaeTileOverlap);
    s.scheduler = settings.value("scheduler", nlohmann::json::object());
    for (const nlohmann::json& item : json.at("components")) {
      ASSIGN_OR_RETURN(Component component, componentFromJson(item));
      definition.components[component.role] = std::move(component);
    }
    return definition;
  } catch (const nlohmann::json::exception& error) {
    return makeError(ErrorCode::kInternal,
                     std::string("stored suite does not parse: ") + error.what());
  }
}

}  // namespace deviceops::generation
