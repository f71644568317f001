// ONNX Runtime sessions: the only code that talks to the ONNX Runtime C++ API.
//
// - OrtEnvironment: the process-wide Ort::Env (created once, lives until exit).
// - inspectModel(): opens a model file on the CPU provider and reads what a registry needs
//   (opset, producer, inputs/outputs with -1 for dynamic dimensions). A file that is not an ONNX
//   model, or a truncated one, is kInvalidArgument with ONNX Runtime's reason.
// - Session: one ONNX Runtime session on one device with one execution provider. Requesting a
//   provider the ORT build or the machine lacks is kFailedPrecondition-like kUnavailable naming the
//   missing provider/library; there is never a silent CPU fallback.
//
// ONNX Runtime exceptions never escape this component: they become Result errors.
// Thread-safety: Session::run may be called concurrently (ONNX Runtime sessions are thread-safe);
// everything else is set up before use.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "tensor/tensor.h"

namespace deviceops::inference {

// Execution providers by the names the API uses.
enum class Provider { kCpu, kCuda, kRocm, kMigraphx, kOpenVino };
std::string_view providerName(Provider provider);  // "cpu", "cuda", "rocm", "migraphx", "openvino"
std::optional<Provider> parseProvider(std::string_view name);
// Providers the linked ONNX Runtime build reports (Ort::GetAvailableProviders), as API names.
std::vector<std::string> availableProviders();

struct SessionOptions {
  Provider provider = Provider::kCpu;
  int deviceOrdinal = 0;            // CUDA/ROCm device index
  int graphOptimizationLevel = 99;  // 0 disable, 1 basic, 2 extended, 99 all (ORT's numbering)
  int intraOpThreads = 0;           // 0: ONNX Runtime's default
  int interOpThreads = 0;
  bool cpuArena = true;
  bool memoryPattern = true;
};

struct ModelMetadata {
  std::int64_t opset = 0;  // of the default ("ai.onnx") domain
  std::string producer;    // "pytorch 1.13.1"
  std::string graphName;
  std::string description;
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
};

Result<ModelMetadata> inspectModel(const std::filesystem::path& file);

// Cooperative cancellation of one run: set `cancelled` (e.g. the client went away) or let the
// deadline pass, and the run is terminated through Ort::RunOptions::SetTerminate.
struct RunControl {
  std::shared_ptr<std::atomic<bool>> cancelled;  // may be null
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> open(const std::filesystem::path& file,
                                               const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const ModelMetadata& metadata() const;
  // Runs the model. `inputs` must already be validated against metadata() (checkAgainstSpec).
  // `outputNames` empty: all outputs, in declaration order. kDeadlineExceeded when the deadline
  // passed, kUnavailable ("cancelled") when cancelled, kInvalidArgument for ORT's shape errors.
  Result<std::vector<Tensor>> run(const std::vector<Tensor>& inputs,
                                  const std::vector<std::string>& outputNames,
                                  const RunControl& control = {});
  // One run on zero-filled inputs with every dynamic dimension set to 1 (warms allocators).
  Status warmUp();

 private:
  class Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deviceops::inference
