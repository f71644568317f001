// Training routes (docs/TRAINING.md): datasets, jobs, live progress as Server-Sent Events, logs,
// checkpoints, export to ONNX and registration with the inference registry. The original paths
// are kept exactly: POST /api/training/start, POST /api/training/{jobId}/stop,
// GET /api/training/sessions, GET /api/training/{jobId}/progress, POST /api/training/data/upload.
// With training disabled every route answers 503 (registerTrainingUnavailable).
#include <fmt/format.h>

#include <charconv>
#include <filesystem>

#include "api/event_stream.h"
#include "api/inference_codec.h"
#include "api/route_table.h"
#include "api/routes.h"
#include "training/module_store.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

constexpr const char* kDisabled = "training is disabled on this node ([training] enabled = false)";

Result<std::int64_t> integerParam(const http::Request& request, const std::string& name,
                                  std::int64_t fallback, std::int64_t min, std::int64_t max) {
  const auto text = request.queryParam(name);
  if (!text) return fallback;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("{}: expected an integer in {}..{}, got \"{}\"", name, min, max, *text));
  }
  return value;
}

// GET /api/training/{jobId}/events: a snapshot of the job, then every event as it happens
// ("id: <sequence>", "event: <type>", "data: <json>"), until the attempt ends. Resumes after
// Last-Event-ID. A comment line every 15 s keeps proxies from closing an idle stream.
Result<training::DatasetOptions> decodeDatasetOptions(const http::Request& request) {
  training::DatasetOptions options;
  options.format = request.queryParam("format").value_or("csv");
  if (options.format != "csv" && options.format != "npy" && options.format != "safetensors") {
    return makeError(
        ErrorCode::kInvalidArgument,
        "format: expected \"csv\", \"npy\" or \"safetensors\", got \"" + options.format + "\"");
  }
  options.labelColumn = request.queryParam("labelColumn").value_or("");
  if (const auto delimiter = request.queryParam("delimiter")) {
    if (*delimiter == "tab") {
      options.delimiter = '\t';
    } else if (delimiter->size() == 1 && *delimiter != "\"") {
      options.delimiter = delimiter->front();
    } else {
      return makeError(ErrorCode::kInvalidArgument,
                       "delimiter: expected one character other than '\"', or \"tab\"");
    }
  }
  options.featuresTensor = request.queryParam("featuresTensor").value_or("features");
  options.labelsTensor = request.queryParam("labelsTensor").value_or("labels");
  return options;
}

// The job spec of POST /api/training/start. A TorchScript model names an uploaded module; the
// daemon resolves it to its file.
Result<training::JobSpec> decodeJobSpec(const http::Request& request,
                                        const std::filesystem::path& dataDir) {
  ASSIGN_OR_RETURN(json body, http::parseJsonBody(request));
  std::optional<training::ModuleInfo> module;
  if (json& model = body["model"]; model.is_object() && model.value("type", "") == "torchscript") {
    if (!model.contains("module") || !model["module"].is_string()) {
      return makeError(ErrorCode::kInvalidArgument,
                       "model.module: the name of an uploaded TorchScript module");
    }
    ASSIGN_OR_RETURN(module, training::findModule(dataDir, model["module"].get<std::string>()));
    model.erase("module");
  } else if (body.contains("model") && body["model"].is_null()) {
    body.erase("model");
  }
  ASSIGN_OR_RETURN(training::JobSpec spec, training::parseJobSpec(body));
  if (module) spec.model.torchscriptPath = module->path;
  return spec;
}

// {"name"?, "version"?, "load"?, "persist"?} of POST /api/training/{jobId}/export; may be empty.
Result<training::ExportRequest> decodeExportRequest(const http::Request& request) {
  training::ExportRequest decoded;
  decoded.owner = request.principal;
  if (request.body.empty()) return decoded;
  ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
  for (const auto& [key, value] : body.items()) {
    if (key != "name" && key != "version" && key != "load" && key != "persist") {
      return makeError(ErrorCode::kInvalidArgument, "unknown field \"" + key + "\"");
    }
    if ((key == "name" || key == "version") && !value.is_string()) {
      return makeError(ErrorCode::kInvalidArgument, key + ": expected a string");
    }
    if ((key == "load" || key == "persist") && !value.is_boolean()) {
      return makeError(ErrorCode::kInvalidArgument, key + ": expected true or false");
    }
  }
  if (body.contains("name")) decoded.name = body["name"].get<std::string>();
  decoded.version = body.value("version", decoded.version);
  decoded.load = body.value("load", true);
  decoded.persist = body.value("persist", false);
  return decoded;
}

json encodeExportResult(const training::ExportResult& result) {
  json out = {{"jobId", result.jobId}, {"onnx", result.onnxFile.string()}};
  if (result.model) out["model"] = encodeModelInfo(*result.model);
  return out;
}

json encodeSessions(const std::vector<training::JobRecord>& jobs,
                    const std::optional<std::string>& state) {
  json out = json::array();
  for (const training::JobRecord& job : jobs) {
    if (state && training::jobStateName(job.state) != *state) continue;
    out.push_back(training::toSummaryJson(job));
  }
  return {{"sessions", out}};
}

class TrainingRoutes {
 public:
  TrainingRoutes(const config::Config& config, training::JobManager& jobs,
                 training::DatasetCatalog& datasets, training::ModelServer serve)
      : dataDir_(config.dataDir), jobs_(jobs), datasets_(datasets), serve_(std::move(serve)) {}

  Result<http::Reply> uploadDataset(http::Request& request) {
    const auto name = request.queryParam("name");
    if (!name) {
      return makeError(ErrorCode::kInvalidArgument,
                       "name: required query parameter (1-64 characters [A-Za-z0-9._-])");
    }
    ASSIGN_OR_RETURN(const training::DatasetOptions options, decodeDatasetOptions(request));
    const std::string part = request.queryParam("part").value_or("");
    if (options.format == "npy" && part != "features" && part != "labels") {
      return makeError(ErrorCode::kInvalidArgument,
                       "part: format npy needs part=features or part=labels");
    }
    if (request.bodyFile.empty()) {
      return makeError(ErrorCode::kInvalidArgument, "the request has no body");
    }
    ASSIGN_OR_RETURN(const training::DatasetInfo info,
                     datasets_.add(*name, options, part, request.bodyFile));
    return http::jsonReply(201, info.toJson())
        .withHeader("Location", "/api/training/data/" + info.id);
  }

  Result<http::Reply> uploadModule(http::Request& request) {
    const auto name = request.queryParam("name");
    if (!name) return makeError(ErrorCode::kInvalidArgument, "name: required");
    if (request.bodyFile.empty()) {
      return makeError(ErrorCode::kInvalidArgument, "the request has no body");
    }
    return encoded(
        training::addModule(dataDir_, *name, request.bodyFile),
        [](const training::ModuleInfo& module) { return module.toJson(); }, 201);
  }

  Result<http::Reply> modules(http::Request&) {
    json out = json::array();
    for (const auto& module : training::listModules(dataDir_)) out.push_back(module.toJson());
    return http::jsonReply(200, {{"models", out}});
  }

  Result<http::Reply> datasets(http::Request&) {
    json out = json::array();
    for (const training::DatasetInfo& info : datasets_.list()) out.push_back(info.toJson());
    return http::jsonReply(200, {{"datasets", out}});
  }

  Result<http::Reply> dataset(http::Request& request) {
    return encoded(datasets_.get(request.pathParam("datasetId")),
                   [](const training::DatasetInfo& info) { return info.toJson(); });
  }

  Result<http::Reply> removeDataset(http::Request& request) {
    const std::string& id = request.pathParam("datasetId");
    RETURN_IF_ERROR(datasets_.remove(id));
    return http::jsonReply(200, {{"deleted", id}});
  }

  Result<http::Reply> start(http::Request& request) {
    ASSIGN_OR_RETURN(training::JobSpec spec, decodeJobSpec(request, dataDir_));
    ASSIGN_OR_RETURN(const training::JobRecord job,
                     jobs_.submit(std::move(spec), request.principal));
    return http::jsonReply(201, training::toSummaryJson(job))
        .withHeader("Location", "/api/training/" + job.id);
  }

  Result<http::Reply> sessions(http::Request& request) {
    const auto state = request.queryParam("state");
    if (state && !training::parseJobState(*state)) {
      return makeError(ErrorCode::kInvalidArgument, "state: unknown job state \"" + *state + "\"");
    }
    return http::jsonReply(200, encodeSessions(jobs_.list(), state));
  }

  Result<http::Reply> job(http::Request& request) {
    return encoded(jobs_.get(request.pathParam("jobId")),
                   [](const training::JobRecord& job) { return training::toJson(job); });
  }

  Result<http::Reply> removeJob(http::Request& request) {
    const std::string& id = request.pathParam("jobId");
    RETURN_IF_ERROR(jobs_.remove(id));
    return http::jsonReply(200, {{"deleted", id}});
  }

  Result<http::Reply> progress(http::Request& request) {
    return encoded(jobs_.get(request.pathParam("jobId")), training::toProgressJson);
  }

  Result<http::Reply> stop(http::Request& request) {
    ASSIGN_OR_RETURN(const std::int64_t grace, integerParam(request, "graceSeconds", -1, 0, 3600));
    std::optional<std::chrono::milliseconds> graceMs;
    if (grace >= 0) graceMs = std::chrono::seconds(grace);
    return encoded(jobs_.stop(request.pathParam("jobId"), graceMs), training::toSummaryJson, 202);
  }

  Result<http::Reply> resume(http::Request& request) {
    return encoded(jobs_.resume(request.pathParam("jobId")), training::toSummaryJson, 202);
  }

  Result<http::Reply> events(http::Request& request) {
    const std::string jobId = request.pathParam("jobId");
    RETURN_IF_ERROR(jobs_.get(jobId));
    training::JobManager& jobs = jobs_;
    auto snapshot = [&jobs, jobId]() -> std::optional<json> {
      Result<training::JobRecord> job = jobs.get(jobId);
      if (!job.ok()) return std::nullopt;
      return training::toSummaryJson(*job);
    };
    auto fetch = [&jobs, jobId](std::uint64_t after,
                                std::chrono::milliseconds wait) -> std::optional<StreamedBatch> {
      Result<training::EventBatch> batch = jobs.events(jobId, after, wait);
      if (!batch.ok()) return std::nullopt;
      return toStreamedBatch(*batch);
    };
    return http::streamReply(
        std::make_shared<JobEventStream>(std::move(snapshot), std::move(fetch),
                                         lastEventId(request.header("last-event-id"))),
        "text/event-stream");
  }

  Result<http::Reply> logs(http::Request& request) {
    ASSIGN_OR_RETURN(const std::int64_t tail, integerParam(request, "tail", 200, 1, 100000));
    ASSIGN_OR_RETURN(const std::int64_t rank, integerParam(request, "rank", 0, 0, 1023));
    const std::string& jobId = request.pathParam("jobId");
    ASSIGN_OR_RETURN(const std::vector<std::string> lines,
                     jobs_.logs(jobId, static_cast<int>(rank), static_cast<std::size_t>(tail)));
    return http::jsonReply(200, {{"jobId", jobId}, {"rank", rank}, {"lines", lines}});
  }

  Result<http::Reply> checkpoints(http::Request& request) {
    return encoded(jobs_.checkpoints(request.pathParam("jobId")), [](const json& list) {
      return json{{"checkpoints", list}};
    });
  }

  Result<http::Reply> exportModel(http::Request& request) {
    ASSIGN_OR_RETURN(const training::ExportRequest decoded, decodeExportRequest(request));
    return encoded(training::exportJobModel(jobs_, request.pathParam("jobId"), decoded, serve_),
                   encodeExportResult, 201);
  }

 private:
  std::filesystem::path dataDir_;
  training::JobManager& jobs_;
  training::DatasetCatalog& datasets_;
  training::ModelServer serve_;
};

using W = http::Execution;
constexpr RouteSpec<TrainingRoutes> kTrainingRoutes[] = {
    {"POST", "/api/training/data/upload", &TrainingRoutes::uploadDataset, W::kWorker, std::nullopt,
     true, /*bodyToFile=*/true,
     [](const config::Config& config) { return config.training.maxDatasetBytes; }},
    {"POST", "/api/training/models/upload", &TrainingRoutes::uploadModule, W::kWorker, std::nullopt,
     true, /*bodyToFile=*/true,
     [](const config::Config& config) { return config.training.maxModuleBytes; }},
    {"GET", "/api/training/models", &TrainingRoutes::modules},
    {"GET", "/api/training/data", &TrainingRoutes::datasets},
    {"GET", "/api/training/data/{datasetId}", &TrainingRoutes::dataset},
    {"DELETE", "/api/training/data/{datasetId}", &TrainingRoutes::removeDataset},
    {"POST", "/api/training/start", &TrainingRoutes::start},
    {"GET", "/api/training/sessions", &TrainingRoutes::sessions},
    {"GET", "/api/training/{jobId}", &TrainingRoutes::job},
    {"DELETE", "/api/training/{jobId}", &TrainingRoutes::removeJob},
    {"GET", "/api/training/{jobId}/progress", &TrainingRoutes::progress},
    {"POST", "/api/training/{jobId}/stop", &TrainingRoutes::stop},
    {"POST", "/api/training/{jobId}/resume", &TrainingRoutes::resume},
    {"GET", "/api/training/{jobId}/events", &TrainingRoutes::events},
    {"GET", "/api/training/{jobId}/logs", &TrainingRoutes::logs},
    {"GET", "/api/training/{jobId}/checkpoints", &TrainingRoutes::checkpoints},
    {"POST", "/api/training/{jobId}/export", &TrainingRoutes::exportModel},
};

}  // namespace

void registerTrainingRoutes(http::Router& router, AppContext& context, training::JobManager& jobs,
                            training::DatasetCatalog& datasets, training::ModelServer serve) {
  addRoutes<TrainingRoutes>(
      router, context.config, http::ErrorShape::kApi,
      std::make_shared<TrainingRoutes>(context.config, jobs, datasets, std::move(serve)),
      kTrainingRoutes);
}

void registerTrainingUnavailable(http::Router& router, AppContext& context) {
  addUnavailableRoutes<TrainingRoutes>(router, context.config, http::ErrorShape::kApi,
                                       kTrainingRoutes, kDisabled);
}

}  // namespace deviceops::api
