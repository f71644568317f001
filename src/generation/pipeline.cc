#include "generation/pipeline.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "common/base64.h"
#include "diffusion/noise.h"
#include "diffusion/scheduler.h"
#include "generation/suite_validation.h"
#include "generation/tensors.h"
#include "imaging/image.h"
#include "imaging/png.h"
#include "imaging/preview.h"
#include "imaging/tiled_decode.h"
#include "tensor/npy.h"

namespace deviceops::generation {
namespace {

using inference::Tensor;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

double seconds(Clock::duration duration) { return std::chrono::duration<double>(duration).count(); }

// Text conditioning of one stage: rows [uncond, cond] (1 row each), widths as the UNet takes them.
struct Conditioning {
  std::vector<float> context;  // 2 x 77 x contextWidth
  std::vector<float> pooled;   // 2 x pooledWidth
  std::int64_t contextWidth = 0, pooledWidth = 0, tokens = 77;
  nlohmann::json tokenReport = nlohmann::json::object();
};

class Pipeline {
 public:
  Pipeline(inference::ModelRegistry& registry, const SuiteLease& lease,
           const ResolvedRequest& request, const PipelineCallbacks& callbacks,
           QualityHistory& history)
      : registry_(registry),
        lease_(lease),
        suite_(*lease.definition),
        request_(request),
        callbacks_(callbacks),
        history_(history),
        batch_(request.request.batch),
        latentHeight_(request.height / 8),
        latentWidth_(request.width / 8) {}

  Result<GenerationOutcome> run();

 private:
  Status checkCancelled() const {
    if (callbacks_.cancelled && callbacks_.cancelled->load()) {
      return makeError(ErrorCode::kUnavailable, "cancelled", {{"cancelled", true}});
    }
    return Status::success();
  }

  void emit(const std::string& type, nlohmann::json data) const {
    if (callbacks_.event) callbacks_.event(type, std::move(data));
  }

  // One model call through the registry, timed into modelSeconds_[role].
  Result<std::vector<Tensor>> call(Role role, std::vector<Tensor> inputs,
                                   std::vector<std::string> outputs) {
    RETURN_IF_ERROR(checkCancelled());
    inference::InferRequest infer;
    infer.model = lease_.models.at(role);
    infer.inputs = std::move(inputs);
    infer.outputs = std::move(outputs);
    infer.control.cancelled = callbacks_.cancelled;
    const auto start = Clock::now();
    Result<inference::InferResult> result = registry_.infer(std::move(infer));
    modelSeconds_[std::string(roleName(role))] += seconds(Clock::now() - start);
    if (!result.ok()) {
      RETURN_IF_ERROR(checkCancelled());
      Error error = result.error();
      error.message = fmt::format("{}: {}", roleName(role), error.message);
      return error;
    }
    return std::move(result->outputs);
  }

  const inference::ModelMetadata& metadata(Role role) const { return *suite_.find(role)->metadata; }

  Result<Conditioning> encode(bool refiner);
  Result<std::vector<float>> encodeWith(Role role, const clip::ClipTokenizer& tokenizer,
                                        const std::string& prompt, const std::string& output,
                                        std::vector<float>* pooled, nlohmann::json& report);
  // encoder_hidden_states, text_embeds and time_ids for every row of a UNet call.
  std::vector<Tensor> conditioningTensors(Role role, const Conditioning& conditioning,
                                          const std::vector<float>& timeIds) const;
  Result<std::vector<float>> unetStep(Role role, const std::vector<Tensor>& conditioning,
                                      const std::vector<float>& x, double inputScale,
                                      double timestep);
  Status denoise(Role role, const Conditioning& conditioning, const std::vector<float>& timeIds,
                 diffusion::Sampler& sampler, int begin, int end, const std::string& stage,
                 std::vector<float>* denoised);
  Result<imaging::PlanarImage> decode(const float* latent, bool tiled, nlohmann::json& report);
  void preview(int step, const std::string& stage);
  Result<bool> decideRefinement(const std::vector<float>& denoised, nlohmann::json& decision);

  std::size_t perImage() const {
    return static_cast<std::size_t>(4) * latentHeight_ * latentWidth_;
  }
  bool guided() const { return request_.guidance > 1; }

  inference::ModelRegistry& registry_;
  const SuiteLease& lease_;
  const SuiteDefinition& suite_;
  const ResolvedRequest& request_;
  const PipelineCallbacks& callbacks_;
  QualityHistory& history_;
  const int batch_;
  const int latentHeight_, latentWidth_;

  std::vector<float> latents_;  // batch x 4 x h x w, the sampler's state
  std::vector<diffusion::GaussianNoise> noise_;
  std::map<std::string, double> modelSeconds_;
  int totalSteps_ = 0, stepsDone_ = 0;
};

Result<std::vector<float>> Pipeline::encodeWith(Role role, const clip::ClipTokenizer& tokenizer,
                                                const std::string& prompt,
                                                const std::string& output,
                                                std::vector<float>* pooled,
                                                nlohmann::json& report) {
  const clip::Encoding encoding = tokenizer.encode(prompt);
  report = {{"tokens", encoding.tokenCount}, {"truncatedTokens", encoding.truncatedTokens}};
  const inference::TensorSpec& idsSpec = metadata(role).inputs.at(0);
  Tensor ids =
      makeIdsTensor("input_ids", encoding.ids,
                    idsSpec.name == "input_ids" ? idsSpec.type : inference::DataType::kInt64);
  std::vector<std::string> outputs = {output};
  if (pooled) outputs.push_back("text_embeds");
  std::vector<Tensor> inputs;
  inputs.push_back(std::move(ids));
  ASSIGN_OR_RETURN(std::vector<Tensor> results, call(role, std::move(inputs), outputs));
  ASSIGN_OR_RETURN(std::vector<float> hidden, readFloats(results.at(0)));
  if (pooled) {
    ASSIGN_OR_RETURN(*pooled, readFloats(results.at(1)));
  }
  return hidden;
}

Result<Conditioning> Pipeline::encode(bool refiner) {
  const GenerationRequest& r = request_.request;
  const std::string prompt2 = r.prompt2.empty() ? r.prompt : r.prompt2;
  const std::string negative2 = r.negativePrompt2.empty() ? r.negativePrompt : r.negativePrompt2;
  const std::string hidden1 = contextOutputName(metadata(Role::kTextEncoder), r.clipSkip);
  const std::string hidden2 = contextOutputName(metadata(Role::kTextEncoder2), r.clipSkip);
  Conditioning out;
  struct Side {
    std::vector<float> context, pooled;
  } sides[2];  // 0 uncond, 1 cond
  const bool zeroNegative = (refiner ? suite_.settings.refinerForceZerosForEmptyPrompt
                                     : suite_.settings.forceZerosForEmptyPrompt) &&
                            r.negativePrompt.empty() && negative2.empty();
  nlohmann::json tokens = nlohmann::json::object();
  for (int side = 1; side >= 0; --side) {
    if (side == 0 && !guided()) break;
    const std::string& text1 = side == 1 ? r.prompt : r.negativePrompt;
    const std::string& text2 = side == 1 ? prompt2 : negative2;
    nlohmann::json report1, report2;
    std::vector<float> first;
    if (!refiner) {
      ASSIGN_OR_RETURN(first, encodeWith(Role::kTextEncoder, *lease_.tokenizer, text1, hidden1,
                                         nullptr, report1));
    }
    std::vector<float> pooled;
    ASSIGN_OR_RETURN(std::vector<float> second, encodeWith(Role::kTextEncoder2, *lease_.tokenizer2,
                                                           text2, hidden2, &pooled, report2));
    const std::int64_t width1 = refiner ? 0 : static_cast<std::int64_t>(first.size()) / 77;
    const std::int64_t width2 = static_cast<std::int64_t>(second.size()) / 77;
    out.contextWidth = width1 + width2;
    out.pooledWidth = static_cast<std::int64_t>(pooled.size());
    std::vector<float> context(static_cast<std::size_t>(77 * out.contextWidth));
    for (int token = 0; token < 77; ++token) {
      float* row = context.data() + token * out.contextWidth;
      if (width1 > 0) std::copy_n(first.data() + token * width1, width1, row);
      std::copy_n(second.data() + token * width2, width2, row + width1);
    }
    sides[side] = {std::move(context), std::move(pooled)};
    const char* key = side == 1 ? "prompt" : "negativePrompt";
    if (!refiner) tokens[key] = {{"tokenizer", report1}, {"tokenizer_2", report2}};
    if (side == 1 && zeroNegative && guided()) {
      sides[0].context.assign(sides[1].context.size(), 0.0f);
      sides[0].pooled.assign(sides[1].pooled.size(), 0.0f);
      break;
    }
  }
  out.tokenReport = tokens;
  if (guided()) {
    out.context = std::move(sides[0].context);
    out.context.insert(out.context.end(), sides[1].context.begin(), sides[1].context.end());
    out.pooled = std::move(sides[0].pooled);
    out.pooled.insert(out.pooled.end(), sides[1].pooled.begin(), sides[1].pooled.end());
  } else {
    out.context = std::move(sides[1].context);
    out.pooled = std::move(sides[1].pooled);
  }
  return out;
}

std::vector<Tensor> Pipeline::conditioningTensors(Role role, const Conditioning& conditioning,
                                                  const std::vector<float>& timeIds) const {
  const int copies = guided() ? 2 : 1;
  const int rows = copies * batch_;
  const inference::ModelMetadata& model = metadata(role);
  // Conditioning rows repeated per image: [uncond x batch; cond x batch].
  const std::size_t contextRow = static_cast<std::size_t>(77 * conditioning.contextWidth);
  const std::size_t pooledRow = static_cast<std::size_t>(conditioning.pooledWidth);
  const std::size_t timeRow = timeIds.size() / copies;
  std::vector<float> context, pooled, times;
  context.reserve(contextRow * rows);
  for (int copy = 0; copy < copies; ++copy) {
    for (int image = 0; image < batch_; ++image) {
      context.insert(context.end(), conditioning.context.begin() + copy * contextRow,
                     conditioning.context.begin() + (copy + 1) * contextRow);
      pooled.insert(pooled.end(), conditioning.pooled.begin() + copy * pooledRow,
                    conditioning.pooled.begin() + (copy + 1) * pooledRow);
      times.insert(times.end(), timeIds.begin() + copy * timeRow,
                   timeIds.begin() + (copy + 1) * timeRow);
    }
  }
  std::vector<Tensor> tensors;
  tensors.push_back(makeFloatTensor("encoder_hidden_states", {rows, 77, conditioning.contextWidth},
                                    context, inputType(model, "encoder_hidden_states")));
  tensors.push_back(makeFloatTensor("text_embeds", {rows, conditioning.pooledWidth}, pooled,
                                    inputType(model, "text_embeds")));
  tensors.push_back(makeFloatTensor("time_ids", {rows, static_cast<std::int64_t>(timeRow)}, times,
                                    inputType(model, "time_ids")));
  return tensors;
}

Result<std::vector<float>> Pipeline::unetStep(Role role, const std::vector<Tensor>& conditioning,
                                              const std::vector<float>& x, double inputScale,
                                              double timestep) {
  const int copies = guided() ? 2 : 1;
  const int rows = copies * batch_;
  const inference::ModelMetadata& model = metadata(role);
  std::vector<float> sample(x.size() * copies);
  for (int copy = 0; copy < copies; ++copy) {
    std::transform(x.begin(), x.end(), sample.begin() + copy * x.size(),
                   [&](float value) { return static_cast<float>(value * inputScale); });
  }
  std::vector<Tensor> inputs;
  inputs.reserve(2 + conditioning.size());
  inputs.push_back(makeFloatTensor("sample", {rows, 4, latentHeight_, latentWidth_}, sample,
                                   inputType(model, "sample")));
  inputs.push_back(makeTimestepTensor(model, timestep, rows));
  // The conditioning is the same every step: one copy of the prepared tensors per call (the
  // registry takes its inputs by value).
  inputs.insert(inputs.end(), conditioning.begin(), conditioning.end());
  ASSIGN_OR_RETURN(std::vector<Tensor> outputs, call(role, std::move(inputs), {"out_sample"}));
  ASSIGN_OR_RETURN(std::vector<float> prediction, readFloats(outputs.at(0)));
  if (prediction.size() != sample.size()) {
    return makeError(ErrorCode::kInternal,
                     fmt::format("{} returned {} values for {} inputs", roleName(role),
                                 prediction.size(), sample.size()));
  }
  if (!guided()) return prediction;
  std::vector<float> eps(x.size());
  diffusion::applyGuidance(prediction, static_cast<std::size_t>(batch_), request_.guidance,
                           request_.request.guidanceRescale, eps);
  return eps;
}

void Pipeline::preview(int step, const std::string& stage) {
  const int every = request_.request.previewEvery;
  if (every <= 0 || !callbacks_.event) return;
  if (step % every != 0 && step != totalSteps_) return;
  const int upscale = std::max(1, 64 / std::max(1, std::max(latentWidth_, latentHeight_)));
  const imaging::Rgb8Image image = imaging::latentPreview(
      std::span<const float>(latents_.data(), perImage()), 4, latentHeight_, latentWidth_, upscale);
  Result<std::string> png = imaging::encodePng(image);
  if (!png.ok()) return;
  emit("preview", {{"step", step},
                   {"stage", stage},
                   {"width", image.width},
                   {"height", image.height},
                   {"image", "data:image/png;base64," + base64Encode(*png)}});
}

Status Pipeline::denoise(Role role, const Conditioning& conditioning,
                         const std::vector<float>& timeIds, diffusion::Sampler& sampler, int begin,
                         int end, const std::string& stage, std::vector<float>* denoised) {
  const diffusion::Schedule& schedule = sampler.schedule();
  const std::vector<Tensor> prepared = conditioningTensors(role, conditioning, timeIds);
  const auto noise = [this](std::span<float> out) {
    const std::size_t size = perImage();
    for (int image = 0; image < batch_; ++image) {
      noise_[image].fill(out.subspan(image * size, size));
    }
  };
  for (int k = begin; k < end; ++k) {
    const auto start = Clock::now();
    ASSIGN_OR_RETURN(
        std::vector<float> eps,
        unetStep(role, prepared, latents_, sampler.inputScale(k), schedule.timesteps[k]));
    if (denoised && k == end - 1) {
      // The data prediction of the last step: what the stage would give with no noise left.
      const double sigma = schedule.sigmas[k];
      const bool variancePreserving = schedule.kind == diffusion::SamplerKind::kDpmpp2mKarras;
      const double alpha = variancePreserving ? 1 / std::sqrt(sigma * sigma + 1) : 1;
      const double scale = variancePreserving ? sigma * alpha : sigma;
      denoised->resize(latents_.size());
      for (std::size_t i = 0; i < latents_.size(); ++i) {
        (*denoised)[i] = static_cast<float>((latents_[i] - scale * eps[i]) / alpha);
      }
    }
    sampler.step(k, latents_, eps, noise);
    ++stepsDone_;
    emit("step", {{"step", stepsDone_},
                  {"totalSteps", totalSteps_},
                  {"stage", stage},
                  {"timestep", schedule.timesteps[k]},
                  {"sigma", schedule.sigmas[k]},
                  {"seconds", seconds(Clock::now() - start)}});
    preview(stepsDone_, stage);
  }
  return Status::success();
}

Result<imaging::PlanarImage> Pipeline::decode(const float* latent, bool tiled,
                                              nlohmann::json& report) {
  const double scaling = suite_.settings.vaeScalingFactor;
  std::vector<float> scaled(perImage());
  for (std::size_t i = 0; i < scaled.size(); ++i) {
    scaled[i] = static_cast<float>(latent[i] / scaling);
  }
  const inference::DataType type = inputType(metadata(Role::kVaeDecoder), "latent_sample");
  const imaging::TileDecoder decodeTile = [&](std::vector<float> tile, int height,
                                              int width) -> Result<imaging::PlanarImage> {
    std::vector<Tensor> inputs;
    inputs.push_back(makeFloatTensor("latent_sample", {1, 4, height, width}, tile, type));
    ASSIGN_OR_RETURN(std::vector<Tensor> outputs,
                     call(Role::kVaeDecoder, std::move(inputs), {"sample"}));
    imaging::PlanarImage image;
    image.channels = 3;
    image.height = height * 8;
    image.width = width * 8;
    ASSIGN_OR_RETURN(image.data, readFloats(outputs.at(0)));
    return image;
  };
  imaging::TilingOptions options;
  options.tileLatent = tiled ? request_.tileLatent : std::max(latentHeight_, latentWidth_);
  options.overlap = tiled ? request_.tileOverlap : 0;  // untiled: one call
  imaging::TilingReport tiling;
  ASSIGN_OR_RETURN(
      imaging::PlanarImage image,
      imaging::tiledDecode(scaled, 4, latentHeight_, latentWidth_, options, decodeTile, &tiling));
  report = {{"tiled", tiled && tiling.tiles > 1},
            {"tiles", tiling.tiles},
            {"tileLatent", tiling.tileLatent}};
  if (tiling.tiles > 1) {
    report["seamScore"] = imaging::seamScore(image, tiling.boundaryRows, tiling.boundaryColumns);
  }
  return image;
}

Result<bool> Pipeline::decideRefinement(const std::vector<float>& denoised,
                                        nlohmann::json& decision) {
  nlohmann::json decodes = nlohmann::json::array();
  imaging::QualitySignals worst;
  bool first = true;
  for (int image = 0; image < batch_; ++image) {
    nlohmann::json vae;
    ASSIGN_OR_RETURN(imaging::PlanarImage decoded,
                     decode(denoised.data() + image * perImage(), request_.tiled, vae));
    const imaging::QualitySignals signals = imaging::measureImage(decoded);
    decodes.push_back(imaging::toJson(signals));
    if (first || signals.laplacianVariance < worst.laplacianVariance) worst = signals;
    first = false;
  }
  const RefinerOptions& options = request_.request.refiner;
  const QualityHistory::Medians medians = history_.medians(lease_.suiteId);
  const imaging::LatentStatistics latents = imaging::measureLatents(denoised);
  std::vector<std::string> reasons;
  bool refine = false;
  if (latents.nanCount + latents.infCount > 0 || worst.nanCount + worst.infCount > 0) {
    reasons.push_back("the base latents hold NaN/Inf: the refiner cannot repair them");
  } else {
    const bool relative = medians.samples >= options.minHistory;
    const double sharpnessThreshold =
        relative ? options.sharpnessRatio * medians.laplacianVariance : options.minSharpness;
    const double noiseThreshold =
        relative ? options.noiseRatio * medians.noiseResidual : options.maxNoise;
    const std::string basis =
        relative ? fmt::format("the suite's median of {} base images", medians.samples)
                 : "the absolute default (too little history)";
    if (worst.laplacianVariance < sharpnessThreshold) {
      refine = true;
      reasons.push_back(fmt::format("sharpness (Laplacian variance) {:.6g} < {:.6g} from {}",
                                    worst.laplacianVariance, sharpnessThreshold, basis));
    }
    if (worst.noiseResidual > noiseThreshold) {
      refine = true;
      reasons.push_back(fmt::format("noise residual {:.6g} > {:.6g} from {}", worst.noiseResidual,
                                    noiseThreshold, basis));
    }
    if (worst.clippedFraction > options.clippedLimit) {
      refine = true;
      reasons.push_back(fmt::format("clipped fraction {:.4g} > {:.4g}", worst.clippedFraction,
                                    options.clippedLimit));
    }
    if (!refine) {
      reasons.push_back(fmt::format(
          "sharpness {:.6g} >= {:.6g} and noise residual {:.6g} <= {:.6g} ({})",
          worst.laplacianVariance, sharpnessThreshold, worst.noiseResidual, noiseThreshold, basis));
    }
    decision["thresholds"] = {{"laplacianVariance", sharpnessThreshold},
                              {"noiseResidual", noiseThreshold},
                              {"clippedFraction", options.clippedLimit},
                              {"historySamples", medians.samples}};
  }
  for (const nlohmann::json& signals : decodes) {
    imaging::QualitySignals recorded;
    recorded.laplacianVariance = signals.value("laplacianVariance", 0.0);
    recorded.noiseResidual = signals.value("noiseResidual", 0.0);
    history_.record(lease_.suiteId, recorded);
  }
  decision["refine"] = refine;
  decision["reason"] = fmt::format("{}", fmt::join(reasons, "; "));
  decision["before"] = decodes;
  decision["latents"] = {{"mean", latents.mean},
                         {"std", latents.std},
                         {"nanCount", latents.nanCount},
                         {"infCount", latents.infCount}};
  return refine;
}

Result<GenerationOutcome> Pipeline::run() {
  const auto started = Clock::now();
  const GenerationRequest& r = request_.request;
  GenerationOutcome outcome;
  nlohmann::json& report = outcome.report;

  ASSIGN_OR_RETURN(diffusion::Schedule schedule,
                   diffusion::makeSchedule(r.scheduler, request_.scheduler, request_.steps));
  ASSIGN_OR_RETURN(const int baseSteps,
                   diffusion::baseStepCount(schedule, request_.scheduler, request_.denoisingStart));
  const RefinerMode mode = request_.refinerMode;
  const int handOff = mode == RefinerMode::kNever ? request_.steps : baseSteps;
  totalSteps_ = request_.steps;

  // Start latents: per image its own generator (seed + index).
  latents_.resize(perImage() * batch_);
  for (int image = 0; image < batch_; ++image) {
    noise_.emplace_back(request_.seed + static_cast<std::uint64_t>(image));
    noise_.back().fill(std::span<float>(latents_.data() + image * perImage(), perImage()));
  }
  if (r.initialNoise) latents_ = *r.initialNoise;
  for (float& value : latents_) value = static_cast<float>(value * schedule.initNoiseSigma);

  emit("stage", {{"stage", "encode"}});
  ASSIGN_OR_RETURN(const Conditioning base, encode(/*refiner=*/false));
  const int copies = guided() ? 2 : 1;
  std::vector<float> baseTimeIds;
  for (int copy = 0; copy < copies; ++copy) {
    const float h = static_cast<float>(request_.height), w = static_cast<float>(request_.width);
    baseTimeIds.insert(baseTimeIds.end(), {h, w, 0, 0, h, w});
  }

  diffusion::Sampler sampler(schedule);
  nlohmann::json stages = nlohmann::json::array();
  const auto stageJson = [&](const std::string& name, Role role, int begin, int end) {
    std::vector<double> timesteps(schedule.timesteps.begin() + begin,
                                  schedule.timesteps.begin() + end);
    std::vector<double> sigmas(schedule.sigmas.begin() + begin, schedule.sigmas.begin() + end + 1);
    return nlohmann::json{{"stage", name},          {"model", lease_.models.at(role)},
                          {"beginStep", begin},     {"steps", end - begin},
                          {"timesteps", timesteps}, {"sigmas", sigmas}};
  };

  emit("stage", {{"stage", "base"}, {"steps", handOff}});
  std::vector<float> denoised;
  RETURN_IF_ERROR(denoise(Role::kUnet, base, baseTimeIds, sampler, 0, handOff, "base",
                          mode == RefinerMode::kAuto ? &denoised : nullptr));
  stages.push_back(stageJson("base", Role::kUnet, 0, handOff));

  bool refine = mode == RefinerMode::kAlways;
  nlohmann::json decision = {{"mode", refinerModeName(mode)}};
  if (mode == RefinerMode::kAuto && handOff < request_.steps) {
    emit("stage", {{"stage", "assess"}});
    ASSIGN_OR_RETURN(refine, decideRefinement(denoised, decision));
  } else if (mode == RefinerMode::kAlways) {
    decision["refine"] = true;
    decision["reason"] = "refiner mode always";
  } else {
    decision["refine"] = false;
    decision["reason"] = mode == RefinerMode::kNever ? "refiner mode never" : "no steps left";
  }
  if (handOff < request_.steps) {
    if (refine) {
      emit("stage", {{"stage", "refiner"}, {"steps", request_.steps - handOff}});
      ASSIGN_OR_RETURN(const Conditioning refinerConditioning, encode(/*refiner=*/true));
      std::vector<float> refinerTimeIds;
      const float h = static_cast<float>(request_.height), w = static_cast<float>(request_.width);
      if (guided()) {
        refinerTimeIds.insert(refinerTimeIds.end(),
                              {h, w, 0, 0, static_cast<float>(request_.negativeAestheticScore)});
      }
      refinerTimeIds.insert(refinerTimeIds.end(),
                            {h, w, 0, 0, static_cast<float>(request_.aestheticScore)});
      sampler.resetHistory();
      RETURN_IF_ERROR(denoise(Role::kRefinerUnet, refinerConditioning, refinerTimeIds, sampler,
                              handOff, request_.steps, "refiner", nullptr));
      stages.push_back(stageJson("refiner", Role::kRefinerUnet, handOff, request_.steps));
    } else {
      emit("stage", {{"stage", "base"}, {"steps", request_.steps - handOff}});
      RETURN_IF_ERROR(denoise(Role::kUnet, base, baseTimeIds, sampler, handOff, request_.steps,
                              "base", nullptr));
      stages.back() = stageJson("base", Role::kUnet, 0, request_.steps);
    }
  }
  decision["refinerSteps"] = refine ? request_.steps - handOff : 0;

  // Decode (or write the latents).
  emit("stage", {{"stage", "decode"}});
  nlohmann::json vaeReports = nlohmann::json::array();
  nlohmann::json after = nlohmann::json::array();
  for (int image = 0; image < batch_; ++image) {
    GeneratedImage generated;
    generated.index = image;
    generated.seed = request_.seed + static_cast<std::uint64_t>(image);
    const float* latent = latents_.data() + image * perImage();
    if (r.output == OutputFormat::kLatents) {
      Tensor tensor = makeFloatTensor("latents", {1, 4, latentHeight_, latentWidth_},
                                      std::vector<float>(latent, latent + perImage()),
                                      inference::DataType::kFp32);
      generated.bytes = inference::writeNpy(tensor);
      generated.fileName = fmt::format("{}.npy", image);
      generated.contentType = "application/octet-stream";
      outcome.images.push_back(std::move(generated));
      continue;
    }
    nlohmann::json vae;
    ASSIGN_OR_RETURN(imaging::PlanarImage decoded, decode(latent, request_.tiled, vae));
    imaging::QualitySignals signals = imaging::measureImage(decoded);
    if (signals.nanCount + signals.infCount > 0) {
      // AUTOMATIC1111's answer to NaN in an fp16 VAE: decode again another way, and say so.
      nlohmann::json retry;
      ASSIGN_OR_RETURN(imaging::PlanarImage again, decode(latent, !request_.tiled, retry));
      const imaging::QualitySignals retried = imaging::measureImage(again);
      vae["retry"] = {{"reason", fmt::format("{} NaN / {} Inf values in the decode",
                                             signals.nanCount, signals.infCount)},
                      {"tiled", retry.value("tiled", false)},
                      {"fixed", retried.nanCount + retried.infCount == 0}};
      if (retried.nanCount + retried.infCount < signals.nanCount + signals.infCount) {
        decoded = std::move(again);
        signals = retried;
      }
    }
    vaeReports.push_back(vae);
    generated.quality = imaging::toJson(signals);
    after.push_back(generated.quality);
    ASSIGN_OR_RETURN(
        generated.bytes,
        imaging::encodePng(imaging::toRgb8(decoded),
                           {{"parameters", parametersText(request_, suite_.name, generated.seed)},
                            {"Software", "deviceops"}}));
    generated.fileName = fmt::format("{}.png", image);
    generated.contentType = "image/png";
    outcome.images.push_back(std::move(generated));
  }
  decision["after"] = after;

  const double total = seconds(Clock::now() - started);
  double inModels = 0;
  for (const auto& [name, value] : modelSeconds_) inModels += value;
  report["stages"] = stages;
  report["refiner"] = decision;
  report["vae"] = vaeReports;
  report["tokens"] = base.tokenReport;
  report["modelSeconds"] = modelSeconds_;
  report["totalSeconds"] = total;
  report["pipelineSeconds"] = std::max(0.0, total - inModels);
  report["modelShare"] = total > 0 ? inModels / total : 0;
  report["seeds"] = nlohmann::json::array();
  for (const GeneratedImage& image : outcome.images) report["seeds"].push_back(image.seed);
  return outcome;
}

}  // namespace

QualityHistory::Medians QualityHistory::medians(const std::string& suiteId) const {
  std::lock_guard lock(mutex_);
  Medians out;
  const auto found = samples_.find(suiteId);
  if (found == samples_.end()) return out;
  std::vector<double> sharpness, noise;
  for (const auto& [laplacian, residual] : found->second) {
    sharpness.push_back(laplacian);
    noise.push_back(residual);
  }
  out.samples = static_cast<int>(sharpness.size());
  out.laplacianVariance = median(std::move(sharpness));
  out.noiseResidual = median(std::move(noise));
  return out;
}

void QualityHistory::record(const std::string& suiteId, const imaging::QualitySignals& signals) {
  std::lock_guard lock(mutex_);
  auto& samples = samples_[suiteId];
  samples.emplace_back(signals.laplacianVariance, signals.noiseResidual);
  while (samples.size() > kWindow) samples.pop_front();
}

std::string parametersText(const ResolvedRequest& request, const std::string& suiteName,
                           std::uint64_t seed) {
  const GenerationRequest& r = request.request;
  std::string text = r.prompt;
  if (!r.negativePrompt.empty()) text += "\nNegative prompt: " + r.negativePrompt;
  text += fmt::format(
      "\nSteps: {}, Sampler: {}, Schedule type: {}, CFG scale: {:g}, Seed: {}, Size: {}x{}, "
      "Model: {}",
      request.steps, diffusion::samplerName(r.scheduler),
      diffusion::spacingName(request.scheduler.spacing), request.guidance, seed, request.width,
      request.height, suiteName);
  if (r.guidanceRescale > 0) text += fmt::format(", CFG rescale: {:g}", r.guidanceRescale);
  if (r.clipSkip > 0) text += fmt::format(", Clip skip: {}", r.clipSkip + 1);
  if (request.refinerMode != RefinerMode::kNever) {
    text += fmt::format(", Refiner: {}, Refiner switch at: {:g}",
                        refinerModeName(request.refinerMode), request.denoisingStart);
  }
  if (request.vae != "stock") text += ", VAE: " + request.vae;
  if (request.tiled) text += fmt::format(", VAE tile: {}", request.tileLatent * 8);
  text += ", Version: deviceops";
  return text;
}

Result<GenerationOutcome> runGeneration(inference::ModelRegistry& registry, const SuiteLease& lease,
                                        const ResolvedRequest& request,
                                        const PipelineCallbacks& callbacks,
                                        QualityHistory& history) {
  Pipeline pipeline(registry, lease, request, callbacks, history);
  return pipeline.run();
}

}  // namespace deviceops::generation
