// Deterministic unit Gaussian noise for the start latents and the ancestral sampler.
//
// The same seed gives the same sequence on every platform and standard library: the generator is
// xoshiro256** (Blackman and Vigna) with its 256-bit state filled by splitmix64 from the seed, and
// the Gaussians come from the Box-Muller transform in double (std::*_distribution is not used,
// because its algorithms differ between standard libraries). Each pair of uniforms u1 in (0, 1],
// u2 in [0, 1) (53 bits each) gives sqrt(-2 ln u1)*cos(2 pi u2) and then sqrt(-2 ln u1)*sin(2 pi
// u2). The only platform dependence left is the last bit of libm's log/cos/sin, which the float32
// values of fill() almost never see.
//
// The sequence is not torch's: a seed here does not reproduce an image made with torch.manual_seed.
// Not thread-safe: one GaussianNoise per thread (construction is cheap).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace deviceops::diffusion {

class GaussianNoise {
 public:
  explicit GaussianNoise(std::uint64_t seed);

  // The next unit Gaussian (mean 0, standard deviation 1).
  double next();

  // Fills `out` with the next out.size() Gaussians, each rounded to float.
  void fill(std::span<float> out);

 private:
  std::uint64_t nextBits();  // xoshiro256**
  double nextUniform();      // [0, 1), 53 bits

  std::array<std::uint64_t, 4> state_{};
  std::optional<double> spare_;  // the sine half of the last Box-Muller pair
};

}  // namespace deviceops::diffusion
