#include "generation/request.h"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <random>

#include "generation/suite_validation.h"

namespace deviceops::generation {
namespace {

constexpr std::array<std::pair<RefinerMode, std::string_view>, 3> kRefinerModes = {
    {{RefinerMode::kNever, "never"},
     {RefinerMode::kAlways, "always"},
     {RefinerMode::kAuto, "auto"}}};
constexpr std::array<std::pair<TilingMode, std::string_view>, 3> kTilingModes = {
    {{TilingMode::kOff, "off"}, {TilingMode::kOn, "on"}, {TilingMode::kAuto, "auto"}}};

Error invalid(const std::string& field, std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message), {{"field", field}});
}

Status checkSide(const char* field, int value, int maxSide) {
  if (value < 64 || value > maxSide || value % 8 != 0) {
    return invalid(field, fmt::format("{} must be a multiple of 8 in [64, {}], not {}", field,
                                      maxSide, value));
  }
  return Status::success();
}

int hiddenLayers(const Component* encoder) {
  if (!encoder || !encoder->metadata) return 0;
  const std::string name = contextOutputName(*encoder->metadata);
  return name.empty() ? 0 : std::stoi(name.substr(name.find('.') + 1)) + 1;
}

}  // namespace

std::string_view refinerModeName(RefinerMode mode) {
  for (const auto& [value, name] : kRefinerModes) {
    if (value == mode) return name;
  }
  return "never";
}

std::optional<RefinerMode> parseRefinerMode(std::string_view name) {
  for (const auto& [value, text] : kRefinerModes) {
    if (text == name) return value;
  }
  return std::nullopt;
}

std::string_view tilingModeName(TilingMode mode) {
  for (const auto& [value, name] : kTilingModes) {
    if (value == mode) return name;
  }
  return "auto";
}

std::optional<TilingMode> parseTilingMode(std::string_view name) {
  for (const auto& [value, text] : kTilingModes) {
    if (text == name) return value;
  }
  return std::nullopt;
}

Result<ResolvedRequest> resolveRequest(const GenerationRequest& request,
                                       const SuiteDefinition& suite, const GenerationLimits& limits,
                                       std::uint64_t budgetBytes) {
  ResolvedRequest out;
  out.request = request;
  const SuiteSettings& settings = suite.settings;
  out.width = request.width.value_or(settings.sampleSize);
  out.height = request.height.value_or(settings.sampleSize);
  RETURN_IF_ERROR(checkSide("width", out.width, limits.maxSide));
  RETURN_IF_ERROR(checkSide("height", out.height, limits.maxSide));
  out.steps = request.steps.value_or(settings.defaultSteps);
  if (out.steps < 1 || out.steps > limits.maxSteps) {
    return invalid("steps",
                   fmt::format("steps must be in [1, {}], not {}", limits.maxSteps, out.steps));
  }
  out.guidance = request.guidance.value_or(settings.defaultGuidance);
  if (!std::isfinite(out.guidance) || out.guidance < 0 || out.guidance > 100) {
    return invalid("guidance", "guidance must be a finite number in [0, 100]");
  }
  if (!std::isfinite(request.guidanceRescale) || request.guidanceRescale < 0 ||
      request.guidanceRescale > 1) {
    return invalid("guidanceRescale", "guidanceRescale must be in [0, 1]");
  }
  if (request.batch < 1 || request.batch > limits.maxBatch) {
    return invalid("batch",
                   fmt::format("batch must be in [1, {}], not {}", limits.maxBatch, request.batch));
  }
  const int layers = std::min(hiddenLayers(suite.find(Role::kTextEncoder)),
                              hiddenLayers(suite.find(Role::kTextEncoder2)));
  if (request.clipSkip < 0 || (layers > 0 && request.clipSkip >= layers - 1)) {
    return invalid("clipSkip", fmt::format("clipSkip must be in [0, {}]", std::max(0, layers - 2)));
  }
  if (request.previewEvery < 0) return invalid("previewEvery", "previewEvery must be >= 0");

  // Refiner.
  out.refinerMode =
      request.refiner.mode.value_or(suite.hasRefiner() ? RefinerMode::kAuto : RefinerMode::kNever);
  if (out.refinerMode == RefinerMode::kAlways && !suite.hasRefiner()) {
    return invalid("refiner.mode",
                   fmt::format("suite {} has no refiner; use mode never", suite.name));
  }
  if (!suite.hasRefiner()) out.refinerMode = RefinerMode::kNever;
  out.denoisingStart = request.refiner.denoisingStart.value_or(settings.defaultDenoisingStart);
  if (!std::isfinite(out.denoisingStart) || out.denoisingStart <= 0 || out.denoisingStart >= 1) {
    return invalid("refiner.denoisingStart", "refiner.denoisingStart must be in (0, 1)");
  }
  out.aestheticScore = request.refiner.aestheticScore.value_or(settings.aestheticScore);
  out.negativeAestheticScore =
      request.refiner.negativeAestheticScore.value_or(settings.negativeAestheticScore);
  if (!std::isfinite(out.aestheticScore) || !std::isfinite(out.negativeAestheticScore)) {
    return invalid("refiner.aestheticScore", "aesthetic scores must be finite");
  }
  for (const auto& [field, value] :
       {std::pair{"refiner.sharpnessRatio", request.refiner.sharpnessRatio},
        std::pair{"refiner.noiseRatio", request.refiner.noiseRatio},
        std::pair{"refiner.clippedLimit", request.refiner.clippedLimit},
        std::pair{"refiner.minSharpness", request.refiner.minSharpness},
        std::pair{"refiner.maxNoise", request.refiner.maxNoise}}) {
    if (!std::isfinite(value) || value < 0) {
      return invalid(field, fmt::format("{} must be a finite number >= 0", field));
    }
  }

  // Scheduler: the suite's config, with the request's spacing.
  if (!settings.scheduler.empty()) {
    Result<diffusion::SchedulerConfig> config = diffusion::parseSchedulerConfig(settings.scheduler);
    if (!config.ok()) {
      Error error = config.error();
      error.message = "the suite's scheduler config: " + error.message;
      return error;
    }
    out.scheduler = *config;
  }
  if (request.timestepSpacing) out.scheduler.spacing = *request.timestepSpacing;
  if (out.steps > out.scheduler.trainTimesteps) {
    return invalid("steps", fmt::format("steps must be at most the scheduler's {} training "
                                        "timesteps",
                                        out.scheduler.trainTimesteps));
  }

  // VAE tiling.
  out.tileLatent = request.vae.tileLatent.value_or(settings.vaeTileLatent);
  out.tileOverlap = request.vae.overlap.value_or(settings.vaeTileOverlap);
  if (out.tileLatent < 2 || out.tileLatent > 1024) {
    return invalid("vae.tileSize", "vae.tileSize must be in [16, 8192] pixels (a multiple of 8)");
  }
  if (!std::isfinite(out.tileOverlap) || out.tileOverlap < 0 || out.tileOverlap > 0.9) {
    return invalid("vae.overlap", "vae.overlap must be in [0, 0.9]");
  }
  {
    // diffusers' tiling gives an image of the right size only when the crop of each tile
    // (row_limit) equals the stride between tiles in pixels.
    const int tilePixels = out.tileLatent * 8;
    const int blend = static_cast<int>(tilePixels * out.tileOverlap);
    const int stride = static_cast<int>(out.tileLatent * (1 - out.tileOverlap));
    if (tilePixels - blend != stride * 8 || stride < 1) {
      return invalid("vae.overlap",
                     fmt::format("vae.tileSize {} with overlap {:g} does not tile evenly (crop {} "
                                 "px != stride {} px); use overlap 0.25 with a tile size that is "
                                 "a multiple of 32",
                                 tilePixels, out.tileOverlap, tilePixels - blend, stride * 8));
    }
  }
  const int latentWidth = out.width / 8, latentHeight = out.height / 8;
  const bool exceedsTile = latentWidth > out.tileLatent || latentHeight > out.tileLatent;
  out.tiled = request.vae.tiling == TilingMode::kOn ||
              (request.vae.tiling == TilingMode::kAuto && exceedsTile);

  // Memory estimate: the latents (x, the CFG batch, the prediction, the guided epsilon) and the
  // decoder's activations for what it decodes at once, plus the decoded floats.
  const std::uint64_t batch = static_cast<std::uint64_t>(request.batch);
  const std::uint64_t latentBytes =
      batch * 4 * static_cast<std::uint64_t>(latentWidth) * latentHeight * sizeof(float) * 6;
  const std::uint64_t decodedAtOnce = request.vae.slicing ? 1 : batch;
  const std::uint64_t pixelsAtOnce =
      out.tiled ? static_cast<std::uint64_t>(out.tileLatent) * out.tileLatent * 64
                : static_cast<std::uint64_t>(out.width) * out.height;
  const std::uint64_t imageBytes =
      decodedAtOnce * 3 * static_cast<std::uint64_t>(out.width) * out.height * sizeof(float);
  out.estimatedBytes =
      latentBytes + decodedAtOnce * pixelsAtOnce * limits.vaeBytesPerPixel + imageBytes;
  if (budgetBytes > 0 && out.estimatedBytes > budgetBytes) {
    return makeError(ErrorCode::kResourceExhausted,
                     fmt::format("a {}x{} generation of {} image(s) needs an estimated {} bytes "
                                 "(latents {}, VAE decode {}); the largest device budget is {} "
                                 "bytes. Use vae.tiling on, vae.slicing, or a smaller size",
                                 out.width, out.height, batch, out.estimatedBytes, latentBytes,
                                 out.estimatedBytes - latentBytes, budgetBytes),
                     {{"estimatedBytes", out.estimatedBytes}, {"budgetBytes", budgetBytes}});
  }

  if (request.initialNoise && request.initialNoise->size() != static_cast<std::size_t>(batch) * 4 *
                                                                  latentWidth * latentHeight) {
    return invalid("initialNoise", fmt::format("initialNoise must hold batch x 4 x {} x {} values",
                                               latentHeight, latentWidth));
  }
  if (request.seed) {
    out.seed = *request.seed;
  } else {
    std::random_device device;
    out.seed = (static_cast<std::uint64_t>(device()) << 32 | device()) & ((1ULL << 53) - 1);
  }
  return out;
}

}  // namespace deviceops::generation
