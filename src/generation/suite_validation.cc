#include "generation/suite_validation.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>

namespace deviceops::generation {
namespace {

using inference::DataType;
using inference::ModelMetadata;
using inference::TensorSpec;

const TensorSpec* findSpec(const std::vector<TensorSpec>& specs, const std::string& name) {
  const auto found = std::find_if(specs.begin(), specs.end(),
                                  [&](const TensorSpec& spec) { return spec.name == name; });
  return found == specs.end() ? nullptr : &*found;
}

std::string describeSpec(const TensorSpec* spec) {
  if (!spec) return "absent";
  std::vector<std::string> dims;
  for (std::int64_t dim : spec->shape) dims.push_back(dim < 0 ? "?" : std::to_string(dim));
  return fmt::format("{} [{}]", inference::dataTypeName(spec->type), fmt::join(dims, ","));
}

std::int64_t dimension(const TensorSpec* spec, std::size_t index) {
  if (!spec || index >= spec->shape.size()) return 0;
  return spec->shape[index];
}

bool isFloat(DataType type) {
  return type == DataType::kFp32 || type == DataType::kFp16 || type == DataType::kBf16;
}

class Checker {
 public:
  explicit Checker(const SuiteDefinition& definition) : definition_(definition) {}

  const ModelMetadata* metadata(Role role) const {
    const Component* component = definition_.find(role);
    return component && component->metadata ? &*component->metadata : nullptr;
  }

  void add(std::string name, std::string description, bool passed, Role role, std::string tensor,
           std::string expected, std::string found) {
    validation_.checks.push_back(Check{std::move(name), std::move(description), passed,
                                       std::string(roleName(role)), std::move(tensor),
                                       std::move(expected), std::move(found)});
  }

  // Equality of two widths; a dynamic (-1) width on either side cannot be checked and passes.
  void width(std::string name, std::string description, Role role, const std::string& tensor,
             std::int64_t expected, std::int64_t found) {
    const bool passed = expected < 0 || found < 0 ? found != 0 : expected == found;
    add(std::move(name), std::move(description), passed, role, tensor,
        expected < 0 ? "dynamic" : std::to_string(expected),
        found == 0 ? "absent" : (found < 0 ? "dynamic" : std::to_string(found)));
  }

  void components(const std::vector<Role>& required, const std::string& stage) {
    std::vector<std::string> missing, names;
    for (Role role : required) {
      names.emplace_back(roleName(role));
      if (!definition_.find(role)) missing.emplace_back(roleName(role));
    }
    add("components", fmt::format("the {} stage has every component it needs", stage),
        missing.empty(), required.front(), "", fmt::format("{}", fmt::join(names, ", ")),
        missing.empty() ? "all present" : fmt::format("missing {}", fmt::join(missing, ", ")));
  }

  void textEncoder(Role role) {
    const ModelMetadata* model = metadata(role);
    if (!model) return;
    const TensorSpec* ids = findSpec(model->inputs, "input_ids");
    add("tokenizerInput", "the text encoder takes input_ids as int32/int64 [batch, 77]",
        ids && (ids->type == DataType::kInt64 || ids->type == DataType::kInt32) &&
            ids->shape.size() == 2 && (ids->shape[1] == 77 || ids->shape[1] < 0),
        role, "input_ids", "INT64 [?,77]", describeSpec(ids));
    const std::string hidden = contextOutputName(*model);
    add("hiddenStates", "the penultimate hidden state is an output", !hidden.empty(), role,
        hidden.empty() ? "hidden_states.N" : hidden, "hidden_states.0 .. hidden_states.N",
        hidden.empty() ? "absent" : hidden);
  }

  std::int64_t hiddenWidth(Role role) const {
    const ModelMetadata* model = metadata(role);
    if (!model) return 0;
    const std::string hidden = contextOutputName(*model);
    return lastDimension(model->outputs, hidden.empty() ? "last_hidden_state" : hidden);
  }

  void unet(Role role, bool refiner) {
    const ModelMetadata* model = metadata(role);
    if (!model) return;
    const std::string prefix = refiner ? "refiner" : "";
    auto named = [&](const std::string& base) {
      if (!refiner) return base;
      std::string upper = base;
      upper[0] = static_cast<char>(std::toupper(upper[0]));
      return prefix + upper;
    };
    const std::int64_t width1 = refiner ? 0 : hiddenWidth(Role::kTextEncoder);
    const std::int64_t width2 = hiddenWidth(Role::kTextEncoder2);
    const std::int64_t context = lastDimension(model->inputs, "encoder_hidden_states");
    const std::int64_t expectedContext = width1 < 0 || width2 < 0 ? -1 : width1 + width2;
    width(named("contextWidth"),
          refiner ? "refiner context width = text_encoder_2 hidden width"
                  : "context width = text_encoder + text_encoder_2 hidden widths",
          role, "encoder_hidden_states", expectedContext, context);
    const ModelMetadata* encoder2 = metadata(Role::kTextEncoder2);
    const std::int64_t pooled = encoder2 ? lastDimension(encoder2->outputs, "text_embeds") : 0;
    width(named("pooledWidth"), "pooled width = text_encoder_2 text_embeds width", role,
          "text_embeds", pooled, lastDimension(model->inputs, "text_embeds"));
    const std::int64_t timeIds = lastDimension(model->inputs, "time_ids");
    const std::int64_t expectedTimeIds = refiner ? 5 : 6;
    add(named("timeIds"),
        refiner ? "refiner time_ids: size, crop, aesthetic score (5)"
                : "base time_ids: original size, crop, target size (6)",
        timeIds == expectedTimeIds, role, "time_ids", std::to_string(expectedTimeIds),
        timeIds == 0 ? "absent" : std::to_string(timeIds));
    const TensorSpec* sample = findSpec(model->inputs, "sample");
    const ModelMetadata* vae = metadata(Role::kVaeDecoder);
    const TensorSpec* latent = vae ? findSpec(vae->inputs, "latent_sample") : nullptr;
    width(named("latentChannels"), "UNet sample channels = VAE decoder latent channels", role,
          "sample", dimension(latent, 1), dimension(sample, 1));
    const TensorSpec* out = findSpec(model->outputs, "out_sample");
    add(named("outSample"), "out_sample has the shape of sample",
        out && sample && out->shape.size() == 4 && dimension(out, 1) == dimension(sample, 1), role,
        "out_sample", describeSpec(sample), describeSpec(out));
    const TensorSpec* timestep = findSpec(model->inputs, "timestep");
    add(named("timestep"), "timestep is a scalar or [batch] of fp32/fp16/int64",
        timestep && timestep->shape.size() <= 1 &&
            (isFloat(timestep->type) || timestep->type == DataType::kInt64),
        role, "timestep", "FP32 [] or [?]", describeSpec(timestep));
    if (!refiner) {
      std::vector<std::string> dtypes;
      bool same = true;
      for (const char* name : {"sample", "encoder_hidden_states", "text_embeds", "time_ids"}) {
        const TensorSpec* spec = findSpec(model->inputs, name);
        if (!spec) continue;
        dtypes.push_back(fmt::format("{} {}", name, inference::dataTypeName(spec->type)));
        same = same && sample && spec->type == sample->type && isFloat(spec->type);
      }
      add("inputDtypes", "the UNet's float inputs share one float dtype", same, role,
          "sample, encoder_hidden_states, text_embeds, time_ids",
          sample ? std::string(inference::dataTypeName(sample->type)) : "FP32",
          fmt::format("{}", fmt::join(dtypes, ", ")));
    }
  }

  void vae() {
    if (const ModelMetadata* decoder = metadata(Role::kVaeDecoder)) {
      const TensorSpec* sample = findSpec(decoder->outputs, "sample");
      add("vaeOutput", "the VAE decoder writes 3-channel images", dimension(sample, 1) == 3,
          Role::kVaeDecoder, "sample", "3", describeSpec(sample));
    }
    const ModelMetadata* encoder = metadata(Role::kVaeEncoder);
    const ModelMetadata* decoder = metadata(Role::kVaeDecoder);
    if (encoder && decoder) {
      const TensorSpec* parameters = findSpec(encoder->outputs, "latent_parameters");
      if (!parameters) parameters = findSpec(encoder->outputs, "latent_sample");
      const std::int64_t channels = dimension(findSpec(decoder->inputs, "latent_sample"), 1);
      const std::int64_t found = dimension(parameters, 1);
      add("vaeEncoderChannels", "VAE encoder mean+logvar = 2 x latent channels",
          parameters && (found == 2 * channels || found == channels || found < 0 || channels < 0),
          Role::kVaeEncoder, parameters ? parameters->name : "latent_parameters",
          std::to_string(2 * channels), describeSpec(parameters));
    }
  }

  Validation finish() {
    const auto passed = std::count_if(validation_.checks.begin(), validation_.checks.end(),
                                      [](const Check& check) { return check.passed; });
    validation_.score =
        validation_.checks.empty()
            ? 0
            : static_cast<double>(passed) / static_cast<double>(validation_.checks.size());
    return std::move(validation_);
  }

 private:
  const SuiteDefinition& definition_;
  Validation validation_;
};

}  // namespace

std::int64_t lastDimension(const std::vector<TensorSpec>& specs, const std::string& name) {
  const TensorSpec* spec = findSpec(specs, name);
  if (!spec || spec->shape.empty()) return 0;
  return spec->shape.back();
}

std::string contextOutputName(const ModelMetadata& encoder, int clipSkip) {
  int last = -1;
  for (const TensorSpec& spec : encoder.outputs) {
    constexpr std::string_view kPrefix = "hidden_states.";
    if (spec.name.rfind(kPrefix, 0) != 0) continue;
    int layer = 0;
    const char* begin = spec.name.data() + kPrefix.size();
    const char* end = spec.name.data() + spec.name.size();
    const auto [ptr, ec] = std::from_chars(begin, end, layer);
    if (ec == std::errc() && ptr == end) last = std::max(last, layer);
  }
  const int layer = last - 1 - clipSkip;
  if (last < 1 || layer < 0) return "";
  return "hidden_states." + std::to_string(layer);
}

Validation validateSuite(const SuiteDefinition& definition) {
  Checker checker(definition);
  checker.components({Role::kUnet, Role::kTextEncoder, Role::kTextEncoder2, Role::kTokenizer,
                      Role::kTokenizer2, Role::kVaeDecoder},
                     "base");
  checker.textEncoder(Role::kTextEncoder);
  checker.textEncoder(Role::kTextEncoder2);
  checker.unet(Role::kUnet, /*refiner=*/false);
  if (definition.hasRefiner()) checker.unet(Role::kRefinerUnet, /*refiner=*/true);
  checker.vae();
  return checker.finish();
}

}  // namespace deviceops::generation
