#include "diffusion/noise.h"

#include <cmath>
#include <numbers>

namespace deviceops::diffusion {
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  state += 0x9E3779B97F4A7C15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::uint64_t rotateLeft(std::uint64_t value, int bits) {
  return (value << bits) | (value >> (64 - bits));
}

}  // namespace

GaussianNoise::GaussianNoise(std::uint64_t seed) {
  // splitmix64 never yields four zero words, so the xoshiro state is valid for every seed.
  for (std::uint64_t& word : state_) word = splitmix64(seed);
}

std::uint64_t GaussianNoise::nextBits() {
  const std::uint64_t result = rotateLeft(state_[1] * 5, 7) * 9;
  const std::uint64_t shifted = state_[1] << 17;
  state_[2] ^= state_[0];
  state_[3] ^= state_[1];
  state_[1] ^= state_[2];
  state_[0] ^= state_[3];
  state_[2] ^= shifted;
  state_[3] = rotateLeft(state_[3], 45);
  return result;
}

double GaussianNoise::nextUniform() { return static_cast<double>(nextBits() >> 11) * 0x1.0p-53; }

double GaussianNoise::next() {
  if (spare_) {
    const double value = *spare_;
    spare_.reset();
    return value;
  }
  const double u1 = 1.0 - nextUniform();  // (0, 1]: the logarithm stays finite
  const double u2 = nextUniform();
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  spare_ = radius * std::sin(angle);
  return radius * std::cos(angle);
}

void GaussianNoise::fill(std::span<float> out) {
  for (float& value : out) value = static_cast<float>(next());
}

}  // namespace deviceops::diffusion
