// A minimal, bounds-checked reader of the top level of an ONNX ModelProto (protobuf wire format).
//
// ONNX Runtime's C++ API does not expose a model's opset imports, so the fields inspectModel()
// needs are read here: ir_version (1), producer_name (2), producer_version (3), graph (7, only
// its presence) and opset_import (8: OperatorSetIdProto{domain = 1, version = 2}). Every other
// field is skipped by its wire type. The file is streamed: the graph (which holds the weights) is
// skipped with a seek, never read into memory.
//
// Anything that is not a well-formed ModelProto with a graph — random bytes, a truncated file,
// lengths past the end, varints longer than 10 bytes, group wire types — is kInvalidArgument with
// the byte offset of the problem. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace deviceops::inference {

struct ModelProtoSummary {
  std::int64_t irVersion = 0;
  std::int64_t opset = 0;  // of the default domain ("" or "ai.onnx"); 0 when not imported
  std::string producerName;
  std::string producerVersion;
};

Result<ModelProtoSummary> readModelProto(const std::filesystem::path& file);
// The same for bytes in memory (tests, fuzzing).
Result<ModelProtoSummary> parseModelProto(std::string_view bytes);

}  // namespace deviceops::inference
