#include "training/model_export.h"

#include <fmt/format.h>

#include <system_error>

#include "training/onnx_export.h"
#include "training_formats/safetensors.h"

namespace deviceops::training {

namespace fs = std::filesystem;

ModelServer registryModelServer(inference::ModelRegistry& registry) {
  return [&registry](const fs::path& file, inference::LoadRequest request) {
    request.uploaded = true;
    return registry.loadUploadFile(file, std::move(request));
  };
}

ModelServer unavailableModelServer() {
  return [](const fs::path& file, const inference::LoadRequest&) -> Result<inference::ModelInfo> {
    std::error_code ignored;
    fs::remove(file, ignored);
    return makeError(ErrorCode::kUnavailable,
                     "inference is disabled on this node; the ONNX file is written");
  };
}

namespace {

Result<JobRecord> exportableJob(const JobManager& jobs, const std::string& jobId) {
  ASSIGN_OR_RETURN(JobRecord job, jobs.get(jobId));
  if (job.state != JobState::kCompleted || job.weightsPath.empty()) {
    return makeError(ErrorCode::kConflict,
                     fmt::format("job {} is {}; only completed jobs can be exported", jobId,
                                 jobStateName(job.state)));
  }
  if (!job.spec.model.builtIn()) {
    return makeError(ErrorCode::kConflict,
                     "TorchScript jobs cannot be exported to ONNX here; their trained module is "
                     "model.pt in the job directory");
  }
  return job;
}

}  // namespace

Result<ExportResult> exportJobModel(JobManager& jobs, const std::string& jobId,
                                    const ExportRequest& request, const ModelServer& serve) {
  ASSIGN_OR_RETURN(const JobRecord job, exportableJob(jobs, jobId));
  ASSIGN_OR_RETURN(const SafeTensorFile weights, readSafeTensorsFile(job.weightsPath));
  ExportResult result{jobId, jobs.jobDirectory(jobId) / "model.onnx", std::nullopt};
  RETURN_IF_ERROR(exportOnnx(job.spec.model, weights, result.onnxFile));
  if (!request.load) return result;

  // The server takes over the file it gets: give it a copy, the job keeps model.onnx.
  const fs::path copy = result.onnxFile.parent_path() / "model.onnx.upload";
  std::error_code error;
  fs::copy_file(result.onnxFile, copy, fs::copy_options::overwrite_existing, error);
  if (error) {
    return makeError(ErrorCode::kInternal, "cannot copy the ONNX file: " + error.message());
  }
  inference::LoadRequest load;
  load.name = request.name.value_or(job.spec.name.empty() ? jobId : job.spec.name);
  load.version = request.version;
  load.persist = request.persist;
  load.owner = request.owner;
  load.runner.instances = 0;  // the registry's defaults
  load.runner.maxQueue = 0;
  ASSIGN_OR_RETURN(result.model, serve(copy, std::move(load)));
  if (Status recorded = jobs.setExportedModel(jobId, result.model->id); !recorded.ok()) {
    return makeError(recorded.error().code,
                     fmt::format("model {} is loaded, but job {} could not record it: {}",
                                 result.model->id, jobId, recorded.error().message));
  }
  return result;
}

}  // namespace deviceops::training
