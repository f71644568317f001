// Tensor: a named, typed, shaped block of values as it crosses the API, independent of both the
// wire protocol (KServe v2 JSON/binary, the original /api/inference/execute) and ONNX Runtime.
//
// Numeric and BOOL tensors keep their elements packed little-endian in `data` exactly as ONNX
// Runtime lays them out (FP16/BF16 as their 16-bit patterns, BOOL as one byte 0/1). BYTES
// (ONNX string) tensors keep one std::string per element in `strings` and leave `data` empty.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace deviceops::inference {

enum class DataType {
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kBf16,
  kFp32,
  kFp64,
  kBytes,
};

// KServe v2 names: "BOOL", "UINT8", ..., "FP16", "BF16", "FP32", "FP64", "BYTES".
std::string_view dataTypeName(DataType type);
std::optional<DataType> parseDataType(std::string_view name);  // exact, upper-case
// Bytes per element; 0 for kBytes (variable length).
std::size_t elementSize(DataType type);

// Product of the dimensions. kInvalidArgument if a dimension is negative or the product (or the
// product times the element size) overflows 2^62 — callers never allocate from unchecked shapes.
Result<std::uint64_t> elementCount(const std::vector<std::int64_t>& shape);
Result<std::uint64_t> byteCount(DataType type, const std::vector<std::int64_t>& shape);

struct Tensor {
  std::string name;
  DataType type = DataType::kFp32;
  std::vector<std::int64_t> shape;
  std::string data;                  // packed elements (all types but kBytes)
  std::vector<std::string> strings;  // kBytes elements, row-major

  // kInvalidArgument naming the tensor when data/strings do not match type and shape.
  Status validate() const;
};

// What a model declares for one input or output; -1 marks a dynamic dimension.
struct TensorSpec {
  std::string name;
  DataType type = DataType::kFp32;
  std::vector<std::int64_t> shape;
};

// kInvalidArgument naming the tensor and what was expected when `tensor` does not fit `spec`:
// wrong type, rank, or a fixed dimension that differs.
Status checkAgainstSpec(const Tensor& tensor, const TensorSpec& spec);

}  // namespace deviceops::inference
