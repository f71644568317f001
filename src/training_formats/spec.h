// The training job specification: what POST /api/training/start accepts (after defaults are
// filled in), what the daemon hands to each trainer process as job.json, and the canonical list
// of layers of the built-in architectures that both the trainer (libtorch modules) and the ONNX
// exporter (graph nodes) are built from — one definition of parameter names and shapes.
//
// No libtorch here: the daemon, the trainer and the exporter all link it.
// The JSON format is documented in docs/TRAINING.md.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace deviceops::training {

enum class Task { kClassification, kRegression };
enum class Activation { kRelu, kTanh, kSigmoid, kGelu, kLeakyRelu };
std::string_view taskName(Task task);                    // "classification" | "regression"
std::string_view activationName(Activation activation);  // "relu" | "tanh" | ...

struct MlpSpec {
  std::vector<std::int64_t> hidden{128};  // sizes of the hidden layers, each > 0
  Activation activation = Activation::kRelu;
  double dropout = 0.0;  // [0, 1)
  bool batchNorm = false;
};

struct ConvBlockSpec {
  std::int64_t channels = 16;
  std::int64_t kernel = 3;
  std::int64_t stride = 1;
  std::int64_t padding = 1;
  bool batchNorm = false;
  std::int64_t pool = 2;  // max-pool kernel and stride; 0 or 1: no pooling
};

struct CnnSpec {
  std::int64_t channels = 1, height = 0, width = 0;  // channels*height*width == inputs
  std::vector<ConvBlockSpec> blocks;
  std::vector<std::int64_t> head;  // hidden sizes of the fully connected head
  Activation activation = Activation::kRelu;
  double dropout = 0.0;
};

struct ModelSpec {
  std::string type = "mlp";  // "mlp" | "cnn" | "linear" | "torchscript"
  std::int64_t inputs = 0;   // features per sample (filled from the dataset)
  std::int64_t outputs = 0;  // classes, or 1 for regression (filled from the dataset)
  MlpSpec mlp;
  CnnSpec cnn;
  std::string torchscriptPath;  // "torchscript": the uploaded .pt (absolute, set by the daemon)

  bool builtIn() const { return type != "torchscript"; }
};

// One step of a built-in architecture, in order. Layers with parameters are named "l<index>"
// (index in this list); their tensors are "<name>.weight", "<name>.bias", and for batch norm
// also "<name>.running_mean", "<name>.running_var" (all F32).
//   kReshape:   [N, inputs] -> [N, channels, height, width]   (first layer of a cnn)
//   kLinear:    weight [out, in], bias [out]; y = x W^T + b
//   kConv2d:    weight [out, in, kernel, kernel], bias [out]; stride, padding
//   kBatchNorm: weight/bias/running_mean/running_var [in]; epsilon 1e-5; 1-d after a linear,
//               2-d after a conv
//   kActivation, kDropout (identity at inference), kMaxPool2d (kernel = stride = pool),
//   kFlatten:   [N, C, H, W] -> [N, C*H*W]
enum class LayerKind {
  kReshape,
  kLinear,
  kConv2d,
  kBatchNorm,
  kActivation,
  kDropout,
  kMaxPool2d,
  kFlatten
};
struct Layer {
  LayerKind kind;
  std::string name;                                  // "l3"
  std::int64_t in = 0;                               // features or channels in
  std::int64_t out = 0;                              // features or channels out
  std::int64_t kernel = 0, stride = 1, padding = 0;  // conv; kernel = pool for kMaxPool2d
  bool spatial = false;                              // batch norm after a conv (2-d)
  Activation activation = Activation::kRelu;
  double dropout = 0.0;
  std::vector<std::int64_t> shape;  // kReshape: {channels, height, width}
};
// Precondition: spec validated (validateModelSpec ok) and builtIn().
std::vector<Layer> buildLayers(const ModelSpec& spec);
// Parameter count of a built-in architecture (buffers excluded).
std::int64_t parameterCount(const ModelSpec& spec);

struct OptimizerSpec {
  std::string type = "adam";  // "sgd" | "adam" | "adamw"
  double learningRate = 1e-3;
  double weightDecay = 0.0;
  double momentum = 0.0;                              // sgd
  bool nesterov = false;                              // sgd
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  // adam, adamw
};

// The learning rate is a pure function of the global step (no scheduler state to save):
// warm-up: linear from 0 to learningRate over warmupSteps; then
// "constant"; "step": times gamma every stepEpochs epochs; "cosine": from learningRate to
// minLearningRate over the remaining steps.
struct ScheduleSpec {
  std::string type = "constant";  // "constant" | "step" | "cosine"
  std::int64_t warmupSteps = 0;
  std::int64_t stepEpochs = 10;
  double gamma = 0.1;
  double minLearningRate = 0.0;
};
double learningRateAt(const ScheduleSpec& schedule, double baseRate, std::int64_t step,
                      std::int64_t stepsPerEpoch, std::int64_t totalSteps);

struct CheckpointSpec {
  std::int64_t everySteps = 0;  // 0: only at the end of each epoch
  std::int64_t keepLast = 3;    // >= 1
  bool keepBest = true;         // also keep best.pt (by earlyStopping.metric, or val_loss)
};

struct EarlyStoppingSpec {
  bool enabled = false;
  std::string metric = "val_loss";  // "val_loss" | "val_accuracy" | "val_mae" | "val_rmse" | "loss"
  std::int64_t patience = 3;        // epochs without improvement
  double minDelta = 0.0;
};

struct JobSpec {
  std::string name;     // optional label
  std::string dataset;  // dataset id
  Task task = Task::kClassification;
  std::string loss;  // "cross_entropy" (classification) | "mse" | "mae" | "huber"
  ModelSpec model;
  OptimizerSpec optimizer;
  ScheduleSpec schedule;
  std::int64_t epochs = 10;
  std::int64_t batchSize = 64;   // global batch (split across ranks)
  double validationSplit = 0.1;  // [0, 0.9]
  std::uint64_t seed = 0;
  std::vector<std::string> devices{"cpu"};  // one trainer rank per entry (ids may repeat for cpu)
  int threads = 0;                          // intra-op threads per rank; 0: cores / ranks
  CheckpointSpec checkpoint;
  EarlyStoppingSpec earlyStopping;
  std::int64_t progressIntervalMs = 500;
  std::optional<std::uint64_t> memoryBytes;  // override of the daemon's estimate

  // Filled by the daemon in job.json; never accepted from clients.
  std::string datasetPath;  // canonical dataset (safetensors, see docs/TRAINING.md)
  std::string workDir;      // <dataDir>/training/jobs/<id>
};

// Parses and validates a request body; kInvalidArgument naming the field ("optimizer.type: ...").
// Missing fields take the defaults above; unknown fields are refused. `loss` defaults by task.
// Does not check the dataset (the daemon does) — model.inputs/outputs may still be 0.
Result<JobSpec> parseJobSpec(const nlohmann::json& body);
// Validates a model spec once inputs/outputs are known (cnn: channels*height*width == inputs,
// sizes positive and not overflowing, spatial size stays >= 1 through every block).
Status validateModelSpec(const ModelSpec& spec);
// The full form (defaults explicit, daemon fields included): job.json.
nlohmann::json toJson(const JobSpec& spec);
// Reads job.json back (the trainer); accepts daemon fields.
Result<JobSpec> parseJobFile(const nlohmann::json& json);

}  // namespace deviceops::training
