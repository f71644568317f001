// The original inference API over the ModelRegistry: /api/inference/model/load,
// /api/inference/model/{modelId} (GET, DELETE), /api/inference/models, /api/inference/execute,
// /api/inference/sessions — our error shape. Everything runs on the worker pool; a full queue
// answers 503 with Retry-After (the error's typed retryAfter). KServe v2: kserve_routes.cc.
#include "api/inference_routes.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "api/inference_codec.h"
#include "api/route_table.h"
#include "api/routes.h"
#include "tensor/kserve_codec.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

json encodeModels(const std::vector<inference::ModelInfo>& list) {
  json models = json::array();
  for (const auto& model : list) models.push_back(encodeModelInfo(model));
  return {{"models", models}, {"count", models.size()}};
}

double milliseconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

class InferenceRoutes {
 public:
  explicit InferenceRoutes(inference::ModelRegistry& models) : models_(models) {}

  // A raw .onnx upload (application/octet-stream, options as query parameters) or a JSON load
  // request naming a file under the model roots.
  Result<http::Reply> load(http::Request& request) {
    ASSIGN_OR_RETURN(const inference::ModelInfo model, loadFrom(request));
    return http::jsonReply(201, encodeModelInfo(model))
        .withHeader("Location", "/api/inference/model/" + model.id);
  }

  Result<http::Reply> model(http::Request& request) {
    return encoded(models_.find(request.pathParam("modelId")), encodeModelInfo);
  }

  Result<http::Reply> unload(http::Request& request) {
    return encoded(models_.unload(request.pathParam("modelId")), encodeUnloadResult);
  }

  Result<http::Reply> models(http::Request&) {
    return http::jsonReply(200, encodeModels(models_.list()));
  }

  Result<http::Reply> sessions(http::Request&) {
    return http::jsonReply(200, encodeSessions(models_.list()));
  }

  Result<http::Reply> execute(http::Request& request) {
    const auto started = std::chrono::steady_clock::now();
    ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
    ASSIGN_OR_RETURN(inference::ExecuteRequest decoded, inference::decodeExecuteRequest(body));
    inference::InferRequest infer;
    infer.model = decoded.model;
    infer.version = decoded.version;
    infer.inputs = std::move(decoded.inputs);
    infer.outputs = decoded.outputs;
    infer.control.cancelled = request.cancelled;
    if (decoded.timeout) infer.control.deadline = started + *decoded.timeout;
    ASSIGN_OR_RETURN(const inference::InferResult result, models_.infer(std::move(infer)));
    const inference::ExecuteTimings timings{
        milliseconds(result.run.queueTime), milliseconds(result.run.computeTime),
        milliseconds(std::chrono::steady_clock::now() - started)};
    return http::jsonReply(
        200, inference::encodeExecuteResponse(result.modelId, result.modelName, result.modelVersion,
                                              result.outputs, timings, result.run.batchSize));
  }

 private:
  Result<inference::ModelInfo> loadFrom(http::Request& request) {
    if (request.header("content-type").starts_with("application/octet-stream")) {
      ASSIGN_OR_RETURN(inference::LoadRequest decoded, decodeLoadQuery(request.query));
      std::error_code error;
      if (request.bodyFile.empty() || std::filesystem::file_size(request.bodyFile, error) == 0) {
        return makeError(ErrorCode::kInvalidArgument,
                         "the upload is empty; send the .onnx file as the body");
      }
      decoded.uploaded = true;
      decoded.owner = request.principal;
      return models_.loadUploadFile(request.bodyFile, std::move(decoded));
    }
    RETURN_IF_ERROR(readSmallBody(request, "a model"));
    ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
    ASSIGN_OR_RETURN(inference::LoadRequest decoded, decodeLoadRequest(body));
    decoded.owner = request.principal;
    return models_.load(decoded);
  }

  inference::ModelRegistry& models_;
};

constexpr RouteSpec<InferenceRoutes> kInferenceRoutes[] = {
    // Uploads are streamed to disk, never held in memory.
    {"POST", "/api/inference/model/load", &InferenceRoutes::load, http::Execution::kWorker,
     std::nullopt, true, /*bodyToFile=*/true,
     [](const config::Config& config) { return config.inference.maxUploadBytes; }},
    {"GET", "/api/inference/model/{modelId}", &InferenceRoutes::model},
    {"DELETE", "/api/inference/model/{modelId}", &InferenceRoutes::unload},
    {"GET", "/api/inference/models", &InferenceRoutes::models},
    {"POST", "/api/inference/execute", &InferenceRoutes::execute},
    {"GET", "/api/inference/sessions", &InferenceRoutes::sessions},
};

constexpr const char* kDisabled =
    "inference is disabled on this node ([inference] enabled = false)";

}  // namespace

void registerInferenceRoutes(http::Router& router, AppContext& context,
                             inference::ModelRegistry& models) {
  addRoutes<InferenceRoutes>(router, context.config, http::ErrorShape::kApi,
                             std::make_shared<InferenceRoutes>(models), kInferenceRoutes);
  registerKServeRoutes(router, context, models);
  context.metricsWriters.push_back([&models](std::string& out) { models.writeMetrics(out); });
}

void registerInferenceUnavailable(http::Router& router, AppContext& context) {
  addUnavailableRoutes<InferenceRoutes>(router, context.config, http::ErrorShape::kApi,
                                        kInferenceRoutes, kDisabled);
  registerKServeUnavailable(router, context, kDisabled);
}

}  // namespace deviceops::api
