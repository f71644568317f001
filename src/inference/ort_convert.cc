#include "inference/ort_convert.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <utility>

namespace deviceops::inference {
namespace {

constexpr std::array<std::pair<DataType, ONNXTensorElementDataType>, 14> kTypes{{
    {DataType::kBool, ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL},
    {DataType::kUint8, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8},
    {DataType::kUint16, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16},
    {DataType::kUint32, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32},
    {DataType::kUint64, ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64},
    {DataType::kInt8, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8},
    {DataType::kInt16, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16},
    {DataType::kInt32, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32},
    {DataType::kInt64, ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64},
    {DataType::kFp16, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16},
    {DataType::kBf16, ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16},
    {DataType::kFp32, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT},
    {DataType::kFp64, ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE},
    {DataType::kBytes, ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING},
}};

}  // namespace

ONNXTensorElementDataType toOrtElementType(DataType type) {
  for (const auto& [ours, ort] : kTypes) {
    if (ours == type) return ort;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

std::optional<DataType> fromOrtElementType(ONNXTensorElementDataType type) {
  for (const auto& [ours, ort] : kTypes) {
    if (ort == type) return ours;
  }
  return std::nullopt;
}

std::string ortElementTypeName(ONNXTensorElementDataType type) {
  switch (type) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED:
      return "undefined";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX64:
      return "complex64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX128:
      return "complex128";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FN:
      return "float8e4m3fn";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FNUZ:
      return "float8e4m3fnuz";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E5M2:
      return "float8e5m2";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E5M2FNUZ:
      return "float8e5m2fnuz";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT4:
      return "uint4";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT4:
      return "int4";
    default: {
      const std::optional<DataType> ours = fromOrtElementType(type);
      if (ours) return std::string(dataTypeName(*ours));
      return fmt::format("element type {}", static_cast<int>(type));
    }
  }
}

Ort::Value toOrtValue(const Tensor& tensor, const Ort::MemoryInfo& cpu, OrtAllocator* allocator) {
  const std::vector<std::int64_t>& shape = tensor.shape;
  if (tensor.type == DataType::kBytes) {
    Ort::Value value = Ort::Value::CreateTensor(allocator, shape.data(), shape.size(),
                                                ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
    // GetResizedStringTensorElementBuffer takes a length, so embedded NULs survive (the
    // FillStringTensor* calls take C strings).
    for (std::size_t i = 0; i < tensor.strings.size(); ++i) {
      const std::string& element = tensor.strings[i];
      char* buffer = nullptr;
      Ort::ThrowOnError(
          Ort::GetApi().GetResizedStringTensorElementBuffer(value, i, element.size(), &buffer));
      if (!element.empty()) std::memcpy(buffer, element.data(), element.size());
    }
    return value;
  }
  // ONNX Runtime does not write to inputs; the const_cast only satisfies CreateTensor's signature.
  auto* data = const_cast<char*>(tensor.data.data());
  return Ort::Value::CreateTensor(cpu, data, tensor.data.size(), shape.data(), shape.size(),
                                  toOrtElementType(tensor.type));
}

Result<Tensor> fromOrtValue(const std::string& name, const Ort::Value& value) {
  if (!value.IsTensor()) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("output '{}' is not a tensor (sequences and maps are not served)", name));
  }
  Ort::TensorTypeAndShapeInfo info = value.GetTensorTypeAndShapeInfo();
  const ONNXTensorElementDataType ortType = info.GetElementType();
  const std::optional<DataType> type = fromOrtElementType(ortType);
  if (!type) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("output '{}' has element type {}, which is not served", name,
                                 ortElementTypeName(ortType)));
  }
  Tensor tensor;
  tensor.name = name;
  tensor.type = *type;
  tensor.shape = info.GetShape();
  const std::size_t count = info.GetElementCount();
  if (*type == DataType::kBytes) {
    const std::size_t total = value.GetStringTensorDataLength();
    std::string content(total, '\0');
    std::vector<std::size_t> offsets(count);
    if (count > 0) value.GetStringTensorContent(content.data(), total, offsets.data(), count);
    tensor.strings.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t end = i + 1 < count ? offsets[i + 1] : total;
      tensor.strings.emplace_back(content, offsets[i], end - offsets[i]);
    }
    return tensor;
  }
  const std::size_t bytes = count * elementSize(*type);
  if (bytes > 0) {
    tensor.data.assign(static_cast<const char*>(value.GetTensorRawData()), bytes);
  }
  return tensor;
}

}  // namespace deviceops::inference
