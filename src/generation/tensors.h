// Tensors the pipeline builds and reads: float data converted to the dtype a model declares
// (FP32, FP16, BF16; FP64 too), token ids as INT64 or INT32, and the UNet's timestep in the rank
// and dtype its signature asks for. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "inference/session.h"
#include "tensor/tensor.h"

namespace deviceops::generation {

// The declared type of input `name`; FP32 when absent.
inference::DataType inputType(const inference::ModelMetadata& model, const std::string& name);

// Precondition: values.size() is the product of shape. `type` FP32/FP16/BF16/FP64 (others: FP32).
inference::Tensor makeFloatTensor(std::string name, std::vector<std::int64_t> shape,
                                  const std::vector<float>& values, inference::DataType type);
// [1, ids.size()] of INT64, or INT32 when the model declares it.
inference::Tensor makeIdsTensor(std::string name, const std::vector<std::int64_t>& ids,
                                inference::DataType type);
// The UNet timestep: rank 0 or [rows] (as `model` declares `timestep`), FP32/FP16/INT64.
inference::Tensor makeTimestepTensor(const inference::ModelMetadata& model, double timestep,
                                     int rows);
// Any float tensor (FP32/FP16/BF16/FP64) as floats; kInternal for other types.
Result<std::vector<float>> readFloats(const inference::Tensor& tensor);

// IEEE 754 binary16 conversions (round to nearest even).
std::uint16_t floatToHalf(float value);
float halfToFloat(std::uint16_t half);

}  // namespace deviceops::generation
