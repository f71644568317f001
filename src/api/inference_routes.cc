// Inference routes, two protocols over one ModelRegistry:
// - the original API: /api/inference/model/load, /api/inference/model/{modelId} (GET, DELETE),
//   /api/inference/models, /api/inference/execute, /api/inference/sessions — our error shape;
// - KServe v2 / Triton: /v2, /v2/health/*, /v2/models/..., /v2/repository/... — Triton's error
//   shape {"error": "message"}, Triton's status codes for readiness (200 ready, 400 not ready,
//   empty bodies), and binary tensor data (kserve_codec.h).
// Everything touching the registry runs on the worker pool; a full queue answers 503 with
// Retry-After. With inference disabled (AppContext::models null) every route but
// /v2/health/live answers 503.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <cmath>
#include <filesystem>
#include <set>
#include <system_error>

#include "api/app.h"
#include "api/inference_codec.h"
#include "http/errors.h"
#include "inference/kserve_codec.h"

namespace deviceops::api {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr std::string_view kServerName = "deviceops";

void addRetryAfter(http::Response& response, const Error& error) {
  const json& seconds = error.details.is_object() && error.details.contains("retryAfterSeconds")
                            ? error.details["retryAfterSeconds"]
                            : json();
  if (seconds.is_number()) {
    response.headers.emplace_back(
        "Retry-After", std::to_string(std::max<long long>(1, std::llround(seconds.get<double>()))));
  } else if (error.code == ErrorCode::kUnavailable) {
    response.headers.emplace_back("Retry-After", "1");
  }
}

http::Response apiError(const Error& error) {
  http::Response response = http::errorResponse(error);
  addRetryAfter(response, error);
  return response;
}

// Triton's error body: {"error": "message"}.
http::Response v2Error(const Error& error) {
  http::Response response =
      http::jsonResponse(http::httpStatusFor(error.code), {{"error", error.message}});
  addRetryAfter(response, error);
  if (error.code == ErrorCode::kUnauthenticated) {
    response.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"deviceops\"");
  }
  return response;
}

Error inferenceDisabled() {
  return makeError(ErrorCode::kUnavailable,
                   "inference is disabled on this node ([inference] enabled = false)");
}

http::Response emptyResponse(int status) {
  http::Response response = http::textResponse(status, "application/json", "");
  return response;
}

LoadDefaults loadDefaults(const AppContext& context) {
  return {context.config.inference.instances, context.config.inference.maxQueue};
}

// ---- the model repository (Triton's view of the model roots) ----

std::vector<fs::path> modelRoots(const config::Config& config) {
  if (!config.inference.modelRoots.empty()) return config.inference.modelRoots;
  return {config.dataDir / "models"};
}

bool isNumber(const std::string& text) {
  return !text.empty() && text.size() <= 18 && text.find_first_not_of("0123456789") == text.npos;
}

struct RepositoryEntry {
  std::string name;
  std::string version;
  fs::path file;
};

// Models the roots hold in Triton's layout (<root>/<m>/<version>/model.onnx) or as
// <root>/<m>.onnx (version "1"). Unreadable directories are skipped; at most 10000 entries.
std::vector<RepositoryEntry> scanRepository(const config::Config& config) {
  constexpr std::size_t kMaxEntries = 10000;
  std::vector<RepositoryEntry> entries;
  for (const fs::path& root : modelRoots(config)) {
    std::error_code error;
    for (fs::directory_iterator it(root, error), end; !error && it != end && entries.size() < kMaxEntries;
         it.increment(error)) {
      const fs::path& path = it->path();
      const std::string name = path.filename().string();
      if (name.empty() || name.front() == '.') continue;
      std::error_code statError;
      if (path.extension() == ".onnx" && fs::is_regular_file(path, statError)) {
        entries.push_back({path.stem().string(), "1", path});
        continue;
      }
      if (!fs::is_directory(path, statError)) continue;
      for (fs::directory_iterator version(path, statError), last;
           !statError && version != last && entries.size() < kMaxEntries;
           version.increment(statError)) {
        const std::string versionName = version->path().filename().string();
        std::error_code fileError;
        if (isNumber(versionName) &&
            fs::is_regular_file(version->path() / "model.onnx", fileError)) {
          entries.push_back({name, versionName, version->path() / "model.onnx"});
        }
      }
    }
  }
  return entries;
}

// The newest version of `name` in the repository.
std::optional<RepositoryEntry> findInRepository(const config::Config& config,
                                                const std::string& name) {
  std::optional<RepositoryEntry> best;
  for (RepositoryEntry& entry : scanRepository(config)) {
    if (entry.name != name) continue;
    if (!best || std::stoll(entry.version) > std::stoll(best->version)) best = std::move(entry);
  }
  return best;
}

bool validModelName(const std::string& name) {
  return !name.empty() && name.size() <= 128 && name.front() != '.' &&
         name.find('/') == std::string::npos && name.find('\\') == std::string::npos;
}

// Versions of `name` the registry knows, ascending.
std::vector<std::string> versionsOf(const inference::ModelRegistry& registry,
                                    const std::string& name) {
  std::vector<std::string> versions;
  for (const auto& model : registry.list()) {
    if (model.name == name) versions.push_back(model.version);
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

std::string versionParam(const http::Request& request) {
  const auto it = request.pathParams.find("v");
  return it == request.pathParams.end() ? std::string() : it->second;
}

// Moves a streamed body of at most 1 MiB back into request.body.
Status readSmallBody(http::Request& request) {
  if (request.bodyFile.empty()) return Status::success();
  constexpr std::uintmax_t kLimit = 1 << 20;
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(request.bodyFile, error);
  if (error || size > kLimit) {
    return makeError(ErrorCode::kPayloadTooLarge,
                     fmt::format("a JSON load request may be at most {} bytes; send a model as "
                                 "Content-Type: application/octet-stream",
                                 kLimit));
  }
  std::ifstream in(request.bodyFile, std::ios::binary);
  request.body.assign(std::istreambuf_iterator<char>(in), {});
  return Status::success();
}

// ---- handlers ----

http::Response loadModel(AppContext& context, http::Request& request) {
  if (context.models == nullptr) return apiError(inferenceDisabled());
  const std::string_view contentType = request.header("content-type");
  Result<inference::ModelInfo> loaded = makeError(ErrorCode::kInternal, "unreachable");
  if (contentType.starts_with("application/octet-stream")) {
    Result<inference::LoadRequest> decoded = decodeLoadQuery(request.query, loadDefaults(context));
    if (!decoded.ok()) return apiError(decoded.error());
    std::error_code error;
    if (request.bodyFile.empty() || std::filesystem::file_size(request.bodyFile, error) == 0) {
      return apiError(makeError(ErrorCode::kInvalidArgument,
                                "the upload is empty; send the .onnx file as the body"));
    }
    decoded->uploaded = true;
    decoded->owner = request.principal;
    loaded = context.models->loadUploadFile(request.bodyFile, std::move(*decoded));
  } else {
    // The route streams every body to a file (uploads can be gigabytes); a JSON load request
    // is small and read back.
    if (Status read = readSmallBody(request); !read.ok()) return apiError(read.error());
    Result<json> body = http::parseJsonBody(request);
    if (!body.ok()) return apiError(body.error());
    Result<inference::LoadRequest> decoded = decodeLoadRequest(*body, loadDefaults(context));
    if (!decoded.ok()) return apiError(decoded.error());
    decoded->owner = request.principal;
    loaded = context.models->load(*decoded);
  }
  if (!loaded.ok()) return apiError(loaded.error());
  http::Response response = http::jsonResponse(201, encodeModelInfo(*loaded));
  response.headers.emplace_back("Location", "/api/inference/model/" + loaded->id);
  return response;
}

http::Response execute(AppContext& context, http::Request& request) {
  if (context.models == nullptr) return apiError(inferenceDisabled());
  const auto started = std::chrono::steady_clock::now();
  Result<json> body = http::parseJsonBody(request);
  if (!body.ok()) return apiError(body.error());
  Result<inference::ExecuteRequest> decoded = inference::decodeExecuteRequest(*body);
  if (!decoded.ok()) return apiError(decoded.error());
  inference::InferRequest infer;
  infer.model = decoded->model;
  infer.version = decoded->version;
  infer.inputs = std::move(decoded->inputs);
  infer.outputs = decoded->outputs;
  infer.control.cancelled = request.cancelled;
  if (decoded->timeout) infer.control.deadline = started + *decoded->timeout;
  Result<inference::InferResult> result = context.models->infer(std::move(infer));
  if (!result.ok()) return apiError(result.error());
  const auto toMs = [](std::chrono::nanoseconds duration) {
    return std::chrono::duration<double, std::milli>(duration).count();
  };
  const inference::ExecuteTimings timings{toMs(result->run.queueTime),
                                          toMs(result->run.computeTime),
                                          toMs(std::chrono::steady_clock::now() - started)};
  return http::jsonResponse(
      200, inference::encodeExecuteResponse(result->modelId, result->modelName,
                                            result->modelVersion, result->outputs, timings,
                                            result->run.batchSize));
}

http::Response v2Infer(AppContext& context, http::Request& request) {
  if (context.models == nullptr) return v2Error(inferenceDisabled());
  const auto started = std::chrono::steady_clock::now();
  std::optional<std::string_view> headerLength;
  if (request.headers.count("inference-header-content-length") != 0) {
    headerLength = request.header("inference-header-content-length");
  }
  Result<inference::V2InferRequest> decoded =
      inference::decodeV2InferRequest(request.body, headerLength);
  if (!decoded.ok()) return v2Error(decoded.error());
  inference::InferRequest infer;
  infer.model = request.pathParam("m");
  infer.version = versionParam(request);
  infer.inputs = std::move(decoded->inputs);
  for (const auto& output : decoded->outputs) infer.outputs.push_back(output.name);
  infer.control.cancelled = request.cancelled;
  if (decoded->timeout) infer.control.deadline = started + *decoded->timeout;
  Result<inference::InferResult> result = context.models->infer(std::move(infer));
  if (!result.ok()) return v2Error(result.error());
  inference::EncodedBody encoded = inference::encodeV2InferResponse(
      {result->modelName, result->modelVersion, decoded->id, std::move(result->outputs)},
      *decoded);
  http::Response response;
  response.body = std::move(encoded.body);
  if (encoded.jsonLength) {
    response.contentType = "application/octet-stream";
    response.headers.emplace_back(std::string(inference::kInferenceHeaderContentLength),
                                  std::to_string(*encoded.jsonLength));
  }
  return response;
}

http::Response v2ModelMetadata(AppContext& context, http::Request& request) {
  if (context.models == nullptr) return v2Error(inferenceDisabled());
  Result<inference::ModelInfo> model =
      context.models->find(request.pathParam("m"), versionParam(request));
  if (!model.ok()) return v2Error(model.error());
  return http::jsonResponse(200,
                            encodeV2ModelMetadata(*model, versionsOf(*context.models, model->name)));
}

// Triton: 200 with an empty body when ready, else 400 {"error": "Model version not ready"} —
// an unknown model included.
http::Response v2ModelReady(AppContext& context, http::Request& request) {
  if (context.models == nullptr) return v2Error(inferenceDisabled());
  Result<inference::ModelInfo> model =
      context.models->find(request.pathParam("m"), versionParam(request));
  if (model.ok() && tritonState(*model, context.config.inference.autoReload) == "READY") {
    return emptyResponse(200);
  }
  return v2Error(makeError(ErrorCode::kInvalidArgument, "Model version not ready"));
}

http::Response v2ModelStats(AppContext& context, http::Request& request) {
  if (context.models == nullptr) return v2Error(inferenceDisabled());
  json stats = json::array();
  const auto name = request.pathParams.find("m");
  if (name == request.pathParams.end()) {
    for (const auto& model : context.models->list()) stats.push_back(encodeV2ModelStatistics(model));
  } else {
    const std::string version = versionParam(request);
    Result<inference::ModelInfo> found = context.models->find(name->second, version);
    if (!found.ok()) return v2Error(found.error());
    for (const auto& model : context.models->list()) {
      if (model.name == found->name && (version.empty() || model.version == version)) {
        stats.push_back(encodeV2ModelStatistics(model));
      }
    }
  }
  return http::jsonResponse(200, {{"model_stats", stats}});
}

http::Response v2RepositoryIndex(AppContext& context, http::Request& request) {
  if (context.models == nullptr) return v2Error(inferenceDisabled());
  bool readyOnly = false;
  if (!request.body.empty()) {
    Result<json> body = http::parseJsonBody(request);
    if (!body.ok()) return v2Error(body.error());
    if (body->contains("ready")) {
      if (!(*body)["ready"].is_boolean()) {
        return v2Error(makeError(ErrorCode::kInvalidArgument, "'ready' must be true or false"));
      }
      readyOnly = (*body)["ready"].get<bool>();
    }
  }
  json index = json::array();
  std::set<std::pair<std::string, std::string>> listed;
  for (const auto& model : context.models->list()) {
    const std::string_view state = tritonState(model, context.config.inference.autoReload);
    if (readyOnly && state != "READY") continue;
    json entry = {{"name", model.name}, {"version", model.version}, {"state", state}};
    std::string reason = model.stateReason;
    if (reason.empty() && model.evicted) reason = "evicted; loaded again by the next request";
    if (!reason.empty()) entry["reason"] = reason;
    index.push_back(std::move(entry));
    listed.emplace(model.name, model.version);
  }
  if (!readyOnly) {
    for (const RepositoryEntry& entry : scanRepository(context.config)) {
      if (listed.emplace(entry.name, entry.version).second) {
        index.push_back({{"name", entry.name}, {"version", entry.version}});
      }
    }
  }
  return http::jsonResponse(200, index);
}

// Parameters Triton clients may send with a load; those that would change the model are
// refused rather than ignored.
Status checkRepositoryLoadBody(const http::Request& request) {
  if (request.body.empty()) return {};
  Result<json> body = http::parseJsonBody(request);
  if (!body.ok()) return body.error();
  if (const auto parameters = body->find("parameters"); parameters != body->end()) {
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

http::Response v2RepositoryLoad(AppContext& context, http::Request& request) {
  if (context.models == nullptr) return v2Error(inferenceDisabled());
  const std::string& name = request.pathParam("m");
  if (!validModelName(name)) {
    return v2Error(makeError(ErrorCode::kInvalidArgument, "invalid model name '" + name + "'"));
  }
  if (Status body = checkRepositoryLoadBody(request); !body.ok()) return v2Error(body.error());
  std::optional<RepositoryEntry> entry = findInRepository(context.config, name);
  if (!entry) {
    return v2Error(makeError(
        ErrorCode::kNotFound,
        fmt::format("no model '{}' in the model repository (looked for <root>/{}/<version>/"
                    "model.onnx and <root>/{}.onnx in the configured model roots)",
                    name, name, name)));
  }
  Result<inference::ModelInfo> existing = context.models->find(name, entry->version);
  if (existing.ok() && existing->state == inference::ModelState::kReady) return emptyResponse(200);
  inference::LoadRequest load;
  load.name = name;
  load.version = entry->version;
  load.path = entry->file;
  load.runner.instances = context.config.inference.instances;
  load.runner.maxQueue = context.config.inference.maxQueue;
  load.owner = request.principal;
  Result<inference::ModelInfo> loaded = context.models->load(load);
  if (!loaded.ok()) return v2Error(loaded.error());
  return emptyResponse(200);
}

// Unloads every version of the model (Triton's semantics).
http::Response v2RepositoryUnload(AppContext& context, http::Request& request) {
  if (context.models == nullptr) return v2Error(inferenceDisabled());
  const std::string& name = request.pathParam("m");
  const std::vector<std::string> versions = versionsOf(*context.models, name);
  if (versions.empty()) {
    Result<inference::ModelInfo> byId = context.models->find(name);
    if (!byId.ok()) return v2Error(byId.error());
    Result<inference::UnloadResult> unloaded = context.models->unload(byId->id);
    if (!unloaded.ok()) return v2Error(unloaded.error());
    return emptyResponse(200);
  }
  for (const std::string& version : versions) {
    Result<inference::UnloadResult> unloaded = context.models->unload(name, version);
    if (!unloaded.ok() && unloaded.error().code != ErrorCode::kNotFound) {
      return v2Error(unloaded.error());
    }
  }
  return emptyResponse(200);
}

}  // namespace

void registerInferenceRoutes(http::Router& router, AppContext& context) {
  // The original API.
  http::Route& load = router.add("POST", "/api/inference/model/load", [&context](http::Request& request) {
    return loadModel(context, request);
  });
  load.bodyToFile = true;  // uploads are streamed to disk, never held in memory
  load.maxBodyBytes = context.config.inference.maxUploadBytes;
  router.add("GET", "/api/inference/model/{modelId}", [&context](http::Request& request) {
    if (context.models == nullptr) return apiError(inferenceDisabled());
    Result<inference::ModelInfo> model = context.models->find(request.pathParam("modelId"));
    if (!model.ok()) return apiError(model.error());
    return http::jsonResponse(200, encodeModelInfo(*model));
  });
  router.add("DELETE", "/api/inference/model/{modelId}", [&context](http::Request& request) {
    if (context.models == nullptr) return apiError(inferenceDisabled());
    Result<inference::UnloadResult> result = context.models->unload(request.pathParam("modelId"));
    if (!result.ok()) return apiError(result.error());
    return http::jsonResponse(200, encodeUnloadResult(*result));
  });
  router.add("GET", "/api/inference/models", [&context](http::Request&) {
    if (context.models == nullptr) return apiError(inferenceDisabled());
    json models = json::array();
    for (const auto& model : context.models->list()) models.push_back(encodeModelInfo(model));
    return http::jsonResponse(200, {{"models", models}, {"count", models.size()}});
  });
  router.add("POST", "/api/inference/execute",
             [&context](http::Request& request) { return execute(context, request); });
  router.add("GET", "/api/inference/sessions", [&context](http::Request&) {
    if (context.models == nullptr) return apiError(inferenceDisabled());
    return http::jsonResponse(200, encodeSessions(context.models->list()));
  });

  // KServe v2 / Triton.
  auto& live = router.add("GET", "/v2/health/live", [](http::Request&) { return emptyResponse(200); });
  live.execution = http::Execution::kInline;
  live.authenticate = false;
  auto& ready = router.add("GET", "/v2/health/ready", [&context](http::Request&) {
    return emptyResponse(context.ready.load() && context.models != nullptr ? 200 : 400);
  });
  ready.execution = http::Execution::kInline;
  ready.authenticate = false;
  router
      .add("GET", "/v2",
           [](http::Request&) {
             return http::jsonResponse(
                 200, {{"name", kServerName},
                       {"version", DEVICEOPS_VERSION},
                       {"extensions",
                        {"binary_tensor_data", "model_repository", "statistics"}}});
           })
      .execution = http::Execution::kInline;

  for (const std::string base : {"/v2/models/{m}", "/v2/models/{m}/versions/{v}"}) {
    router.add("GET", base,
               [&context](http::Request& request) { return v2ModelMetadata(context, request); });
    router.add("GET", base + "/ready",
               [&context](http::Request& request) { return v2ModelReady(context, request); });
    router.add("POST", base + "/infer",
               [&context](http::Request& request) { return v2Infer(context, request); });
    router.add("GET", base + "/stats",
               [&context](http::Request& request) { return v2ModelStats(context, request); });
  }
  router.add("GET", "/v2/models/stats",
             [&context](http::Request& request) { return v2ModelStats(context, request); });
  router
      .add("POST", "/v2/repository/index",
           [&context](http::Request& request) { return v2RepositoryIndex(context, request); })
      .scope = Scope::kRead;
  router.add("POST", "/v2/repository/models/{m}/load",
             [&context](http::Request& request) { return v2RepositoryLoad(context, request); });
  router.add("POST", "/v2/repository/models/{m}/unload",
             [&context](http::Request& request) { return v2RepositoryUnload(context, request); });
}

}  // namespace deviceops::api
