// ONNX models built in-process with libonnx for self-tests and benchmarks: no model files and no
// Python at run time. Every weight and input comes from a fixed generator, so a model's bytes and
// its outputs are the same on every machine, and the plain C++ references below give "the CPU
// result" that each device's output is compared with.
//
// All models: IR version 8, default-domain opset 17, float32, producer "deviceops-selftest".
// Tensors are row-major. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace deviceops::selftest {

// --- matmul: input "a" float [n, n], initializer "b" float [n, n], output "c" = MatMul(a, b). ---
inline constexpr int kMaxMatmulSize = 4096;  // b is then 64 MiB
inline constexpr char kMatmulInput[] = "a";
inline constexpr char kMatmulOutput[] = "c";

// The serialized ModelProto. Precondition 1 <= n <= kMaxMatmulSize; otherwise returns an empty
// string (which is not a model: checkModel and ONNX Runtime refuse it).
std::string matmulModel(int n);
// The initializer b ([n, n], values in [-1, 1)); empty for n out of range.
std::vector<float> matmulWeights(int n);
// An input a ([n, n], values in [-1, 1)) for `seed`; empty for n out of range.
std::vector<float> matmulInput(int n, std::uint64_t seed);
// a x b with double accumulation; empty when a.size() != n * n or n is out of range.
std::vector<float> matmulReference(const std::vector<float>& a, int n);
// Floating-point operations of one run: 2 n^3 (a multiply and an add per term).
double matmulFlops(int n);

// --- mlp: input "x" float [batch, 64] ("batch" is a dynamic dimension), output "y" float
// [batch, 10]: y = (Relu(x W1 + b1)) W2 + b2 with W1 [64, 128], b1 [128], W2 [128, 10], b2 [10].
inline constexpr std::size_t kMlpInputs = 64;
inline constexpr std::size_t kMlpHidden = 128;
inline constexpr std::size_t kMlpOutputs = 10;
inline constexpr char kMlpInput[] = "x";
inline constexpr char kMlpOutput[] = "y";

std::string mlpModel();
// batch * 64 values in [-1, 1) for `seed`.
std::vector<float> mlpInput(std::size_t batch, std::uint64_t seed);
// The same arithmetic in plain C++ with double accumulation: batch * 10 values. Empty when
// x.size() != batch * 64.
std::vector<float> mlpReference(const std::vector<float>& x, std::size_t batch);

// Parses `serialized` as a ModelProto and runs libonnx's checker and strict shape inference on it.
// kInvalidArgument (with the checker's message) when the bytes are not a valid model.
Status checkModel(std::string_view serialized);

}  // namespace deviceops::selftest
