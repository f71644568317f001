// ONNX export of a trained built-in model: the daemon writes <workDir>/model.onnx from the job's
// ModelSpec and its model.safetensors (see docs/TRAINING.md), so that the result of a training job
// can be served by the inference registry (ONNX Runtime) like any uploaded model.
//
// The graph is built layer by layer from buildLayers(spec) (src/training_formats/spec.h), the same
// list the trainer builds its libtorch modules from, so parameter names and shapes agree by
// construction:
//   kReshape   -> Reshape (shape initializer "<layer>.shape" = [-1, c, h, w])
//   kLinear    -> Gemm (transB = 1)
//   kConv2d    -> Conv (kernel_shape, strides, pads)
//   kBatchNorm -> BatchNormalization (epsilon 1e-5; running statistics, i.e. inference mode)
//   kActivation-> Relu | Tanh | Sigmoid | LeakyRelu (alpha 0.01, libtorch's default) |
//                 GELU as 0.5 * x * (1 + Erf(x / sqrt(2))) (opset 13 has no Gelu; this is the
//                 exact erf form libtorch uses by default)
//   kDropout   -> nothing (identity at inference)
//   kMaxPool2d -> MaxPool (kernel_shape = strides = [k, k])
//   kFlatten   -> Flatten (axis 1)
// Weights become initializers named as the safetensors tensors ("l0.weight", ...).
#pragma once

#include <filesystem>

#include "common/result.h"
#include "training_formats/safetensors.h"
#include "training_formats/spec.h"

namespace deviceops::training {

// Writes `output` atomically (a temporary file in the same directory, fsync, rename, fsync of the
// directory): an ONNX model (IR version 8, opset 13, producer "deviceops") of the built-in
// architecture `spec` with the weights from `weights` (F32 tensors "l<i>.weight", "l<i>.bias",
// and for batch norm "l<i>.running_mean", "l<i>.running_var"; other tensors are ignored).
// Input "input" FP32 [batch, spec.inputs], output "output" FP32 [batch, spec.outputs]; "batch" is
// a symbolic dimension. The model passes onnx::checker::check_model and strict shape inference
// before anything is written; on any error `output` is left untouched.
//
// Errors: kInvalidArgument when `spec` is not built-in ("torchscript models cannot be exported
// ..."), does not validate (validateModelSpec's message), or a tensor is missing, not F32 or has
// the wrong shape (naming the tensor and the expected shape); kInternal when the ONNX checker
// refuses the graph (with its message); kUnavailable when the file cannot be written (naming
// the path).
// Thread-safe: no shared state (libonnx's schema registry is read-only after start-up).
Status exportOnnx(const ModelSpec& spec, const SafeTensorFile& weights,
                  const std::filesystem::path& output);

}  // namespace deviceops::training
