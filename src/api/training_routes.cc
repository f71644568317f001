// Training routes (docs/TRAINING.md): datasets, jobs, live progress as Server-Sent Events, logs,
// checkpoints, export to ONNX and registration with the inference registry. The original paths
// are kept exactly: POST /api/training/start, POST /api/training/{jobId}/stop,
// GET /api/training/sessions, GET /api/training/{jobId}/progress, POST /api/training/data/upload.
// With training disabled (AppContext::training null) every route answers 503.
#include <fmt/format.h>

#include <charconv>
#include <filesystem>

#include "api/app.h"
#include "api/inference_codec.h"
#include "http/errors.h"
#include "training/module_store.h"
#include "training/onnx_export.h"
#include "training/safetensors.h"

namespace deviceops::api {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

http::Response disabled() {
  return http::errorResponse(ErrorCode::kUnavailable,
                             "training is disabled on this node ([training] enabled = false)");
}

Result<std::int64_t> integerParam(const http::Request& request, const std::string& name,
                                  std::int64_t fallback, std::int64_t min, std::int64_t max) {
  const auto text = request.queryParam(name);
  if (!text) return fallback;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size() || value < min || value > max) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{}: expected an integer in {}..{}, got \"{}\"", name, min, max, *text));
  }
  return value;
}

// GET /api/training/{jobId}/events: a snapshot of the job, then every event as it happens
// ("id: <sequence>", "event: <type>", "data: <json>"), until the attempt ends. Resumes after
// Last-Event-ID. A comment line every 15 s keeps proxies from closing an idle stream.
class JobEventStream final : public http::ResponseStream {
 public:
  JobEventStream(training::JobManager& jobs, std::string jobId, std::uint64_t after)
      : jobs_(jobs), jobId_(std::move(jobId)), after_(after) {}

  std::optional<std::string> next(std::chrono::milliseconds wait) override {
    if (!snapshotSent_) {
      snapshotSent_ = true;
      Result<training::JobRecord> job = jobs_.get(jobId_);
      if (!job.ok()) return std::nullopt;
      return "event: snapshot\ndata: " + training::toSummaryJson(*job).dump() + "\n\n";
    }
    if (ended_) return std::nullopt;
    Result<training::EventBatch> batch = jobs_.events(jobId_, after_, wait);
    if (!batch.ok()) return std::nullopt;
    std::string out;
    for (const training::JobEvent& event : batch->events) {
      out += fmt::format("id: {}\nevent: {}\ndata: {}\n\n", event.sequence, event.type,
                         event.data.dump());
      after_ = event.sequence;
    }
    if (batch->ended) {
      ended_ = true;
      out += "event: end\ndata: {}\n\n";
    }
    const auto now = std::chrono::steady_clock::now();
    if (!out.empty()) {
      lastWrite_ = now;
    } else if (now - lastWrite_ > std::chrono::seconds(15)) {
      lastWrite_ = now;
      out = ": keep-alive\n\n";
    }
    return out;
  }

 private:
  training::JobManager& jobs_;
  std::string jobId_;
  std::uint64_t after_;
  bool snapshotSent_ = false;
  bool ended_ = false;
  std::chrono::steady_clock::time_point lastWrite_ = std::chrono::steady_clock::now();
};

http::Response uploadDataset(AppContext& context, http::Request& request) {
  const auto name = request.queryParam("name");
  if (!name) {
    return http::errorResponse(ErrorCode::kInvalidArgument,
                               "name: required query parameter (1-64 characters [A-Za-z0-9._-])");
  }
  training::DatasetOptions options;
  options.format = request.queryParam("format").value_or("csv");
  if (options.format != "csv" && options.format != "npy" && options.format != "safetensors") {
    return http::errorResponse(ErrorCode::kInvalidArgument,
                               "format: expected \"csv\", \"npy\" or \"safetensors\", got \"" +
                                   options.format + "\"");
  }
  options.labelColumn = request.queryParam("labelColumn").value_or("");
  if (const auto delimiter = request.queryParam("delimiter")) {
    if (*delimiter == "tab") {
      options.delimiter = '\t';
    } else if (delimiter->size() == 1 && *delimiter != "\"") {
      options.delimiter = delimiter->front();
    } else {
      return http::errorResponse(ErrorCode::kInvalidArgument,
                                 "delimiter: expected one character other than '\"', or \"tab\"");
    }
  }
  options.featuresTensor = request.queryParam("featuresTensor").value_or("features");
  options.labelsTensor = request.queryParam("labelsTensor").value_or("labels");
  const std::string part = request.queryParam("part").value_or("");
  if (options.format == "npy" && part != "features" && part != "labels") {
    return http::errorResponse(ErrorCode::kInvalidArgument,
                               "part: format npy needs part=features or part=labels");
  }
  if (request.bodyFile.empty()) {
    return http::errorResponse(ErrorCode::kInvalidArgument, "the request has no body");
  }
  Result<training::DatasetInfo> info =
      context.datasets->add(*name, options, part, request.bodyFile);
  if (!info.ok()) return http::errorResponse(info.error());
  http::Response response = http::jsonResponse(201, info->toJson());
  response.headers.emplace_back("Location", "/api/training/data/" + info->id);
  return response;
}

http::Response startJob(AppContext& context, http::Request& request) {
  Result<json> body = http::parseJsonBody(request);
  if (!body.ok()) return http::errorResponse(body.error());
  // A TorchScript model names an uploaded module; the daemon resolves it to its file.
  std::optional<training::ModuleInfo> module;
  if (json& model = (*body)["model"]; model.is_object() && model.value("type", "") == "torchscript") {
    if (!model.contains("module") || !model["module"].is_string()) {
      return http::errorResponse(ErrorCode::kInvalidArgument,
                                 "model.module: the name of an uploaded TorchScript module");
    }
    Result<training::ModuleInfo> found =
        training::findModule(context.config.dataDir, model["module"].get<std::string>());
    if (!found.ok()) return http::errorResponse(found.error());
    module = *found;
    model.erase("module");
  } else if (body->contains("model") && (*body)["model"].is_null()) {
    body->erase("model");
  }
  Result<training::JobSpec> spec = training::parseJobSpec(*body);
  if (!spec.ok()) return http::errorResponse(spec.error());
  if (module) spec->model.torchscriptPath = module->path;
  Result<training::JobRecord> job = context.training->submit(std::move(spec.value()), request.principal);
  if (!job.ok()) return http::errorResponse(job.error());
  http::Response response = http::jsonResponse(201, training::toSummaryJson(*job));
  response.headers.emplace_back("Location", "/api/training/" + job->id);
  return response;
}

http::Response exportJob(AppContext& context, http::Request& request, const std::string& jobId) {
  json body = json::object();
  if (!request.body.empty()) {
    Result<json> parsed = http::parseJsonBody(request);
    if (!parsed.ok()) return http::errorResponse(parsed.error());
    body = std::move(parsed.value());
  }
  for (const auto& [key, value] : body.items()) {
    if (key != "name" && key != "version" && key != "load" && key != "persist") {
      return http::errorResponse(ErrorCode::kInvalidArgument, "unknown field \"" + key + "\"");
    }
    if ((key == "name" || key == "version") && !value.is_string()) {
      return http::errorResponse(ErrorCode::kInvalidArgument, key + ": expected a string");
    }
    if ((key == "load" || key == "persist") && !value.is_boolean()) {
      return http::errorResponse(ErrorCode::kInvalidArgument, key + ": expected true or false");
    }
  }
  Result<training::JobRecord> job = context.training->get(jobId);
  if (!job.ok()) return http::errorResponse(job.error());
  if (job->state != training::JobState::kCompleted || job->weightsPath.empty()) {
    return http::errorResponse(ErrorCode::kConflict,
                               fmt::format("job {} is {}; only completed jobs can be exported",
                                           jobId, training::jobStateName(job->state)));
  }
  if (!job->spec.model.builtIn()) {
    return http::errorResponse(ErrorCode::kConflict,
                               "TorchScript jobs cannot be exported to ONNX here; their trained "
                               "module is model.pt in the job directory");
  }
  Result<training::SafeTensorFile> weights = training::readSafeTensorsFile(job->weightsPath);
  if (!weights.ok()) return http::errorResponse(weights.error());
  const fs::path onnxFile = context.training->jobDirectory(jobId) / "model.onnx";
  if (Status status = training::exportOnnx(job->spec.model, *weights, onnxFile); !status.ok()) {
    return http::errorResponse(status.error());
  }
  json out = {{"jobId", jobId}, {"onnx", onnxFile.string()}};
  if (body.value("load", true)) {
    if (context.models == nullptr) {
      return http::errorResponse(ErrorCode::kUnavailable,
                                 "inference is disabled on this node; the ONNX file is written");
    }
    // The registry takes ownership of an upload: give it a copy, the job keeps model.onnx.
    const fs::path copy = onnxFile.parent_path() / "model.onnx.upload";
    std::error_code error;
    fs::copy_file(onnxFile, copy, fs::copy_options::overwrite_existing, error);
    if (error) {
      return http::errorResponse(ErrorCode::kInternal, "cannot copy the ONNX file: " + error.message());
    }
    inference::LoadRequest load;
    load.name = body.value("name", job->spec.name.empty() ? jobId : job->spec.name);
    load.version = body.value("version", "1");
    load.persist = body.value("persist", false);
    load.owner = request.principal;
    load.runner.instances = context.config.inference.instances;
    load.runner.maxQueue = context.config.inference.maxQueue;
    Result<inference::ModelInfo> model = context.models->loadUploadFile(copy, std::move(load));
    if (!model.ok()) return http::errorResponse(model.error());
    (void)context.training->setExportedModel(jobId, model->id);
    out["model"] = encodeModelInfo(*model);
  }
  return http::jsonResponse(201, out);
}

}  // namespace

void registerTrainingRoutes(http::Router& router, AppContext& context) {
  auto guarded = [&context](auto handler) {
    return [&context, handler](http::Request& request) -> http::Response {
      if (context.training == nullptr || context.datasets == nullptr) return disabled();
      return handler(request);
    };
  };
  http::Route& upload = router.add("POST", "/api/training/data/upload",
                                   guarded([&context](http::Request& request) {
                                     return uploadDataset(context, request);
                                   }));
  upload.bodyToFile = true;
  upload.maxBodyBytes = context.config.training.maxDatasetBytes;

  http::Route& moduleUpload = router.add(
      "POST", "/api/training/models/upload", guarded([&context](http::Request& request) {
        const auto name = request.queryParam("name");
        if (!name) return http::errorResponse(ErrorCode::kInvalidArgument, "name: required");
        if (request.bodyFile.empty()) {
          return http::errorResponse(ErrorCode::kInvalidArgument, "the request has no body");
        }
        Result<training::ModuleInfo> module =
            training::addModule(context.config.dataDir, *name, request.bodyFile);
        return module.ok() ? http::jsonResponse(201, module->toJson())
                           : http::errorResponse(module.error());
      }));
  moduleUpload.bodyToFile = true;
  moduleUpload.maxBodyBytes = context.config.training.maxModuleBytes;
  router.add("GET", "/api/training/models", guarded([&context](http::Request&) {
               json out = json::array();
               for (const auto& module : training::listModules(context.config.dataDir)) {
                 out.push_back(module.toJson());
               }
               return http::jsonResponse(200, {{"models", out}});
             }));

  router.add("GET", "/api/training/data", guarded([&context](http::Request&) {
               json out = json::array();
               for (const training::DatasetInfo& info : context.datasets->list()) {
                 out.push_back(info.toJson());
               }
               return http::jsonResponse(200, {{"datasets", out}});
             }));
  router.add("GET", "/api/training/data/{datasetId}", guarded([&context](http::Request& request) {
               Result<training::DatasetInfo> info =
                   context.datasets->get(request.pathParam("datasetId"));
               return info.ok() ? http::jsonResponse(200, info->toJson())
                                : http::errorResponse(info.error());
             }));
  router.add("DELETE", "/api/training/data/{datasetId}", guarded([&context](http::Request& request) {
               Status status = context.datasets->remove(request.pathParam("datasetId"));
               return status.ok() ? http::jsonResponse(200, {{"deleted", request.pathParam("datasetId")}})
                                  : http::errorResponse(status.error());
             }));

  router.add("POST", "/api/training/start", guarded([&context](http::Request& request) {
               return startJob(context, request);
             }));
  router.add("GET", "/api/training/sessions", guarded([&context](http::Request& request) {
               const auto state = request.queryParam("state");
               if (state && !training::parseJobState(*state)) {
                 return http::errorResponse(ErrorCode::kInvalidArgument,
                                            "state: unknown job state \"" + *state + "\"");
               }
               json out = json::array();
               for (const training::JobRecord& job : context.training->list()) {
                 if (state && training::jobStateName(job.state) != *state) continue;
                 out.push_back(training::toSummaryJson(job));
               }
               return http::jsonResponse(200, {{"sessions", out}});
             }));
  router.add("GET", "/api/training/{jobId}", guarded([&context](http::Request& request) {
               Result<training::JobRecord> job = context.training->get(request.pathParam("jobId"));
               return job.ok() ? http::jsonResponse(200, training::toJson(*job))
                               : http::errorResponse(job.error());
             }));
  router.add("DELETE", "/api/training/{jobId}", guarded([&context](http::Request& request) {
               Status status = context.training->remove(request.pathParam("jobId"));
               return status.ok() ? http::jsonResponse(200, {{"deleted", request.pathParam("jobId")}})
                                  : http::errorResponse(status.error());
             }));
  router.add("GET", "/api/training/{jobId}/progress", guarded([&context](http::Request& request) {
               Result<training::JobRecord> job = context.training->get(request.pathParam("jobId"));
               return job.ok() ? http::jsonResponse(200, training::toProgressJson(*job))
                               : http::errorResponse(job.error());
             }));
  router.add("POST", "/api/training/{jobId}/stop", guarded([&context](http::Request& request) {
               Result<std::int64_t> grace = integerParam(request, "graceSeconds", -1, 0, 3600);
               if (!grace.ok()) return http::errorResponse(grace.error());
               std::optional<std::chrono::milliseconds> graceMs;
               if (*grace >= 0) graceMs = std::chrono::seconds(*grace);
               Result<training::JobRecord> job =
                   context.training->stop(request.pathParam("jobId"), graceMs);
               return job.ok() ? http::jsonResponse(202, training::toSummaryJson(*job))
                               : http::errorResponse(job.error());
             }));
  router.add("POST", "/api/training/{jobId}/resume", guarded([&context](http::Request& request) {
               Result<training::JobRecord> job = context.training->resume(request.pathParam("jobId"));
               return job.ok() ? http::jsonResponse(202, training::toSummaryJson(*job))
                               : http::errorResponse(job.error());
             }));
  router.add("GET", "/api/training/{jobId}/events", guarded([&context](http::Request& request) {
               const std::string jobId = request.pathParam("jobId");
               if (Result<training::JobRecord> job = context.training->get(jobId); !job.ok()) {
                 return http::errorResponse(job.error());
               }
               std::uint64_t after = 0;
               if (const std::string_view last = request.header("last-event-id"); !last.empty()) {
                 std::from_chars(last.data(), last.data() + last.size(), after);
               }
               http::Response response;
               response.contentType = "text/event-stream";
               response.stream = std::make_shared<JobEventStream>(*context.training, jobId, after);
               return response;
             }));
  router.add("GET", "/api/training/{jobId}/logs", guarded([&context](http::Request& request) {
               Result<std::int64_t> tail = integerParam(request, "tail", 200, 1, 100000);
               Result<std::int64_t> rank = integerParam(request, "rank", 0, 0, 1023);
               if (!tail.ok()) return http::errorResponse(tail.error());
               if (!rank.ok()) return http::errorResponse(rank.error());
               Result<std::vector<std::string>> lines = context.training->logs(
                   request.pathParam("jobId"), static_cast<int>(*rank),
                   static_cast<std::size_t>(*tail));
               if (!lines.ok()) return http::errorResponse(lines.error());
               return http::jsonResponse(200, {{"jobId", request.pathParam("jobId")},
                                               {"rank", *rank}, {"lines", *lines}});
             }));
  router.add("GET", "/api/training/{jobId}/checkpoints", guarded([&context](http::Request& request) {
               Result<json> list = context.training->checkpoints(request.pathParam("jobId"));
               return list.ok() ? http::jsonResponse(200, {{"checkpoints", *list}})
                                : http::errorResponse(list.error());
             }));
  router.add("POST", "/api/training/{jobId}/export", guarded([&context](http::Request& request) {
               return exportJob(context, request, request.pathParam("jobId"));
             }));
}

}  // namespace deviceops::api
