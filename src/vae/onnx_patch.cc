#include "vae/onnx_patch.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <onnx/onnx_pb.h>

#include <climits>
#include <cstring>
#include <limits>

#include "tensor/kserve_codec.h"

namespace deviceops::vae {
namespace {

using Proto = onnx::TensorProto;

bool inNamespace(std::string_view name, VaePart part) {
  if (part == VaePart::kDecoder) {
    return name.starts_with("decoder.") || name.starts_with("post_quant_conv.");
  }
  return name.starts_with("encoder.") || name.starts_with("quant_conv.");
}

bool isFloating(int type) {
  return type == Proto::FLOAT || type == Proto::FLOAT16 || type == Proto::BFLOAT16 ||
         type == Proto::DOUBLE;
}

std::uint64_t elementCount(const Proto& tensor) {
  std::uint64_t count = 1;
  for (const std::int64_t dim : tensor.dims()) {
    if (dim < 0) return 0;
    count *= static_cast<std::uint64_t>(dim);
  }
  return count;
}

std::vector<std::int64_t> dimsOf(const Proto& tensor) {
  return {tensor.dims().begin(), tensor.dims().end()};
}

void replaceData(Proto& tensor, const std::vector<float>& values) {
  std::string raw;
  if (tensor.data_type() == Proto::FLOAT) {
    raw.resize(values.size() * sizeof(float));
    std::memcpy(raw.data(), values.data(), raw.size());
  } else {
    raw.resize(values.size() * 2);
    const bool half = tensor.data_type() == Proto::FLOAT16;
    for (std::size_t i = 0; i < values.size(); ++i) {
      const std::uint16_t bits =
          half ? inference::doubleToHalf(values[i]) : inference::doubleToBfloat16(values[i]);
      std::memcpy(raw.data() + 2 * i, &bits, 2);
    }
  }
  tensor.clear_float_data();
  tensor.clear_int32_data();
  tensor.clear_external_data();
  tensor.set_data_location(Proto::DEFAULT);
  tensor.set_raw_data(std::move(raw));
}

}  // namespace

std::string_view vaePartName(VaePart part) {
  return part == VaePart::kDecoder ? "vae_decoder" : "vae_encoder";
}

std::string reexportCommand(std::string_view weightsHint) {
  return fmt::format(
      "/usr/bin/python3 scripts/export_vae.py --weights {} --output <dir> (then import the suite "
      "with <dir>/vae_decoder and <dir>/vae_encoder)",
      weightsHint.empty() ? "<the suite's VAE weights>" : weightsHint);
}

Result<std::string> patchVaeModel(std::string_view modelBytes, VaePart part,
                                  const VaeWeights& weights, PatchReport& report) {
  report = PatchReport{};
  if (modelBytes.size() > static_cast<std::size_t>(INT_MAX)) {
    return makeError(ErrorCode::kInvalidArgument, "the ONNX model is over 2 GiB");
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(modelBytes.data(), static_cast<int>(modelBytes.size())) ||
      !model.has_graph()) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("the {} is not a valid ONNX model", vaePartName(part)));
  }
  onnx::GraphProto& graph = *model.mutable_graph();
  std::vector<std::string> anonymous;
  for (const Proto& tensor : graph.initializer()) {
    if (!inNamespace(tensor.name(), part) && isFloating(tensor.data_type()) &&
        elementCount(tensor) > 1) {
      anonymous.push_back(tensor.name());
    }
  }
  if (!anonymous.empty()) {
    const std::string command = reexportCommand("");
    return makeError(
        ErrorCode::kUnprocessable,
        fmt::format("re-export required: the suite's {} has {} weight initializer(s) without "
                    "parameter names (e.g. {}), as an export with constant folding makes them, "
                    "so custom weights cannot be matched to them; export it with stable names: {}",
                    vaePartName(part), anonymous.size(), anonymous.front(), command),
        {{"reexport", command},
         {"component", std::string(vaePartName(part))},
         {"anonymousInitializers",
          std::vector<std::string>(
              anonymous.begin(),
              anonymous.begin() + static_cast<long>(std::min<std::size_t>(anonymous.size(), 8)))}});
  }
  std::size_t namespaced = 0;
  for (const Proto& tensor : graph.initializer()) {
    if (!inNamespace(tensor.name(), part)) {
      if (tensor.data_location() == Proto::EXTERNAL) {
        return makeError(ErrorCode::kInvalidArgument,
                         fmt::format("the {}'s initializer {} uses external data; re-export the "
                                     "model without external data",
                                     vaePartName(part), tensor.name()));
      }
      continue;
    }
    ++namespaced;
    const auto it = weights.tensors.find(tensor.name());
    if (it == weights.tensors.end()) {
      return makeError(
          ErrorCode::kInvalidArgument,
          fmt::format("the VAE file has no tensor {} (the suite's {} needs shape [{}])",
                      tensor.name(), vaePartName(part), fmt::join(tensor.dims(), ", ")),
          {{"key", tensor.name()}, {"expectedShape", dimsOf(tensor)}});
    }
    if (it->second.shape != dimsOf(tensor)) {
      return makeError(
          ErrorCode::kInvalidArgument,
          fmt::format("VAE tensor {} (file key {}) has shape [{}]; the suite's {} needs [{}]",
                      tensor.name(), it->second.sourceKey, fmt::join(it->second.shape, ", "),
                      vaePartName(part), fmt::join(tensor.dims(), ", ")),
          {{"key", tensor.name()}, {"shape", it->second.shape}, {"expectedShape", dimsOf(tensor)}});
    }
    const int type = tensor.data_type();
    if (type != Proto::FLOAT && type != Proto::FLOAT16 && type != Proto::BFLOAT16) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("the {}'s initializer {} has ONNX type {}; only float, float16 "
                                   "and bfloat16 weights can be replaced",
                                   vaePartName(part), tensor.name(), type));
    }
  }
  if (namespaced == 0) {
    return makeError(ErrorCode::kUnprocessable,
                     fmt::format("re-export required: the suite's {} has no initializer named "
                                 "after the VAE's parameters; export it with stable names: {}",
                                 vaePartName(part), reexportCommand("")),
                     {{"reexport", reexportCommand("")}});
  }
  for (Proto& tensor : *graph.mutable_initializer()) {
    if (!inNamespace(tensor.name(), part)) continue;
    const VaeTensor& source = weights.tensors.at(tensor.name());
    replaceData(tensor, source.values);
    ++report.patched;
    report.parameters += source.values.size();
  }
  for (const auto& [name, tensor] : weights.tensors) {
    if (inNamespace(name, part)) ++report.unusedWeights;
  }
  report.unusedWeights -= report.patched;  // every patched initializer used one tensor
  std::string out;
  if (!model.SerializeToString(&out)) {
    return makeError(ErrorCode::kInternal, "cannot serialise the patched ONNX model");
  }
  return out;
}

}  // namespace deviceops::vae
