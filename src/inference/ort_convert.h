// Conversions between deviceops Tensors and ONNX Runtime values. Internal to src/inference/.
//
// Inputs are wrapped without a copy: the Ort::Value points into Tensor::data, so the Tensor must
// outlive the value (ONNX Runtime never writes to inputs). BYTES tensors are copied into an ORT
// string tensor (ORT owns string storage); strings may contain any byte, NUL included.
// Functions may throw Ort::Exception; callers catch at the component's edge (session.cc).
#pragma once

#include <onnxruntime_cxx_api.h>

#include <optional>
#include <string>

#include "tensor/tensor.h"

namespace deviceops::inference {

ONNXTensorElementDataType toOrtElementType(DataType type);
std::optional<DataType> fromOrtElementType(ONNXTensorElementDataType type);
// "float8e4m3fn"-style name for error messages about types we do not serve.
std::string ortElementTypeName(ONNXTensorElementDataType type);

// Precondition: tensor.validate() is ok.
Ort::Value toOrtValue(const Tensor& tensor, const Ort::MemoryInfo& cpu, OrtAllocator* allocator);

// A CPU tensor output as a Tensor (copied). kInvalidArgument when the value is not a tensor or
// has a type we do not serve.
Result<Tensor> fromOrtValue(const std::string& name, const Ort::Value& value);

}  // namespace deviceops::inference
