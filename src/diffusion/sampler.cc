// The update rules, with sigma = sigma_k, next = sigma_{k+1}, eps the model's prediction:
//
// Euler: x <- x + eps*(next - sigma) (the derivative (x - x0)/sigma with x0 = x - sigma*eps).
// Euler ancestral: up = sqrt(next^2*(sigma^2 - next^2)/sigma^2), down = sqrt(next^2 - up^2);
//   x <- x + eps*(down - sigma) + up*n with n unit Gaussian noise.
// DPM++ 2M (state in variance-preserving space): alpha = 1/sqrt(sigma^2+1), s = sigma*alpha,
//   lambda = -ln sigma, D_k = (x - s_k*eps)/alpha_k, h = lambda_{k+1} - lambda_k;
//   first order: x <- (s_{k+1}/s_k)*x - alpha_{k+1}*(e^-h - 1)*D_k;
//   second order (midpoint, r = (lambda_k - lambda_{k-1})/h): the same minus
//   0.5*alpha_{k+1}*(e^-h - 1)*(D_k - D_{k-1})/r.
//   The first step of a stage is first order, and so is the last (next = 0), where x <- D_k.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "diffusion/scheduler.h"

namespace deviceops::diffusion {
namespace {

// A violated precondition is a bug in the caller: say which and stop.
void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "deviceops::diffusion precondition violated: %s\n", what);
  std::abort();
}

}  // namespace

Sampler::Sampler(Schedule schedule) : schedule_(std::move(schedule)) {}

double Sampler::inputScale(int k) const {
  require(k >= 0 && static_cast<std::size_t>(k) < schedule_.timesteps.size(),
          "inputScale: step index out of range");
  if (schedule_.kind == SamplerKind::kDpmpp2mKarras) return 1.0;
  const double sigma = schedule_.sigmas[static_cast<std::size_t>(k)];
  return 1.0 / std::sqrt(sigma * sigma + 1.0);
}

void Sampler::resetHistory() {
  lastStep_.reset();
  previousPrediction_.clear();
}

void Sampler::step(int k, std::span<float> x, std::span<const float> eps,
                   const std::function<void(std::span<float>)>& noise) {
  require(k >= 0 && static_cast<std::size_t>(k) < schedule_.timesteps.size(),
          "step: step index out of range");
  require(eps.size() == x.size(), "step: eps and x differ in size");
  require(!lastStep_ || *lastStep_ + 1 == k,
          "step: steps must advance by one (call resetHistory() to begin a new stage)");
  switch (schedule_.kind) {
    case SamplerKind::kEuler:
      stepEuler(k, x, eps);
      break;
    case SamplerKind::kEulerAncestral:
      stepEulerAncestral(k, x, eps, noise);
      break;
    case SamplerKind::kDpmpp2mKarras:
      stepDpmpp2m(k, x, eps);
      break;
  }
  lastStep_ = k;
}

void Sampler::stepEuler(int k, std::span<float> x, std::span<const float> eps) const {
  const double sigma = schedule_.sigmas[static_cast<std::size_t>(k)];
  const double next = schedule_.sigmas[static_cast<std::size_t>(k) + 1];
  const double dt = next - sigma;
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(x[i] + static_cast<double>(eps[i]) * dt);
}

void Sampler::stepEulerAncestral(int k, std::span<float> x, std::span<const float> eps,
                                 const std::function<void(std::span<float>)>& noise) {
  require(static_cast<bool>(noise), "step: euler_ancestral needs a noise source");
  const double sigma = schedule_.sigmas[static_cast<std::size_t>(k)];
  const double next = schedule_.sigmas[static_cast<std::size_t>(k) + 1];
  const double up = std::sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma));
  const double down = std::sqrt(next * next - up * up);
  noiseBuffer_.assign(x.size(), 0.0F);
  noise(noiseBuffer_);
  const double dt = down - sigma;
  for (std::size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(x[i] + static_cast<double>(eps[i]) * dt + up * noiseBuffer_[i]);
}

void Sampler::stepDpmpp2m(int k, std::span<float> x, std::span<const float> eps) {
  const auto index = static_cast<std::size_t>(k);
  const double sigma = schedule_.sigmas[index];
  const double next = schedule_.sigmas[index + 1];
  const double alpha = 1.0 / std::sqrt(sigma * sigma + 1.0);
  const double scaledSigma = sigma * alpha;
  const bool secondOrder = lastStep_.has_value() && next > 0;
  require(!lastStep_ || previousPrediction_.size() == x.size(),
          "step: the state changed size between DPM++ steps");

  // Coefficients of x <- a*x + b*D + c*(D - Dprev).
  double keep = 0, dataWeight = 1, differenceWeight = 0;
  if (next > 0) {
    const double nextAlpha = 1.0 / std::sqrt(next * next + 1.0);
    const double nextScaledSigma = next * nextAlpha;
    const double h = std::log(sigma) - std::log(next);  // lambda_{k+1} - lambda_k
    const double expm = std::exp(-h) - 1.0;
    keep = nextScaledSigma / scaledSigma;
    dataWeight = -nextAlpha * expm;
    if (secondOrder) {
      const double previousSigma = schedule_.sigmas[static_cast<std::size_t>(*lastStep_)];
      const double r = (std::log(previousSigma) - std::log(sigma)) / h;
      differenceWeight = -0.5 * nextAlpha * expm / r;
    }
  }
  previousPrediction_.resize(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double data = (x[i] - scaledSigma * static_cast<double>(eps[i])) / alpha;
    double updated = keep * x[i] + dataWeight * data;
    if (secondOrder) updated += differenceWeight * (data - previousPrediction_[i]);
    previousPrediction_[i] = data;
    x[i] = static_cast<float>(updated);
  }
}

void applyGuidance(std::span<const float> prediction, std::size_t rows, double guidance,
                   double rescale, std::span<float> out) {
  require(rows > 0 && out.size() % rows == 0,
          "applyGuidance: rows must be > 0 and divide out.size()");
  require(prediction.size() == 2 * out.size(), "applyGuidance: prediction must be 2*out");
  const std::size_t perRow = out.size() / rows;
  const std::span<const float> unconditional = prediction.first(out.size());
  const std::span<const float> conditional = prediction.subspan(out.size());
  for (std::size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<float>(
        unconditional[i] + guidance * (static_cast<double>(conditional[i]) - unconditional[i]));
  if (rescale == 0 || perRow == 0) return;

  // Population standard deviation; the rescale uses only a ratio of two, so the n or n-1
  // normalisation (torch's default) cancels.
  auto deviation = [perRow](std::span<const float> row) {
    double mean = 0;
    for (float value : row) mean += value;
    mean /= static_cast<double>(perRow);
    double squares = 0;
    for (float value : row) squares += (value - mean) * (value - mean);
    return std::sqrt(squares / static_cast<double>(perRow));
  };
  for (std::size_t row = 0; row < rows; ++row) {
    const std::span<float> guided = out.subspan(row * perRow, perRow);
    const double sigmaConditional = deviation(conditional.subspan(row * perRow, perRow));
    const double sigmaGuided = deviation(guided);
    if (sigmaGuided == 0) continue;
    const double factor = rescale * sigmaConditional / sigmaGuided + (1 - rescale);
    for (float& value : guided) value = static_cast<float>(value * factor);
  }
}

}  // namespace deviceops::diffusion
