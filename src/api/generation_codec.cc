#include "api/generation_codec.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <set>

#include "common/time_format.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

Error fieldError(const std::string& field, const std::string& expected) {
  return makeError(ErrorCode::kInvalidArgument, fmt::format("'{}' must be {}", field, expected),
                   {{"field", field}});
}

Status rejectUnknown(const json& object, const std::set<std::string>& known,
                     const std::string& prefix) {
  for (const auto& [key, value] : object.items()) {
    if (known.count(key) == 0) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("unknown field '{}{}'; expected one of {}", prefix, key,
                                   fmt::join(known, ", ")),
                       {{"field", prefix + key}});
    }
  }
  return Status::success();
}

Status readString(const json& object, const char* key, const std::string& field, std::string& out,
                  std::size_t maxBytes = 16384) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::success();
  if (!it->is_string()) return fieldError(field, "a string");
  out = it->get<std::string>();
  if (out.size() > maxBytes) return fieldError(field, fmt::format("at most {} bytes", maxBytes));
  return Status::success();
}

template <class T>
Status readInteger(const json& object, const char* key, const std::string& field, T& out,
                   std::int64_t min, std::int64_t max) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::success();
  if (!it->is_number_integer()) return fieldError(field, "an integer");
  const std::int64_t value = it->get<std::int64_t>();
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
    return fieldError(field, fmt::format("an integer from {} to {}", min, max));
  }
  if (value < min || value > max) {
    return fieldError(field, fmt::format("an integer from {} to {}", min, max));
  }
  out = static_cast<T>(value);
  return Status::success();
}

template <class T>
Status readOptionalInteger(const json& object, const char* key, const std::string& field,
                           std::optional<T>& out, std::int64_t min, std::int64_t max) {
  if (!object.contains(key) || object[key].is_null()) return Status::success();
  T value{};
  RETURN_IF_ERROR(readInteger(object, key, field, value, min, max));
  out = value;
  return Status::success();
}

Status readNumber(const json& object, const char* key, const std::string& field,
                  std::optional<double>& out) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::success();
  if (!it->is_number()) return fieldError(field, "a number");
  const double value = it->get<double>();
  if (!std::isfinite(value)) return fieldError(field, "a finite number");
  out = value;
  return Status::success();
}

Status readNumber(const json& object, const char* key, const std::string& field, double& out) {
  std::optional<double> value;
  RETURN_IF_ERROR(readNumber(object, key, field, value));
  if (value) out = *value;
  return Status::success();
}

Status readBool(const json& object, const char* key, const std::string& field, bool& out) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Status::success();
  if (!it->is_boolean()) return fieldError(field, "true or false");
  out = it->get<bool>();
  return Status::success();
}

Status decodeRefiner(const json& body, generation::RefinerOptions& out) {
  if (!body.contains("refiner") || body["refiner"].is_null()) return Status::success();
  const json& refiner = body["refiner"];
  if (!refiner.is_object()) return fieldError("refiner", "an object");
  RETURN_IF_ERROR(rejectUnknown(
      refiner,
      {"mode", "denoisingStart", "aestheticScore", "negativeAestheticScore", "sharpnessRatio",
       "noiseRatio", "clippedLimit", "minSharpness", "maxNoise", "minHistory"},
      "refiner."));
  if (refiner.contains("mode")) {
    const auto mode = refiner["mode"].is_string()
                          ? generation::parseRefinerMode(refiner["mode"].get<std::string>())
                          : std::nullopt;
    if (!mode) return fieldError("refiner.mode", "one of never, always, auto");
    out.mode = *mode;
  }
  RETURN_IF_ERROR(
      readNumber(refiner, "denoisingStart", "refiner.denoisingStart", out.denoisingStart));
  RETURN_IF_ERROR(
      readNumber(refiner, "aestheticScore", "refiner.aestheticScore", out.aestheticScore));
  RETURN_IF_ERROR(readNumber(refiner, "negativeAestheticScore", "refiner.negativeAestheticScore",
                             out.negativeAestheticScore));
  RETURN_IF_ERROR(
      readNumber(refiner, "sharpnessRatio", "refiner.sharpnessRatio", out.sharpnessRatio));
  RETURN_IF_ERROR(readNumber(refiner, "noiseRatio", "refiner.noiseRatio", out.noiseRatio));
  RETURN_IF_ERROR(readNumber(refiner, "clippedLimit", "refiner.clippedLimit", out.clippedLimit));
  RETURN_IF_ERROR(readNumber(refiner, "minSharpness", "refiner.minSharpness", out.minSharpness));
  RETURN_IF_ERROR(readNumber(refiner, "maxNoise", "refiner.maxNoise", out.maxNoise));
  return readInteger(refiner, "minHistory", "refiner.minHistory", out.minHistory, 0, 1000);
}

Status decodeVae(const json& body, generation::VaeOptions& out) {
  if (!body.contains("vae") || body["vae"].is_null()) return Status::success();
  const json& vae = body["vae"];
  if (vae.is_string()) {  // shorthand: "vae": "name"
    out.name = vae.get<std::string>();
    if (out.name.empty()) return fieldError("vae", "a VAE name or an object");
    return Status::success();
  }
  if (!vae.is_object()) return fieldError("vae", "a VAE name or an object");
  RETURN_IF_ERROR(rejectUnknown(vae, {"name", "tiling", "tileSize", "overlap", "slicing"}, "vae."));
  if (vae.contains("name") && !vae["name"].is_null()) {
    if (!vae["name"].is_string() || vae["name"].get<std::string>().empty()) {
      return fieldError("vae.name", "a VAE name (\"stock\" or a registered one)");
    }
    out.name = vae["name"].get<std::string>();
  }
  if (vae.contains("tiling")) {
    std::optional<generation::TilingMode> mode;
    if (vae["tiling"].is_boolean()) {
      mode = vae["tiling"].get<bool>() ? generation::TilingMode::kOn : generation::TilingMode::kOff;
    } else if (vae["tiling"].is_string()) {
      mode = generation::parseTilingMode(vae["tiling"].get<std::string>());
    }
    if (!mode) return fieldError("vae.tiling", "one of on, off, auto (or true/false)");
    out.tiling = *mode;
  }
  if (vae.contains("tileSize") && !vae["tileSize"].is_null()) {
    int tileSize = 0;
    RETURN_IF_ERROR(readInteger(vae, "tileSize", "vae.tileSize", tileSize, 16, 8192));
    if (tileSize % 8 != 0) return fieldError("vae.tileSize", "a multiple of 8 pixels");
    out.tileLatent = tileSize / 8;
  }
  RETURN_IF_ERROR(readNumber(vae, "overlap", "vae.overlap", out.overlap));
  return readBool(vae, "slicing", "vae.slicing", out.slicing);
}

json encodeComponent(const generation::Component& component,
                     const generation::ComponentStatus* status) {
  json out = generation::toJson(component);
  if (status) {
    out["modelName"] = status->modelName;
    out["state"] = status->state;
    out["chargedBytes"] = status->chargedBytes;
    out["sharedWith"] = status->sharedWith;
    json placements = json::array();
    for (const inference::Placement& placement : status->placements) {
      placements.push_back({{"deviceId", placement.deviceId},
                            {"provider", placement.provider},
                            {"chargedBytes", placement.chargedBytes}});
    }
    out["placements"] = placements;
  }
  return out;
}

}  // namespace

Result<generation::ImportRequest> decodeSuiteImport(const json& body) {
  RETURN_IF_ERROR(rejectUnknown(body, {"name", "path", "refinerPath", "manifest"}, ""));
  generation::ImportRequest request;
  RETURN_IF_ERROR(readString(body, "name", "name", request.name, 64));
  std::string path, refinerPath;
  RETURN_IF_ERROR(readString(body, "path", "path", path, 4096));
  RETURN_IF_ERROR(readString(body, "refinerPath", "refinerPath", refinerPath, 4096));
  if (!path.empty()) request.path = path;
  if (!refinerPath.empty()) request.refinerPath = refinerPath;
  if (body.contains("manifest") && !body["manifest"].is_null()) {
    if (!body["manifest"].is_object()) return fieldError("manifest", "an object");
    request.manifest = body["manifest"];
  }
  if (!request.manifest && !request.path) {
    return makeError(ErrorCode::kInvalidArgument,
                     "give 'path' (an ONNX export folder inside the model roots) or 'manifest'",
                     {{"field", "path"}});
  }
  if (request.refinerPath && !request.path) return fieldError("path", "given with refinerPath");
  return request;
}

Result<generation::GenerationRequest> decodeGenerationRequest(const json& body) {
  RETURN_IF_ERROR(rejectUnknown(
      body,
      {"suite", "prompt", "prompt2", "negativePrompt", "negativePrompt2", "width", "height",
       "steps", "guidance", "guidanceRescale", "scheduler", "timestepSpacing", "seed", "batch",
       "clipSkip", "refiner", "vae", "output", "previewEvery"},
      ""));
  generation::GenerationRequest request;
  RETURN_IF_ERROR(readString(body, "suite", "suite", request.suite, 128));
  if (request.suite.empty()) return fieldError("suite", "the name or id of an imported suite");
  RETURN_IF_ERROR(readString(body, "prompt", "prompt", request.prompt));
  RETURN_IF_ERROR(readString(body, "prompt2", "prompt2", request.prompt2));
  RETURN_IF_ERROR(readString(body, "negativePrompt", "negativePrompt", request.negativePrompt));
  RETURN_IF_ERROR(readString(body, "negativePrompt2", "negativePrompt2", request.negativePrompt2));
  RETURN_IF_ERROR(readOptionalInteger(body, "width", "width", request.width, 1, 1 << 20));
  RETURN_IF_ERROR(readOptionalInteger(body, "height", "height", request.height, 1, 1 << 20));
  RETURN_IF_ERROR(readOptionalInteger(body, "steps", "steps", request.steps, -1000000, 1000000));
  RETURN_IF_ERROR(readNumber(body, "guidance", "guidance", request.guidance));
  RETURN_IF_ERROR(readNumber(body, "guidanceRescale", "guidanceRescale", request.guidanceRescale));
  if (body.contains("scheduler") && !body["scheduler"].is_null()) {
    const auto kind = body["scheduler"].is_string()
                          ? diffusion::parseSampler(body["scheduler"].get<std::string>())
                          : std::nullopt;
    if (!kind) return fieldError("scheduler", "one of euler, euler_ancestral, dpmpp_2m_karras");
    request.scheduler = *kind;
  }
  if (body.contains("timestepSpacing") && !body["timestepSpacing"].is_null()) {
    const auto spacing = body["timestepSpacing"].is_string()
                             ? diffusion::parseSpacing(body["timestepSpacing"].get<std::string>())
                             : std::nullopt;
    if (!spacing) return fieldError("timestepSpacing", "one of leading, trailing, linspace");
    request.timestepSpacing = *spacing;
  }
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_unsigned() &&
        !(body["seed"].is_number_integer() && body["seed"].get<std::int64_t>() >= 0)) {
      return fieldError("seed", "a non-negative integer");
    }
    const std::uint64_t seed = body["seed"].get<std::uint64_t>();
    if (seed > (1ULL << 53)) return fieldError("seed", "at most 2^53 (exact in JSON)");
    request.seed = seed;
  }
  RETURN_IF_ERROR(readInteger(body, "batch", "batch", request.batch, -1000000, 1000000));
  RETURN_IF_ERROR(readInteger(body, "clipSkip", "clipSkip", request.clipSkip, 0, 64));
  RETURN_IF_ERROR(
      readInteger(body, "previewEvery", "previewEvery", request.previewEvery, 0, 100000));
  RETURN_IF_ERROR(decodeRefiner(body, request.refiner));
  RETURN_IF_ERROR(decodeVae(body, request.vae));
  if (body.contains("output") && !body["output"].is_null()) {
    const json& output = body["output"];
    if (output == "png") {
      request.output = generation::OutputFormat::kPng;
    } else if (output == "latents" || output == "npy") {
      request.output = generation::OutputFormat::kLatents;
    } else {
      return fieldError("output", "png or latents");
    }
  }
  return request;
}

json encodeSuiteSummary(const generation::SuiteInfo& suite) {
  return {{"id", suite.id},
          {"name", suite.name},
          {"kind", suite.definition.kind},
          {"state", suite.state},
          {"loaded", suite.loaded},
          {"hasRefiner", suite.definition.hasRefiner()},
          {"score", suite.validation.score},
          {"memoryByDevice", suite.memoryByDevice},
          {"activeGenerations", suite.activeGenerations},
          {"createdAt", formatIso8601(suite.createdAt)},
          {"lastUsedAt", suite.lastUsed ? json(formatIso8601(*suite.lastUsed)) : json(nullptr)},
          {"defaultVae", suite.defaultVae},
          {"vaes", suite.vaes}};
}

json encodeSuite(const generation::SuiteInfo& suite) {
  json out = encodeSuiteSummary(suite);
  json components = json::array();
  for (const auto& [role, component] : suite.definition.components) {
    const generation::ComponentStatus* status = nullptr;
    for (const generation::ComponentStatus& candidate : suite.components) {
      if (candidate.role == role) status = &candidate;
    }
    components.push_back(encodeComponent(component, status));
  }
  out["components"] = components;
  out["settings"] = generation::toJson(suite.definition.settings);
  out["source"] = suite.definition.source;
  out["validation"] = generation::toJson(suite.validation);
  return out;
}

json encodeSuites(const std::vector<generation::SuiteInfo>& suites) {
  json list = json::array();
  for (const generation::SuiteInfo& suite : suites) list.push_back(encodeSuiteSummary(suite));
  return {{"suites", list}, {"count", list.size()}};
}

json encodeGenerationJob(const generation::GenerationJob& job) { return generation::toJson(job); }

json encodeGenerationJobs(const std::vector<generation::GenerationJob>& jobs) {
  json list = json::array();
  for (const generation::GenerationJob& job : jobs) {
    json item = generation::toJson(job);
    item.erase("report");
    list.push_back(std::move(item));
  }
  return {{"jobs", list}, {"count", list.size()}};
}

Result<generation::VaeAddRequest> decodeVaeAdd(const json& body) {
  if (!body.is_object()) return fieldError("body", "a JSON object");
  RETURN_IF_ERROR(rejectUnknown(body, {"name", "path", "format"}, ""));
  generation::VaeAddRequest request;
  RETURN_IF_ERROR(readString(body, "name", "name", request.name, 64));
  std::string path, format;
  RETURN_IF_ERROR(readString(body, "path", "path", path, 4096));
  if (path.empty()) return fieldError("path", "the VAE file's path under the model roots");
  request.path = path;
  RETURN_IF_ERROR(readString(body, "format", "format", format, 16));
  if (!format.empty()) {
    request.format = vae::parseFileFormat(format);
    if (!request.format) return fieldError("format", "one of safetensors, pt, ckpt, bin");
  }
  return request;
}

Result<generation::VaeAddRequest> decodeVaeUpload(const std::map<std::string, std::string>& query) {
  generation::VaeAddRequest request;
  for (const auto& [key, value] : query) {
    if (key == "name") {
      request.name = value;
    } else if (key == "format") {
      request.format = vae::parseFileFormat(value);
      if (!request.format) return fieldError("format", "one of safetensors, pt, ckpt, bin");
    } else {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("unknown query parameter '{}'; expected name, format", key),
                       {{"field", key}});
    }
  }
  if (!request.format) return fieldError("format", "one of safetensors, pt, ckpt, bin");
  if (request.name.empty()) return fieldError("name", "a name for the uploaded VAE");
  request.uploaded = true;
  return request;
}

Result<std::string> decodeVaeSelect(const json& body) {
  if (!body.is_object()) return fieldError("body", "a JSON object");
  RETURN_IF_ERROR(rejectUnknown(body, {"name"}, ""));
  std::string name;
  RETURN_IF_ERROR(readString(body, "name", "name", name, 64));
  if (name.empty()) return fieldError("name", "\"stock\" or a registered VAE's name");
  return name;
}

Result<generation::VaeCompareRequest> decodeVaeCompare(const json& body) {
  generation::VaeCompareRequest request;
  if (body.is_null()) return request;
  if (!body.is_object()) return fieldError("body", "a JSON object");
  RETURN_IF_ERROR(rejectUnknown(body, {"candidates", "images", "size", "select"}, ""));
  for (const char* key : {"candidates", "images"}) {
    if (!body.contains(key) || body[key].is_null()) continue;
    if (!body[key].is_array()) return fieldError(key, "an array of strings");
    for (const json& item : body[key]) {
      if (!item.is_string() || item.get<std::string>().empty()) {
        return fieldError(key, "an array of non-empty strings");
      }
      if (std::string_view(key) == "candidates") {
        request.candidates.push_back(item.get<std::string>());
      } else {
        request.images.emplace_back(item.get<std::string>());
      }
    }
  }
  RETURN_IF_ERROR(readInteger(body, "size", "size", request.size, 16, 2048));
  RETURN_IF_ERROR(readBool(body, "select", "select", request.select));
  return request;
}

json encodeVae(const generation::VaeRecord& record, const std::string& suiteId,
               const std::string& defaultVae) {
  const auto component = [](const generation::Component& part, std::size_t patched) {
    return json{{"modelName", generation::SuiteManager::modelNameOf(part)},
                {"sha256", part.sha256},
                {"sizeBytes", part.sizeBytes},
                {"patched", patched}};
  };
  // The stored form, with the components as the API shows them.
  json out = generation::toJson(record);
  for (const char* key : {"decoder", "encoder", "decoderPatched", "encoderPatched", "createdMs"}) {
    out.erase(key);
  }
  out["suite"] = suiteId;
  out["default"] = record.name == defaultVae;
  out["components"] = {
      {"vae_decoder", component(record.decoder, record.decoderPatched)},
      {"vae_encoder",
       record.encoder ? component(*record.encoder, record.encoderPatched) : json(nullptr)}};
  out["createdAt"] = formatIso8601(record.createdAt);
  return out;
}

json encodeVaes(const generation::VaeList& list, const generation::SuiteInfo& suite) {
  generation::VaeRecord stock;
  stock.name = std::string(generation::kStockVae);
  stock.createdAt = suite.createdAt;
  if (const generation::Component* decoder = suite.definition.find(generation::Role::kVaeDecoder)) {
    stock.decoder = *decoder;
  }
  if (const generation::Component* encoder = suite.definition.find(generation::Role::kVaeEncoder)) {
    stock.encoder = *encoder;
  }
  if (list.comparison.is_object()) {
    for (const json& row : list.comparison.value("ranking", json::array())) {
      if (row.value("name", "") != generation::kStockVae) continue;
      stock.quality = {{"psnr", row.at("psnr")},
                       {"ssim", row.at("ssim")},
                       {"rank", row.at("rank")},
                       {"comparedAt", list.comparison.at("comparedAt")}};
    }
  }
  json stockJson = encodeVae(stock, list.suiteId, list.defaultVae);
  stockJson["source"] = nullptr;
  for (const char* key : {"keyFormat", "prefix", "tensors", "parameters", "dtypes", "patchMs"}) {
    stockJson[key] = nullptr;
  }
  json vaes = json::array({stockJson});
  for (const generation::VaeRecord& record : list.vaes) {
    vaes.push_back(encodeVae(record, list.suiteId, list.defaultVae));
  }
  return {{"suite", list.suiteId},
          {"default", list.defaultVae},
          {"vaes", vaes},
          {"count", vaes.size()},
          {"comparison", list.comparison}};
}

}  // namespace deviceops::api
