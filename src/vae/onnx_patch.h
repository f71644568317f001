// Applying custom VAE weights to an ONNX decoder or encoder (SDXL.md section 5).
//
// The model's ModelProto is parsed (libonnx), every initializer in the part's namespace
// (decoder: "decoder." and "post_quant_conv."; encoder: "encoder." and "quant_conv.") gets the
// tensor of the same diffusers name, and the model is serialised again: a session created from
// those bytes has the new weights on every execution provider. (Overriding through ONNX Runtime's
// AddInitializer is silently ignored when the value's device differs from the session's, so it is
// not used.)
//
// Rules, checked before anything is replaced:
// - Folded graphs: a floating-point initializer with more than one element outside the namespace
//   (torch.onnx's constant folding turns GroupNorm affines and Linear weights into anonymous
//   onnx::Mul_N / onnx::MatMul_N) means the weights cannot be matched by name: kUnprocessable
//   (422) with the re-export command in the message and details.reexport.
// - Coverage: every namespaced initializer must have a tensor (kInvalidArgument naming the key and
//   its shape in the model) with the same shape (kInvalidArgument naming the key and both shapes).
// - Types: FLOAT initializers take the values; FLOAT16 ones take them rounded to nearest even;
//   BFLOAT16 likewise; other types in the namespace are kInvalidArgument.
// - External data: a replaced initializer's external data is dropped; an initializer that stays
//   must not use external data (kInvalidArgument: re-export without external data).
// Tensors of the weights that the model does not use are counted, never an error (a full
// autoencoder file patches the decoder and the encoder separately).
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "vae/vae_weights.h"

namespace deviceops::vae {

enum class VaePart { kDecoder, kEncoder };
std::string_view vaePartName(VaePart part);  // "vae_decoder", "vae_encoder"

struct PatchReport {
  std::size_t patched = 0;        // initializers replaced
  std::size_t unusedWeights = 0;  // tensors of the part's namespace the model does not have
  std::uint64_t parameters = 0;   // elements replaced
};

// Patches `modelBytes` (a serialised ModelProto); returns the new serialised model.
Result<std::string> patchVaeModel(std::string_view modelBytes, VaePart part,
                                  const VaeWeights& weights, PatchReport& report);

// The command a user runs to get a decoder whose initializers have stable names.
std::string reexportCommand(std::string_view weightsHint);

}  // namespace deviceops::vae
