// safetensors files (https://huggingface.co/docs/safetensors format): an 8-byte little-endian
// header length, a JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]},
// "__metadata__": {string: string}}, then the packed little-endian tensor bytes.
//
// Used for uploaded datasets (named tensors), the canonical dataset file every trainer reads,
// and the final weights of a training job that the ONNX exporter reads. No libtorch here.
//
// Reading validates everything before a byte of data is trusted: header length within the file,
// valid JSON, known dtypes, shapes whose byte counts do not overflow, offsets inside the data
// section, in order and non-overlapping, covering it exactly. Any violation is
// kInvalidArgument naming the tensor and the problem; a missing file is kNotFound.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace deviceops::training {

// The dtypes we read and write: "F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8",
// "BOOL".
enum class SafeDtype { kF32, kF64, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };
std::string_view safeDtypeName(SafeDtype dtype);
std::size_t safeDtypeSize(SafeDtype dtype);

struct SafeTensor {
  SafeDtype dtype = SafeDtype::kF32;
  std::vector<std::int64_t> shape;
  std::string data;  // packed little-endian elements, size = product(shape) * dtype size

  std::int64_t elementCount() const;
  // Elements widened to float / int64 (precondition: numeric dtype). For F16/BF16 exact.
  std::vector<float> toFloat() const;
  std::vector<std::int64_t> toInt64() const;
};

struct SafeTensorFile {
  std::map<std::string, SafeTensor> tensors;    // by name
  std::map<std::string, std::string> metadata;  // "__metadata__"

  const SafeTensor* find(const std::string& name) const;  // null if absent
};

Result<SafeTensorFile> parseSafeTensors(std::string_view bytes);
Result<SafeTensorFile> readSafeTensorsFile(const std::filesystem::path& file);

// Serialized bytes (tensors in name order; header padded with spaces to a multiple of 8).
// Precondition: each tensor's data size matches its shape and dtype.
std::string serializeSafeTensors(const SafeTensorFile& file);
// Writes atomically: a temporary file in the same directory, fsync, rename, fsync of the
// directory.
Status writeSafeTensorsFile(const std::filesystem::path& file, const SafeTensorFile& contents);

// Helpers to build tensors.
SafeTensor makeF32Tensor(std::vector<std::int64_t> shape, const std::vector<float>& values);
SafeTensor makeI64Tensor(std::vector<std::int64_t> shape, const std::vector<std::int64_t>& values);

}  // namespace deviceops::training
