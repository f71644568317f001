// A generation request as the pipeline takes it, and its validation against a suite. Every
// check here runs before any model does: a request that fails changes nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "diffusion/scheduler.h"
#include "generation/suite.h"

namespace deviceops::generation {

enum class RefinerMode { kNever, kAlways, kAuto };
std::string_view refinerModeName(RefinerMode mode);
std::optional<RefinerMode> parseRefinerMode(std::string_view name);

enum class TilingMode { kOff, kOn, kAuto };
std::string_view tilingModeName(TilingMode mode);
std::optional<TilingMode> parseTilingMode(std::string_view name);

enum class OutputFormat { kPng, kLatents };

struct RefinerOptions {
  std::optional<RefinerMode> mode;       // unset: auto when the suite has a refiner, else never
  std::optional<double> denoisingStart;  // unset: the suite's default (0.8)
  std::optional<double> aestheticScore, negativeAestheticScore;  // unset: 6.0 / 2.5
  // auto: refine when the base image's Laplacian variance is below sharpnessRatio x the suite's
  // running median, its noise residual above noiseRatio x the median, or it clips more than
  // clippedLimit of its values. Before the suite has minHistory base images, the absolute
  // thresholds minSharpness / maxNoise apply instead.
  double sharpnessRatio = 0.8;
  double noiseRatio = 1.25;
  double clippedLimit = 0.02;
  double minSharpness = 1e-4;
  double maxNoise = 0.08;
  int minHistory = 3;
};

struct VaeOptions {
  TilingMode tiling = TilingMode::kAuto;  // auto: tile when the latent exceeds one tile
  std::optional<int> tileLatent;          // unset: the suite's (sample_size / 8)
  std::optional<double> overlap;          // unset: the suite's (0.25)
  bool slicing = true;                    // decode one image at a time
  std::string name;                       // the suite's VAE to use: "stock", a custom one; "":
                                          // the suite's default
};

struct GenerationRequest {
  std::string suite;
  std::string prompt, prompt2, negativePrompt, negativePrompt2;  // prompt2 "": prompt
  std::optional<int> width, height;                              // unset: the suite's sampleSize
  std::optional<int> steps;
  std::optional<double> guidance;
  double guidanceRescale = 0;
  diffusion::SamplerKind scheduler = diffusion::SamplerKind::kEuler;
  std::optional<diffusion::TimestepSpacing> timestepSpacing;  // unset: the suite's config
  std::optional<std::uint64_t> seed;                          // unset: drawn, then reported
  int batch = 1;
  int clipSkip = 0;
  RefinerOptions refiner;
  VaeOptions vae;
  OutputFormat output = OutputFormat::kPng;
  int previewEvery = 5;  // steps between previews (0: none)
  // Unit Gaussian start noise (batch x 4 x h/8 x w/8) in place of the seed's: for comparing with
  // other implementations bit for bit. Not on the HTTP API. Wrong size: kInvalidArgument.
  std::optional<std::vector<float>> initialNoise;
};

// Limits a request is checked against (configurable in [generation]).
struct GenerationLimits {
  int maxSide = 4096;  // pixels
  int maxSteps = 1000;
  int maxBatch = 16;
  // Bytes of VAE decoder activations per output pixel, for the memory estimate (an SDXL VAE in
  // fp32 needs about 6 KiB per pixel untiled).
  std::uint64_t vaeBytesPerPixel = 6144;
};

// The request with every default resolved from the suite.
struct ResolvedRequest {
  GenerationRequest request;
  int width = 0, height = 0, steps = 0;
  double guidance = 0;
  std::uint64_t seed = 0;
  RefinerMode refinerMode = RefinerMode::kNever;
  double denoisingStart = 0.8;
  double aestheticScore = 6.0, negativeAestheticScore = 2.5;
  int tileLatent = 128;
  double tileOverlap = 0.25;
  bool tiled = false;         // decided from the size and the tiling mode
  std::string vae = "stock";  // the VAE the job decodes with (resolved at submission)
  diffusion::SchedulerConfig scheduler;
  std::uint64_t estimatedBytes = 0;  // latents + decoder activations (see estimateBytes)
};

// kInvalidArgument naming the field for anything out of range (width/height not multiples of 8
// or outside [64, maxSide], steps outside [1, maxSteps], batch outside [1, maxBatch], guidance
// not finite or outside [0, 100], guidanceRescale outside [0, 1], denoisingStart outside (0, 1),
// refiner mode always on a suite without a refiner, a bad tile size or overlap, clipSkip beyond
// the encoders' layers). kResourceExhausted (507) with the estimate when it exceeds
// `budgetBytes`. The seed is drawn here when unset.
Result<ResolvedRequest> resolveRequest(const GenerationRequest& request,
                                       const SuiteDefinition& suite, const GenerationLimits& limits,
                                       std::uint64_t budgetBytes);

}  // namespace deviceops::generation
