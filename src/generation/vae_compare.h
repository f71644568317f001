// Comparing a suite's VAEs by measured quality (issue 14; SDXL.md section 7).
//
// Every candidate ("stock" and registered VAEs) encodes and decodes the same probe set — the
// synthetic probes of vae/probes.h at `size` pixels, plus the user's PNGs (centre crops) — and is
// scored on the round trip decode(mean(encode(x))): the VAE's own encoder when it has one, else
// the suite's. Per candidate:
// - psnr, ssim: means over the probes (imaging/similarity.h), with perProbe figures;
// - nanRate.fp32: non-finite values / all values of the decoded probes;
// - nanRate.fp16: values that would not survive fp16 (non-finite or |x| > 65504) / all values.
//   This is an estimate from the fp32 run: the CPU build of ONNX Runtime casts fp16 graphs to fp32,
//   so true fp16 execution needs a GPU execution provider;
// - clippedFraction: decoded values outside [-1, 1];
// - colourfulnessDrift: mean |M(decoded) - M(original)| (Hasler-Süsstrunk, 0..255 scale);
// - decodeMs: mean decoder latency per probe (wall, through the registry);
// - modelBytes: the decoder's ledger charge; peakBytes: that plus the largest rise of the
//   process's resident memory during one decode.
// Ranking: candidates with a non-finite fp32 value last; then by SSIM, then PSNR, descending.
// The result is stored with the suite (SuiteManager::recordComparison); `select` makes the winner
// the default.
//
// Errors: kNotFound (suite, candidate); kInvalidArgument (size not a multiple of 8 in [16, 2048],
// more than 8 images, a probe image that is not a PNG); kPermissionDenied/kNotFound for image
// paths outside the model roots or missing; kUnprocessable when the suite has no VAE encoder.
// Thread-safe; runs synchronously on the caller's thread.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "generation/suite_manager.h"
#include "inference/registry.h"

namespace deviceops::generation {

struct VaeCompareRequest {
  std::vector<std::string> candidates;  // empty: "stock" and every registered VAE
  std::vector<std::filesystem::path> images;
  int size = 256;
  bool select = false;
};

Result<nlohmann::json> compareVaes(SuiteManager& suites, inference::ModelRegistry& registry,
                                   const std::string& suite, const VaeCompareRequest& request);

}  // namespace deviceops::generation
