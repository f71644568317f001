// Export of a completed job's model: ONNX written next to its weights (model.onnx in the job
// directory) and, when asked, registered for serving. A domain workflow a test can run without
// HTTP; POST /api/training/{jobId}/export only decodes and encodes around it.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "common/result.h"
#include "inference/registry.h"
#include "training/job_manager.h"

namespace deviceops::training {

// Registers an exported ONNX file for serving. `file` is a copy the callee takes over (moved
// or deleted in every case); returns the loaded model.
using ModelServer = std::function<Result<inference::ModelInfo>(const std::filesystem::path& file,
                                                               inference::LoadRequest request)>;
// Serves through the registry (ModelRegistry::loadUploadFile).
ModelServer registryModelServer(inference::ModelRegistry& registry);
// For a node without inference: kUnavailable, saying the ONNX file is written.
ModelServer unavailableModelServer();

struct ExportRequest {
  std::optional<std::string> name;  // the served model's name; default: the job's name or id
  std::string version = "1";
  bool load = true;      // register it for serving
  bool persist = false;  // load it again at start-up
  std::string owner = "anonymous";
};

struct ExportResult {
  std::string jobId;
  std::filesystem::path onnxFile;
  std::optional<inference::ModelInfo> model;  // when loaded
};

// kNotFound for an unknown job; kConflict unless it completed with built-in model weights
// (a TorchScript job's trained module is model.pt); errors of the exporter and of `serve` as
// they come. The job records the served model's id.
Result<ExportResult> exportJobModel(JobManager& jobs, const std::string& jobId,
                                    const ExportRequest& request, const ModelServer& serve);

}  // namespace deviceops::training
