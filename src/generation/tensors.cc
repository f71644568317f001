#include "generation/tensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

namespace deviceops::generation {
namespace {

using inference::DataType;

template <class T>
void append(std::string& data, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  data.append(bytes, sizeof(T));
}

template <class T>
T readAt(const std::string& data, std::size_t index) {
  T value;
  std::memcpy(&value, data.data() + index * sizeof(T), sizeof(T));
  return value;
}

}  // namespace

std::uint16_t floatToHalf(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const std::uint32_t sign = (bits >> 16) & 0x8000u;
  const std::uint32_t exponent = (bits >> 23) & 0xffu;
  std::uint32_t mantissa = bits & 0x7fffffu;
  if (exponent == 0xff) {  // Inf / NaN
    return static_cast<std::uint16_t>(sign | 0x7c00u | (mantissa ? 0x200u : 0));
  }
  const int e = static_cast<int>(exponent) - 127 + 15;
  if (e >= 31) return static_cast<std::uint16_t>(sign | 0x7c00u);  // overflow: Inf
  if (e <= 0) {                                                    // subnormal or zero
    if (e < -10) return static_cast<std::uint16_t>(sign);
    mantissa |= 0x800000u;
    const int shift = 14 - e;
    std::uint32_t half = mantissa >> shift;
    const std::uint32_t rest = mantissa & ((1u << shift) - 1);
    const std::uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) ++half;
    return static_cast<std::uint16_t>(sign | half);
  }
  std::uint32_t half = sign | (static_cast<std::uint32_t>(e) << 10) | (mantissa >> 13);
  const std::uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;  // may carry into the exponent
  return static_cast<std::uint16_t>(half);
}

float halfToFloat(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1fu;
  const std::uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0) {
    const float value = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -value : value;
  }
  if (exponent == 31) {
    return std::bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

DataType inputType(const inference::ModelMetadata& model, const std::string& name) {
  for (const inference::TensorSpec& spec : model.inputs) {
    if (spec.name == name) return spec.type;
  }
  return DataType::kFp32;
}

inference::Tensor makeFloatTensor(std::string name, std::vector<std::int64_t> shape,
                                  const std::vector<float>& values, DataType type) {
  inference::Tensor tensor;
  tensor.name = std::move(name);
  tensor.shape = std::move(shape);
  switch (type) {
    case DataType::kFp16:
      tensor.type = type;
      tensor.data.reserve(values.size() * 2);
      for (float value : values) append(tensor.data, floatToHalf(value));
      break;
    case DataType::kBf16:
      tensor.type = type;
      tensor.data.reserve(values.size() * 2);
      for (float value : values) {
        const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
        const std::uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
        append(tensor.data, static_cast<std::uint16_t>(rounded >> 16));
      }
      break;
    case DataType::kFp64:
      tensor.type = type;
      tensor.data.reserve(values.size() * 8);
      for (float value : values) append(tensor.data, static_cast<double>(value));
      break;
    default:
      tensor.type = DataType::kFp32;
      tensor.data.assign(reinterpret_cast<const char*>(values.data()),
                         values.size() * sizeof(float));
  }
  return tensor;
}

inference::Tensor makeIdsTensor(std::string name, const std::vector<std::int64_t>& ids,
                                DataType type) {
  inference::Tensor tensor;
  tensor.name = std::move(name);
  tensor.shape = {1, static_cast<std::int64_t>(ids.size())};
  if (type == DataType::kInt32) {
    tensor.type = type;
    for (std::int64_t id : ids) append(tensor.data, static_cast<std::int32_t>(id));
  } else {
    tensor.type = DataType::kInt64;
    for (std::int64_t id : ids) append(tensor.data, id);
  }
  return tensor;
}

inference::Tensor makeTimestepTensor(const inference::ModelMetadata& model, double timestep,
                                     int rows) {
  const inference::TensorSpec* spec = nullptr;
  for (const inference::TensorSpec& candidate : model.inputs) {
    if (candidate.name == "timestep") spec = &candidate;
  }
  std::vector<std::int64_t> shape;
  std::size_t count = 1;
  if (spec && spec->shape.size() == 1) {
    const std::int64_t fixed = spec->shape[0];
    count = static_cast<std::size_t>(fixed > 0 ? fixed : rows);
    shape = {static_cast<std::int64_t>(count)};
  }
  const DataType type = spec ? spec->type : DataType::kFp32;
  if (type == DataType::kInt64) {
    inference::Tensor tensor;
    tensor.name = "timestep";
    tensor.type = type;
    tensor.shape = shape;
    for (std::size_t i = 0; i < count; ++i) append(tensor.data, std::llround(timestep));
    return tensor;
  }
  return makeFloatTensor("timestep", shape, std::vector<float>(count, static_cast<float>(timestep)),
                         type);
}

Result<std::vector<float>> readFloats(const inference::Tensor& tensor) {
  const std::size_t size = inference::elementSize(tensor.type);
  const std::size_t count = size ? tensor.data.size() / size : 0;
  std::vector<float> out(count);
  switch (tensor.type) {
    case DataType::kFp32:
      std::memcpy(out.data(), tensor.data.data(), count * sizeof(float));
      break;
    case DataType::kFp16:
      for (std::size_t i = 0; i < count; ++i)
        out[i] = halfToFloat(readAt<std::uint16_t>(tensor.data, i));
      break;
    case DataType::kBf16:
      for (std::size_t i = 0; i < count; ++i) {
        out[i] = std::bit_cast<float>(
            static_cast<std::uint32_t>(readAt<std::uint16_t>(tensor.data, i)) << 16);
      }
      break;
    case DataType::kFp64:
      for (std::size_t i = 0; i < count; ++i)
        out[i] = static_cast<float>(readAt<double>(tensor.data, i));
      break;
    default:
      return makeError(ErrorCode::kInternal,
                       fmt::format("output '{}' is {}, not a float type", tensor.name,
                                   inference::dataTypeName(tensor.type)));
  }
  return out;
}

}  // namespace deviceops::generation
