// KServe v2 / Triton over the ModelRegistry: /v2, /v2/health/*, /v2/models/..., /v2/repository/...
// Triton's error shape {"error": "message"} (the route group's), Triton's status codes for
// readiness (200 ready, 400 not ready, empty bodies), and binary tensor data (kserve_codec.h).
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "api/inference_codec.h"
#include "api/inference_routes.h"
#include "api/route_table.h"
#include "api/routes.h"
#include "inference/model_repository.h"
#include "tensor/kserve_codec.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

constexpr std::string_view kServerName = "deviceops";

std::string versionParam(const http::Request& request) {
  const auto it = request.pathParams.find("v");
  return it == request.pathParams.end() ? std::string() : it->second;
}

// Parameters Triton clients may send with a load; those that would change the model are
// refused rather than ignored.
Status checkRepositoryLoadBody(const http::Request& request) {
  if (request.body.empty()) return {};
  ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
  if (const auto parameters = body.find("parameters"); parameters != body.end()) {
    if (!parameters->is_object()) {
      return makeError(ErrorCode::kInvalidArgument, "'parameters' must be an object");
    }
    for (const auto& [key, value] : parameters->items()) {
      if (key == "config" || key.rfind("file:", 0) == 0) {
        return makeError(ErrorCode::kInvalidArgument,
                         fmt::format("load parameter '{}' is not supported; load files with POST "
                                     "/api/inference/model/load",
                                     key));
      }
    }
  }
  return {};
}

// {"ready": bool} of POST /v2/repository/index; an empty body lists everything.
Result<bool> decodeReadyOnly(const http::Request& request) {
  if (request.body.empty()) return false;
  ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
  if (!body.contains("ready")) return false;
  if (!body["ready"].is_boolean()) {
    return makeError(ErrorCode::kInvalidArgument, "'ready' must be true or false");
  }
  return body["ready"].get<bool>();
}

// The server's own endpoints; they answer whether or not inference runs.
class KServeServerRoutes {
 public:
  KServeServerRoutes(AppContext& context, bool inferenceEnabled)
      : context_(context), inferenceEnabled_(inferenceEnabled) {}

  Result<http::Reply> live(http::Request&) { return http::emptyReply(200); }
  Result<http::Reply> ready(http::Request&) {
    return http::emptyReply(context_.ready.load() && inferenceEnabled_ ? 200 : 400);
  }
  Result<http::Reply> metadata(http::Request&) {
    return http::jsonReply(
        200, {{"name", kServerName},
              {"version", DEVICEOPS_VERSION},
              {"extensions", {"binary_tensor_data", "model_repository", "statistics"}}});
  }

 private:
  AppContext& context_;
  bool inferenceEnabled_;
};

constexpr auto kInline = http::Execution::kInline;
constexpr RouteSpec<KServeServerRoutes> kServerRoutes[] = {
    {"GET", "/v2/health/live", &KServeServerRoutes::live, kInline, std::nullopt, false},
    {"GET", "/v2/health/ready", &KServeServerRoutes::ready, kInline, std::nullopt, false},
    {"GET", "/v2", &KServeServerRoutes::metadata, kInline},
};

class KServeRoutes {
 public:
  KServeRoutes(inference::ModelRegistry& models, bool autoReload)
      : models_(models), autoReload_(autoReload) {}

  Result<http::Reply> infer(http::Request& request) {
    const auto started = std::chrono::steady_clock::now();
    std::optional<std::string_view> headerLength;
    if (request.headers.count("inference-header-content-length") != 0) {
      headerLength = request.header("inference-header-content-length");
    }
    ASSIGN_OR_RETURN(inference::V2InferRequest decoded,
                     inference::decodeV2InferRequest(request.body, headerLength));
    inference::InferRequest infer;
    infer.model = request.pathParam("m");
    infer.version = versionParam(request);
    infer.inputs = std::move(decoded.inputs);
    for (const auto& output : decoded.outputs) infer.outputs.push_back(output.name);
    infer.control.cancelled = request.cancelled;
    if (decoded.timeout) infer.control.deadline = started + *decoded.timeout;
    ASSIGN_OR_RETURN(inference::InferResult result, models_.infer(std::move(infer)));
    inference::EncodedBody encoded = inference::encodeV2InferResponse(
        {result.modelName, result.modelVersion, decoded.id, std::move(result.outputs)}, decoded);
    if (!encoded.jsonLength)
      return http::bytesReply(200, "application/json", std::move(encoded.body));
    return http::bytesReply(200, "application/octet-stream", std::move(encoded.body))
        .withHeader(std::string(inference::kInferenceHeaderContentLength),
                    std::to_string(*encoded.jsonLength));
  }

  Result<http::Reply> metadata(http::Request& request) {
    ASSIGN_OR_RETURN(const inference::ModelInfo model,
                     models_.find(request.pathParam("m"), versionParam(request)));
    return http::jsonReply(200, encodeV2ModelMetadata(model, versionsOf(model.name)));
  }

  // Triton: 200 with an empty body when ready, else 400 {"error": "Model version not ready"} —
  // an unknown model included.
  Result<http::Reply> ready(http::Request& request) {
    Result<inference::ModelInfo> model =
        models_.find(request.pathParam("m"), versionParam(request));
    if (model.ok() && tritonState(*model, autoReload_) == "READY") return http::emptyReply(200);
    return makeError(ErrorCode::kInvalidArgument, "Model version not ready");
  }

  // One model (all versions, or the one in the path), or every model.
  Result<http::Reply> stats(http::Request& request) {
    json stats = json::array();
    const auto name = request.pathParams.find("m");
    if (name == request.pathParams.end()) {
      for (const auto& model : models_.list()) stats.push_back(encodeV2ModelStatistics(model));
      return http::jsonReply(200, {{"model_stats", stats}});
    }
    const std::string version = versionParam(request);
    ASSIGN_OR_RETURN(const inference::ModelInfo found, models_.find(name->second, version));
    for (const auto& model : models_.list()) {
      if (model.name == found.name && (version.empty() || model.version == version)) {
        stats.push_back(encodeV2ModelStatistics(model));
      }
    }
    return http::jsonReply(200, {{"model_stats", stats}});
  }

  // The registry's models with their states, then the repository's other files (no state).
  Result<http::Reply> repositoryIndex(http::Request& request) {
    ASSIGN_OR_RETURN(const bool readyOnly, decodeReadyOnly(request));
    json index = json::array();
    std::set<std::pair<std::string, std::string>> listed;
    for (const auto& model : models_.list()) {
      const std::string_view state = tritonState(model, autoReload_);
      if (readyOnly && state != "READY") continue;
      json entry = {{"name", model.name}, {"version", model.version}, {"state", state}};
      std::string reason = model.stateReason;
      if (reason.empty() && model.evicted) reason = "evicted; loaded again by the next request";
      if (!reason.empty()) entry["reason"] = reason;
      index.push_back(std::move(entry));
      listed.emplace(model.name, model.version);
    }
    if (!readyOnly) {
      for (const auto& entry : inference::scanRepository(models_.options().modelRoots)) {
        if (listed.emplace(entry.name, entry.version).second) {
          index.push_back({{"name", entry.name}, {"version", entry.version}});
        }
      }
    }
    return http::jsonReply(200, index);
  }

  // Loads the newest version of the model from the repository (a no-op when it is ready).
  Result<http::Reply> repositoryLoad(http::Request& request) {
    const std::string& name = request.pathParam("m");
    if (!inference::isValidModelName(name)) {
      return makeError(ErrorCode::kInvalidArgument, "invalid model name '" + name + "'");
    }
    RETURN_IF_ERROR(checkRepositoryLoadBody(request));
    const auto entry = inference::findInRepository(models_.options().modelRoots, name);
    if (!entry) {
      return makeError(
          ErrorCode::kNotFound,
          fmt::format("no model '{}' in the model repository (looked for <root>/{}/<version>/"
                      "model.onnx and <root>/{}.onnx in the configured model roots)",
                      name, name, name));
    }
    Result<inference::ModelInfo> existing = models_.find(name, entry->version);
    if (existing.ok() && existing->state == inference::ModelState::kReady) {
      return http::emptyReply(200);
    }
    inference::LoadRequest load;
    load.name = name;
    load.version = entry->version;
    load.path = entry->file;
    load.runner.instances = 0;  // the registry's defaults
    load.runner.maxQueue = 0;
    load.owner = request.principal;
    RETURN_IF_ERROR(models_.load(load));
    return http::emptyReply(200);
  }

  // Unloads every version of the model (Triton's semantics).
  Result<http::Reply> repositoryUnload(http::Request& request) {
    const std::string& name = request.pathParam("m");
    const std::vector<std::string> versions = versionsOf(name);
    if (versions.empty()) {
      ASSIGN_OR_RETURN(const inference::ModelInfo byId, models_.find(name));
      RETURN_IF_ERROR(models_.unload(byId.id));
      return http::emptyReply(200);
    }
    for (const std::string& version : versions) {
      Result<inference::UnloadResult> unloaded = models_.unload(name, version);
      if (!unloaded.ok() && unloaded.error().code != ErrorCode::kNotFound) return unloaded.error();
    }
    return http::emptyReply(200);
  }

 private:
  // Versions of `name` the registry knows, ascending.
  std::vector<std::string> versionsOf(const std::string& name) const {
    std::vector<std::string> versions;
    for (const auto& model : models_.list()) {
      if (model.name == name) versions.push_back(model.version);
    }
    std::sort(versions.begin(), versions.end());
    return versions;
  }

  inference::ModelRegistry& models_;
  bool autoReload_;
};

constexpr RouteSpec<KServeRoutes> kModelRoutes[] = {
    {"GET", "/v2/models/{m}", &KServeRoutes::metadata},
    {"GET", "/v2/models/{m}/ready", &KServeRoutes::ready},
    {"POST", "/v2/models/{m}/infer", &KServeRoutes::infer},
    {"GET", "/v2/models/{m}/stats", &KServeRoutes::stats},
    {"GET", "/v2/models/{m}/versions/{v}", &KServeRoutes::metadata},
    {"GET", "/v2/models/{m}/versions/{v}/ready", &KServeRoutes::ready},
    {"POST", "/v2/models/{m}/versions/{v}/infer", &KServeRoutes::infer},
    {"GET", "/v2/models/{m}/versions/{v}/stats", &KServeRoutes::stats},
    {"GET", "/v2/models/stats", &KServeRoutes::stats},
    {"POST", "/v2/repository/index", &KServeRoutes::repositoryIndex, http::Execution::kWorker,
     Scope::kRead},
    {"POST", "/v2/repository/models/{m}/load", &KServeRoutes::repositoryLoad},
    {"POST", "/v2/repository/models/{m}/unload", &KServeRoutes::repositoryUnload},
};

}  // namespace

void registerKServeRoutes(http::Router& router, AppContext& context,
                          inference::ModelRegistry& models) {
  addRoutes<KServeServerRoutes>(router, context.config, http::ErrorShape::kKServe,
                                std::make_shared<KServeServerRoutes>(context, true), kServerRoutes);
  addRoutes<KServeRoutes>(router, context.config, http::ErrorShape::kKServe,
                          std::make_shared<KServeRoutes>(models, models.options().autoReload),
                          kModelRoutes);
}

void registerKServeUnavailable(http::Router& router, AppContext& context, const char* reason) {
  addRoutes<KServeServerRoutes>(router, context.config, http::ErrorShape::kKServe,
                                std::make_shared<KServeServerRoutes>(context, false),
                                kServerRoutes);
  addUnavailableRoutes<KServeRoutes>(router, context.config, http::ErrorShape::kKServe,
                                     kModelRoutes, reason);
}

}  // namespace deviceops::api
