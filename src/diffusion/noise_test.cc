#include "diffusion/noise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace deviceops::diffusion {
namespace {

TEST(GaussianNoise, FixedSeedGivesFixedValues) {
  GaussianNoise noise(42);
  // Computed once, and the same from a separate Python transcription of splitmix64, xoshiro256**
  // and Box-Muller; a change here changes every seeded image.
  EXPECT_DOUBLE_EQ(noise.next(), -0.303263064678738);
  EXPECT_DOUBLE_EQ(noise.next(), 0.28846173882942383);
  EXPECT_DOUBLE_EQ(noise.next(), 1.3438117634372806);
  EXPECT_DOUBLE_EQ(noise.next(), -0.6879751798977497);
}

TEST(GaussianNoise, FillMatchesNextRoundedToFloat) {
  GaussianNoise byValue(7), byFill(7);
  std::vector<float> filled(9);
  byFill.fill(filled);
  for (float value : filled) EXPECT_EQ(value, static_cast<float>(byValue.next()));
}

TEST(GaussianNoise, MeanZeroStandardDeviationOne) {
  GaussianNoise noise(123456789);
  constexpr int kCount = 1'000'000;
  double sum = 0, squares = 0;
  for (int i = 0; i < kCount; ++i) {
    const double value = noise.next();
    ASSERT_TRUE(std::isfinite(value));
    sum += value;
    squares += value * value;
  }
  const double mean = sum / kCount;
  const double deviation = std::sqrt(squares / kCount - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(deviation, 1.0, 0.01);
}

TEST(GaussianNoise, SeedsDifferAndRepeat) {
  std::vector<float> a(64), b(64), c(64);
  GaussianNoise(1).fill(a);
  GaussianNoise(2).fill(b);
  GaussianNoise(1).fill(c);
  EXPECT_EQ(a, c);
  int equal = 0;
  for (std::size_t i = 0; i < a.size(); ++i) equal += a[i] == b[i];
  EXPECT_EQ(equal, 0);
  std::vector<float> zero(64);
  GaussianNoise(0).fill(zero);  // seed 0 is a valid seed, not a degenerate state
  EXPECT_NE(zero, std::vector<float>(64, 0.0F));
}

}  // namespace
}  // namespace deviceops::diffusion
