// The SDXL pipeline: prompts -> both text encoders -> the base UNet (and the refiner) under a
// sampler with classifier-free guidance -> the VAE decoder -> PNG (or the latents as .npy).
// Every model call goes through the inference registry (ModelRegistry::infer) on the models the
// SuiteLease holds, so the ledger, placement and statistics are the registry's.
//
// Semantics follow diffusers' StableDiffusionXLPipeline / Img2ImgPipeline (docs/GENERATION.md):
// - context = concat(text_encoder hidden_states.{L-1-clipSkip}, text_encoder_2 ...); pooled =
//   text_encoder_2 text_embeds; time_ids [h, w, 0, 0, h, w] (refiner: [h, w, 0, 0, aesthetic]).
// - An empty negative prompt gives zero embeddings when the suite says so (base:
//   force_zeros_for_empty_prompt), else "" is encoded (the refiner).
// - CFG runs one batch [uncond; cond] when guidance > 1; guidance <= 1 runs cond only.
// - Image i starts from unit Gaussian noise of GaussianNoise(seed + i) (its ancestral noise too),
//   so an image does not depend on the batch it was made in.
// - Refiner hand-off at denoisingStart: the base runs the steps with t >= cutoff, the refiner
//   the rest of the same schedule, no re-noising, sampler history reset.
// - auto: after the base steps the denoised estimate is decoded and measured; the refiner runs
//   when the signals say so (RefinerOptions), otherwise the base finishes the schedule.
// - Decode: latents / scaling factor, one image at a time (slicing) or the batch, tiled as
//   diffusers' tiled_decode; a NaN/Inf decode is retried tiled and reported.
//
// Thread-safety: one GenerationPipeline per job; QualityHistory is shared and locked.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "generation/request.h"
#include "generation/suite_manager.h"
#include "imaging/quality.h"
#include "inference/registry.h"

namespace deviceops::generation {

// Running statistics of base-stage quality signals per suite (auto refinement thresholds).
class QualityHistory {
 public:
  struct Medians {
    int samples = 0;
    double laplacianVariance = 0, noiseResidual = 0;
  };
  Medians medians(const std::string& suiteId) const;
  void record(const std::string& suiteId, const imaging::QualitySignals& signals);

 private:
  static constexpr std::size_t kWindow = 50;
  mutable std::mutex mutex_;
  std::map<std::string, std::deque<std::pair<double, double>>> samples_;  // guarded by mutex_
};

struct GeneratedImage {
  int index = 0;
  std::uint64_t seed = 0;
  std::string fileName;  // "0.png" or "0.npy"
  std::string bytes;     // the file's bytes
  std::string contentType;
  nlohmann::json quality = nlohmann::json::object();  // signals of the final image
};

struct GenerationOutcome {
  std::vector<GeneratedImage> images;
  nlohmann::json report = nlohmann::json::object();  // stages, timings, refiner decision, vae
};

struct PipelineCallbacks {
  // type: "stage" | "step" | "preview"; data: the event's JSON.
  std::function<void(const std::string& type, nlohmann::json data)> event;
  std::shared_ptr<std::atomic<bool>> cancelled;  // checked between model calls
};

// Runs one generation. kUnavailable ("cancelled") when cancelled; model errors propagate.
Result<GenerationOutcome> runGeneration(inference::ModelRegistry& registry, const SuiteLease& lease,
                                        const ResolvedRequest& request,
                                        const PipelineCallbacks& callbacks,
                                        QualityHistory& history);

// The A1111-style "parameters" text written into each PNG.
std::string parametersText(const ResolvedRequest& request, const std::string& suiteName,
                           std::uint64_t seed);

}  // namespace deviceops::generation
