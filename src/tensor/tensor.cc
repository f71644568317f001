#include "tensor/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <limits>

namespace deviceops::inference {
namespace {

struct TypeInfo {
  DataType type;
  std::string_view name;
  std::size_t size;
};

constexpr std::array<TypeInfo, 14> kTypes{{
    {DataType::kBool, "BOOL", 1},
    {DataType::kUint8, "UINT8", 1},
    {DataType::kUint16, "UINT16", 2},
    {DataType::kUint32, "UINT32", 4},
    {DataType::kUint64, "UINT64", 8},
    {DataType::kInt8, "INT8", 1},
    {DataType::kInt16, "INT16", 2},
    {DataType::kInt32, "INT32", 4},
    {DataType::kInt64, "INT64", 8},
    {DataType::kFp16, "FP16", 2},
    {DataType::kBf16, "BF16", 2},
    {DataType::kFp32, "FP32", 4},
    {DataType::kFp64, "FP64", 8},
    {DataType::kBytes, "BYTES", 0},
}};

constexpr std::uint64_t kMaxCount = 1ull << 62;

const TypeInfo& infoOf(DataType type) {
  for (const TypeInfo& info : kTypes) {
    if (info.type == type) return info;
  }
  return kTypes.back();
}

std::string shapeText(const std::vector<std::int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

}  // namespace

std::string_view dataTypeName(DataType type) { return infoOf(type).name; }

std::optional<DataType> parseDataType(std::string_view name) {
  for (const TypeInfo& info : kTypes) {
    if (info.name == name) return info.type;
  }
  return std::nullopt;
}

std::size_t elementSize(DataType type) { return infoOf(type).size; }

Result<std::uint64_t> elementCount(const std::vector<std::int64_t>& shape) {
  std::uint64_t count = 1;
  for (const std::int64_t dimension : shape) {
    if (dimension < 0) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("shape {} has a negative dimension", shapeText(shape)));
    }
    const auto value = static_cast<std::uint64_t>(dimension);
    if (value != 0 && count > kMaxCount / value) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("shape {} has too many elements", shapeText(shape)));
    }
    count *= value;
  }
  return count;
}

Result<std::uint64_t> byteCount(DataType type, const std::vector<std::int64_t>& shape) {
  Result<std::uint64_t> count = elementCount(shape);
  if (!count.ok()) return count.error();
  const std::uint64_t size = elementSize(type);
  if (size != 0 && count.value() > kMaxCount / size) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("shape {} of {} is too large", shapeText(shape), dataTypeName(type)));
  }
  return count.value() * size;
}

Status Tensor::validate() const {
  Result<std::uint64_t> count = elementCount(shape);
  if (!count.ok()) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("tensor '{}': {}", name, count.error().message));
  }
  if (type == DataType::kBytes) {
    if (!data.empty() || strings.size() != count.value()) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("tensor '{}': expected {} BYTES elements for shape {}, got {}",
                                   name, count.value(), shapeText(shape), strings.size()));
    }
    return {};
  }
  const std::uint64_t expected = count.value() * elementSize(type);
  if (!strings.empty() || data.size() != expected) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("tensor '{}': expected {} bytes ({} {} elements) for shape {}, got {} bytes",
                    name, expected, count.value(), dataTypeName(type), shapeText(shape),
                    data.size()));
  }
  return {};
}

Status checkAgainstSpec(const Tensor& tensor, const TensorSpec& spec) {
  if (tensor.type != spec.type) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("input '{}': expected datatype {}, got {}", spec.name,
                                 dataTypeName(spec.type), dataTypeName(tensor.type)),
                     {{"tensor", spec.name}, {"expected", dataTypeName(spec.type)}});
  }
  if (tensor.shape.size() != spec.shape.size()) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("input '{}': expected rank {} (shape {}), got shape {}", spec.name,
                                 spec.shape.size(), shapeText(spec.shape), shapeText(tensor.shape)),
                     {{"tensor", spec.name}, {"expectedShape", spec.shape}});
  }
  for (std::size_t i = 0; i < spec.shape.size(); ++i) {
    if (spec.shape[i] >= 0 && tensor.shape[i] != spec.shape[i]) {
      return makeError(
          ErrorCode::kInvalidArgument,
          fmt::format("input '{}': dimension {} must be {} (shape {}), got shape {}", spec.name, i,
                      spec.shape[i], shapeText(spec.shape), shapeText(tensor.shape)),
          {{"tensor", spec.name}, {"expectedShape", spec.shape}});
    }
  }
  return tensor.validate();
}

}  // namespace deviceops::inference
