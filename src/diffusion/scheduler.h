// The samplers of the SDXL pipeline: the noise schedule (timesteps and sigmas) and the update
// rule of Euler, Euler ancestral and DPM++ 2M Karras, as diffusers' EulerDiscreteScheduler,
// EulerAncestralDiscreteScheduler and DPMSolverMultistepScheduler (algorithm dpmsolver++, order 2,
// midpoint, lower_order_final, use_karras_sigmas, final_sigmas_type zero) compute them for an
// epsilon-predicting model. The formulas are restated in scheduler.cc and sampler.cc, and
// tests/models/scheduler_reference.py is an independent numpy version the tests compare with.
//
// Pure arithmetic: no ONNX Runtime, no threads. Every function here is thread-safe; a Sampler is
// not (one Sampler per generation, used by one thread at a time).
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace deviceops::diffusion {

enum class SamplerKind { kEuler, kEulerAncestral, kDpmpp2mKarras };

// "euler", "euler_ancestral", "dpmpp_2m_karras".
std::string_view samplerName(SamplerKind kind);
// The names above, and "euler_a" for kEulerAncestral; nullopt for anything else (case-sensitive).
std::optional<SamplerKind> parseSampler(std::string_view name);

// How Euler kinds place N timesteps on the training range (diffusers `timestep_spacing`).
enum class TimestepSpacing { kLeading, kTrailing, kLinspace };

// "leading", "trailing", "linspace".
std::string_view spacingName(TimestepSpacing spacing);
std::optional<TimestepSpacing> parseSpacing(std::string_view name);

// The training noise schedule and spacing: diffusers' scheduler_config.json. The defaults are
// SDXL's (base and refiner ship the same values).
struct SchedulerConfig {
  double betaStart = 0.00085;
  double betaEnd = 0.012;
  std::string betaSchedule = "scaled_linear";  // or "linear"
  int trainTimesteps = 1000;
  TimestepSpacing spacing = TimestepSpacing::kLeading;
  int stepsOffset = 1;
  std::string predictionType = "epsilon";  // the only supported prediction
};

// Reads the JSON object of a scheduler_config.json: keys beta_start, beta_end (numbers),
// beta_schedule (string), num_train_timesteps (integer), timestep_spacing (string),
// steps_offset (integer), prediction_type (string). A missing key keeps the default above;
// unknown keys (_class_name, use_karras_sigmas, ...) are ignored.
// Errors: kInvalidArgument when `object` is not an object, a key has the wrong type (the message
// names the key), or a value is unsupported: beta_schedule other than linear/scaled_linear,
// 0 < beta_start < beta_end < 1 violated, num_train_timesteps < 2, steps_offset < 0, an unknown
// timestep_spacing, or a prediction_type other than "epsilon" (v_prediction is not supported).
Result<SchedulerConfig> parseSchedulerConfig(const nlohmann::json& object);

// The N inference steps of one sampler.
struct Schedule {
  SamplerKind kind = SamplerKind::kEuler;
  // N timesteps passed to the UNet (as a float), descending. Values are float32-representable.
  std::vector<double> timesteps;
  // N+1 noise levels (variance-exploding sigma), descending; the last is 0. Float32-representable
  // as in diffusers.
  std::vector<double> sigmas;
  // The start latents are unit Gaussian noise times this: sigma_0 for trailing and linspace,
  // sqrt(sigma_0^2+1) for leading, 1 for DPM++ (its state lives in variance-preserving space).
  double initNoiseSigma = 1;
};

// The schedule of `steps` inference steps. Training sigmas are computed as diffusers does (betas,
// alphas and their cumulative product in float32). Euler kinds: timesteps by config.spacing (with
// config.stepsOffset for leading), sigma interpolated linearly in t on the training sigmas.
// DPM++ 2M Karras: Karras sigmas (rho 7) between the training extremes, timesteps converted back
// from sigma by interpolating log sigma and rounding; config.spacing is not used.
// Errors: kInvalidArgument when steps is outside [1, config.trainTimesteps] or the config is
// invalid (same rules as parseSchedulerConfig).
Result<Schedule> makeSchedule(SamplerKind kind, const SchedulerConfig& config, int steps);

// Base/refiner hand-off (diffusers denoising_end / denoising_start): cutoff =
// int(round(T - denoisingStart*T)) with T = config.trainTimesteps and round half to even; the
// base runs the steps with timestep >= cutoff and the refiner the rest, starting at that index.
// Returns the base's step count, 0..N.
// Errors: kInvalidArgument when denoisingStart is not inside (0, 1) (NaN included).
Result<int> baseStepCount(const Schedule& schedule, const SchedulerConfig& config,
                          double denoisingStart);

// Steps one latent state along a Schedule. The state is float32; the update is computed in
// double per element and rounded once.
//
// Use for steps k = begin .. end-1:
//   unetInput = x * inputScale(k); eps = unet(unetInput, schedule().timesteps[k]);
//   sampler.step(k, x, eps, noise);
// Not thread-safe: one thread drives one Sampler.
class Sampler {
 public:
  explicit Sampler(Schedule schedule);

  const Schedule& schedule() const { return schedule_; }

  // Factor the UNet input is multiplied by at step k: 1/sqrt(sigma_k^2+1) for the Euler kinds,
  // 1 for DPM++. Precondition: 0 <= k < N.
  double inputScale(int k) const;

  // x <- the state after step k, given the model's epsilon prediction `eps` for x at step k.
  // `noise` fills its argument with unit Gaussians; only kEulerAncestral calls it, once per step,
  // with a span of x.size() floats owned by the Sampler.
  // Preconditions (a violation aborts the process: it is a programming error):
  // 0 <= k < N; eps.size() == x.size(); for DPM++, x.size() stays the same between steps; k is
  // the previous call's k + 1, unless this is the first call or resetHistory() came in between
  // (so a stage may begin at any index, e.g. the refiner at the base's step count).
  void step(int k, std::span<float> x, std::span<const float> eps,
            const std::function<void(std::span<float>)>& noise);

  // Forgets the DPM++ history (the previous data prediction); call before a new stage (the
  // refiner) so that its first step is first order, as diffusers' set_timesteps does.
  void resetHistory();

 private:
  void stepEuler(int k, std::span<float> x, std::span<const float> eps) const;
  void stepEulerAncestral(int k, std::span<float> x, std::span<const float> eps,
                          const std::function<void(std::span<float>)>& noise);
  void stepDpmpp2m(int k, std::span<float> x, std::span<const float> eps);

  Schedule schedule_;
  std::optional<int> lastStep_;             // k of the previous step() since the last reset
  std::vector<double> previousPrediction_;  // DPM++: D_{k-1}, the data prediction of lastStep_
  std::vector<float> noiseBuffer_;          // Euler ancestral: filled by `noise` each step
};

// Classifier-free guidance over a batch laid out [uncond rows; cond rows].
// `prediction` holds 2*rows*perRow floats (the first rows*perRow are unconditional); `out` gets
// the rows*perRow guided values u + guidance*(c - u). With rescale phi != 0 (diffusers
// guidance_rescale), each row is then rescaled: with sigma_c and sigma_g the standard deviations
// of the conditional and of the guided row over its perRow values,
// out = phi*out*sigma_c/sigma_g + (1-phi)*out; a row with sigma_g == 0 is left unrescaled.
// Preconditions (abort on violation): rows > 0, out.size() % rows == 0,
// prediction.size() == 2*out.size(); `out` does not overlap `prediction`.
void applyGuidance(std::span<const float> prediction, std::size_t rows, double guidance,
                   double rescale, std::span<float> out);

}  // namespace deviceops::diffusion
