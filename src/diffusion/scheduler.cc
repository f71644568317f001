// Noise schedules: the scheduler config, the training sigmas, the inference timesteps and sigmas.
//
// Training schedule (diffusers, float32): beta_i = linspace(sqrt(b0), sqrt(b1), T)_i^2 for
// scaled_linear (linspace(b0, b1, T)_i for linear), alphaBar = cumprod(1 - beta),
// sigma_i = sqrt((1 - alphaBar_i) / alphaBar_i). diffusers builds the linspace in float32 with
// torch and torch accumulates cumprod in double, rounding each product to float32; we take the
// linspace in double rounded to float32 (within 4e-7 of torch's sigmas) and the same cumprod.
//
// Euler kinds: leading t_k = (N-1-k)*floor(T/N) + offset; trailing t_k = round(T - k*T/N) - 1;
// linspace t = linspace(0, T-1, N) reversed. sigma_k = interp(t_k, 0..T-1, sigma_train),
// sigma_N = 0, all rounded to float32. init = sigma_0, or sqrt(sigma_0^2+1) for leading.
// DPM++ 2M Karras: sigma_k = (smax^(1/7) + k/(N-1)*(smin^(1/7) - smax^(1/7)))^7 with the training
// extremes; t_k = round(sigmaToT(sigma_k)), where sigmaToT interpolates log sigma_train linearly;
// sigma_N = 0; init 1.
#include "diffusion/scheduler.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>

namespace deviceops::diffusion {
namespace {

constexpr std::array<std::pair<SamplerKind, std::string_view>, 3> kSamplerNames{{
    {SamplerKind::kEuler, "euler"},
    {SamplerKind::kEulerAncestral, "euler_ancestral"},
    {SamplerKind::kDpmpp2mKarras, "dpmpp_2m_karras"},
}};

constexpr std::array<std::pair<TimestepSpacing, std::string_view>, 3> kSpacingNames{{
    {TimestepSpacing::kLeading, "leading"},
    {TimestepSpacing::kTrailing, "trailing"},
    {TimestepSpacing::kLinspace, "linspace"},
}};

constexpr double kKarrasRho = 7.0;

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}

Status validateConfig(const SchedulerConfig& config) {
  if (config.betaSchedule != "scaled_linear" && config.betaSchedule != "linear")
    return invalid(
        "scheduler config: beta_schedule must be \"scaled_linear\" or \"linear\", not \"" +
        config.betaSchedule + "\"");
  if (!(config.betaStart > 0 && config.betaStart < config.betaEnd && config.betaEnd < 1))
    return invalid("scheduler config: need 0 < beta_start < beta_end < 1");
  if (config.trainTimesteps < 2)
    return invalid("scheduler config: num_train_timesteps must be at least 2");
  if (config.stepsOffset < 0) return invalid("scheduler config: steps_offset must be >= 0");
  if (config.predictionType != "epsilon")
    return invalid("scheduler config: prediction_type \"" + config.predictionType +
                   "\" is not supported (only \"epsilon\")");
  return Status::success();
}

// Reads `key` of `object` into `target` when present; `accepts` checks the JSON type.
template <class T, class Accepts>
Status readKey(const nlohmann::json& object, const char* key, const char* typeName, Accepts accepts,
               T& target) {
  auto found = object.find(key);
  if (found == object.end()) return Status::success();
  if (!accepts(*found))
    return invalid(std::string("scheduler config: \"") + key + "\" must be " + typeName);
  if constexpr (std::is_same_v<T, int>) {
    auto value = found->template get<std::int64_t>();
    if (value < -1'000'000'000 || value > 1'000'000'000)
      return invalid(std::string("scheduler config: \"") + key + "\" is out of range");
    target = static_cast<int>(value);
  } else {
    target = found->template get<T>();
  }
  return Status::success();
}

bool isNumber(const nlohmann::json& value) { return value.is_number(); }
bool isInteger(const nlohmann::json& value) { return value.is_number_integer(); }
bool isString(const nlohmann::json& value) { return value.is_string(); }

float toFloat(double value) { return static_cast<float>(value); }

// sigma_i of the training schedule, i = 0..T-1 (ascending), float32 as diffusers.
std::vector<float> trainingSigmas(const SchedulerConfig& config) {
  const int count = config.trainTimesteps;
  const bool scaled = config.betaSchedule == "scaled_linear";
  const double first = scaled ? std::sqrt(config.betaStart) : config.betaStart;
  const double last = scaled ? std::sqrt(config.betaEnd) : config.betaEnd;
  std::vector<float> sigmas(static_cast<std::size_t>(count));
  double alphaBar = 1.0;  // accumulated in double, as torch's CPU cumprod does
  for (int i = 0; i < count; ++i) {
    const float root = toFloat(first + (last - first) * i / (count - 1));
    const float beta = scaled ? root * root : root;
    alphaBar *= static_cast<double>(1.0F - beta);
    const float alphaBarFloat = toFloat(alphaBar);
    sigmas[static_cast<std::size_t>(i)] = std::sqrt((1.0F - alphaBarFloat) / alphaBarFloat);
  }
  return sigmas;
}

// np.interp(t, 0..T-1, sigmas): linear, clamped at both ends.
double interpolateSigma(const std::vector<float>& sigmas, double t) {
  const double lastIndex = static_cast<double>(sigmas.size() - 1);
  if (t <= 0) return sigmas.front();
  if (t >= lastIndex) return sigmas.back();
  const auto low = static_cast<std::size_t>(std::floor(t));
  const double weight = t - static_cast<double>(low);
  if (weight == 0) return sigmas[low];
  return sigmas[low] + weight * (static_cast<double>(sigmas[low + 1]) - sigmas[low]);
}

// diffusers' _sigma_to_t: a fractional training timestep whose log sigma interpolates `sigma`.
double sigmaToTimestep(const std::vector<double>& logSigmas, double sigma) {
  const double logSigma = std::log(std::max(sigma, 1e-10));
  // low: the last index with logSigmas[low] <= logSigma (0 when there is none), at most T-2.
  std::size_t low = 0;
  for (std::size_t i = 0; i < logSigmas.size(); ++i)
    if (logSigmas[i] <= logSigma) low = i;
  low = std::min(low, logSigmas.size() - 2);
  const double weight =
      std::clamp((logSigmas[low] - logSigma) / (logSigmas[low] - logSigmas[low + 1]), 0.0, 1.0);
  return (1 - weight) * static_cast<double>(low) + weight * static_cast<double>(low + 1);
}

std::vector<double> eulerTimesteps(const SchedulerConfig& config, int steps) {
  const int count = config.trainTimesteps;
  std::vector<double> timesteps(static_cast<std::size_t>(steps));
  for (int k = 0; k < steps; ++k) {
    double t = 0;
    switch (config.spacing) {
      case TimestepSpacing::kLeading:
        t = static_cast<double>((steps - 1 - k) * (count / steps) + config.stepsOffset);
        break;
      case TimestepSpacing::kTrailing:
        t = std::nearbyint(count - k * (static_cast<double>(count) / steps)) - 1;
        break;
      case TimestepSpacing::kLinspace:
        // As numpy: i * step, and the last value exactly T-1.
        if (k == 0 && steps > 1) {
          t = count - 1;
        } else if (steps > 1) {
          t = (steps - 1 - k) * (static_cast<double>(count - 1) / (steps - 1));
        }
        break;
    }
    timesteps[static_cast<std::size_t>(k)] = toFloat(t);
  }
  return timesteps;
}

Schedule eulerSchedule(SamplerKind kind, const SchedulerConfig& config, int steps) {
  const std::vector<float> training = trainingSigmas(config);
  Schedule schedule;
  schedule.kind = kind;
  schedule.timesteps = eulerTimesteps(config, steps);
  for (double t : schedule.timesteps)
    schedule.sigmas.push_back(toFloat(interpolateSigma(training, t)));
  schedule.sigmas.push_back(0.0);
  const double sigmaMax = schedule.sigmas.front();
  schedule.initNoiseSigma = config.spacing == TimestepSpacing::kLeading
                                ? toFloat(std::sqrt(sigmaMax * sigmaMax + 1))
                                : sigmaMax;
  return schedule;
}

Schedule karrasSchedule(const SchedulerConfig& config, int steps) {
  const std::vector<float> training = trainingSigmas(config);
  std::vector<double> logSigmas;
  logSigmas.reserve(training.size());
  for (float sigma : training) logSigmas.push_back(std::log(sigma));  // float32, as np.log
  const double minRoot = std::pow(static_cast<double>(training.front()), 1 / kKarrasRho);
  const double maxRoot = std::pow(static_cast<double>(training.back()), 1 / kKarrasRho);

  Schedule schedule;
  schedule.kind = SamplerKind::kDpmpp2mKarras;
  for (int k = 0; k < steps; ++k) {
    const double ramp = steps == 1 ? 0.0 : static_cast<double>(k) / (steps - 1);
    const double sigma = std::pow(maxRoot + ramp * (minRoot - maxRoot), kKarrasRho);
    schedule.timesteps.push_back(std::nearbyint(sigmaToTimestep(logSigmas, sigma)));
    schedule.sigmas.push_back(toFloat(sigma));
  }
  schedule.sigmas.push_back(0.0);
  schedule.initNoiseSigma = 1.0;
  return schedule;
}

}  // namespace

std::string_view samplerName(SamplerKind kind) {
  for (const auto& [candidate, name] : kSamplerNames)
    if (candidate == kind) return name;
  return "unknown";
}

std::optional<SamplerKind> parseSampler(std::string_view name) {
  if (name == "euler_a") return SamplerKind::kEulerAncestral;
  for (const auto& [kind, candidate] : kSamplerNames)
    if (candidate == name) return kind;
  return std::nullopt;
}

std::string_view spacingName(TimestepSpacing spacing) {
  for (const auto& [candidate, name] : kSpacingNames)
    if (candidate == spacing) return name;
  return "unknown";
}

std::optional<TimestepSpacing> parseSpacing(std::string_view name) {
  for (const auto& [spacing, candidate] : kSpacingNames)
    if (candidate == name) return spacing;
  return std::nullopt;
}

Result<SchedulerConfig> parseSchedulerConfig(const nlohmann::json& object) {
  if (!object.is_object()) return invalid("scheduler config must be a JSON object");
  SchedulerConfig config;
  RETURN_IF_ERROR(readKey(object, "beta_start", "a number", isNumber, config.betaStart));
  RETURN_IF_ERROR(readKey(object, "beta_end", "a number", isNumber, config.betaEnd));
  RETURN_IF_ERROR(readKey(object, "beta_schedule", "a string", isString, config.betaSchedule));
  RETURN_IF_ERROR(
      readKey(object, "num_train_timesteps", "an integer", isInteger, config.trainTimesteps));
  RETURN_IF_ERROR(readKey(object, "steps_offset", "an integer", isInteger, config.stepsOffset));
  RETURN_IF_ERROR(readKey(object, "prediction_type", "a string", isString, config.predictionType));
  std::string spacing(spacingName(config.spacing));
  RETURN_IF_ERROR(readKey(object, "timestep_spacing", "a string", isString, spacing));
  std::optional<TimestepSpacing> parsed = parseSpacing(spacing);
  if (!parsed)
    return invalid("scheduler config: timestep_spacing \"" + spacing +
                   "\" is not one of leading, trailing, linspace");
  config.spacing = *parsed;
  RETURN_IF_ERROR(validateConfig(config));
  return config;
}

Result<Schedule> makeSchedule(SamplerKind kind, const SchedulerConfig& config, int steps) {
  RETURN_IF_ERROR(validateConfig(config));
  if (steps < 1 || steps > config.trainTimesteps)
    return invalid("steps must be in [1, " + std::to_string(config.trainTimesteps) + "], not " +
                   std::to_string(steps));
  if (kind == SamplerKind::kDpmpp2mKarras) return karrasSchedule(config, steps);
  return eulerSchedule(kind, config, steps);
}

Result<int> baseStepCount(const Schedule& schedule, const SchedulerConfig& config,
                          double denoisingStart) {
  if (!(denoisingStart > 0 && denoisingStart < 1))
    return invalid("denoising start must be strictly between 0 and 1");
  const double total = config.trainTimesteps;
  const double cutoff = std::nearbyint(total - denoisingStart * total);  // half to even
  return static_cast<int>(std::count_if(schedule.timesteps.begin(), schedule.timesteps.end(),
                                        [cutoff](double t) { return t >= cutoff; }));
}

}  // namespace deviceops::diffusion
