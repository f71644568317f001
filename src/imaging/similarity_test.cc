#include "imaging/similarity.h"

#include <gtest/gtest.h>

#include <cmath>

namespace deviceops::imaging {
namespace {

PlanarImage ramp(int channels, int height, int width) {
  PlanarImage image;
  image.channels = channels;
  image.height = height;
  image.width = width;
  for (int c = 0; c < channels; ++c) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        image.data.push_back(static_cast<float>((x * 7 + y * 3 + c * 5) % 17) / 8.0f - 1.0f);
      }
    }
  }
  return image;
}

TEST(Similarity, IdenticalImagesArePerfect) {
  const PlanarImage image = ramp(3, 24, 20);
  Result<Similarity> same = compareImages(image, image);
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(std::isinf(same->psnr));
  EXPECT_DOUBLE_EQ(same->mse, 0.0);
  EXPECT_NEAR(same->ssim, 1.0, 1e-12);
}

TEST(Similarity, PsnrOfAKnownOffset) {
  // A shift of 0.2 in [-1, 1] is 0.1 on [0, 1]: MSE 0.01, PSNR 20 dB (no value clamps).
  PlanarImage original = ramp(3, 16, 16);
  for (float& value : original.data) value *= 0.5f;
  PlanarImage shifted = original;
  for (float& value : shifted.data) value += 0.2f;
  Result<Similarity> result = compareImages(original, shifted);
  ASSERT_TRUE(result.ok());
  EXPECT_NEAR(result->mse, 0.01, 1e-6);  // float inputs
  EXPECT_NEAR(result->psnr, 20.0, 1e-4);
  // A constant shift keeps the structure: SSIM below 1 only through the luminance term.
  EXPECT_LT(result->ssim, 1.0);
  EXPECT_GT(result->ssim, 0.8);
}

TEST(Similarity, SsimFallsWithNoiseAndOrdersDegradations) {
  const PlanarImage original = ramp(3, 32, 32);
  PlanarImage light = original, heavy = original;
  std::uint32_t state = 12345;
  for (std::size_t i = 0; i < original.data.size(); ++i) {
    state = state * 1664525u + 1013904223u;
    const float noise = static_cast<float>(state >> 8) / static_cast<float>(1 << 24) - 0.5f;
    light.data[i] += 0.05f * noise;
    heavy.data[i] += 2.0f * noise;
  }
  const Similarity a = *compareImages(original, light);
  const Similarity b = *compareImages(original, heavy);
  EXPECT_GT(a.ssim, b.ssim);
  EXPECT_GT(a.psnr, b.psnr);
  EXPECT_LT(b.ssim, 0.9);
}

TEST(Similarity, NanCountsAsBlackAndSmallImagesWork) {
  PlanarImage original = ramp(1, 5, 6);
  PlanarImage broken = original;
  broken.data[1] = std::nanf("");  // -0.125 shown as 0.4375, NaN as 0
  Result<Similarity> result = compareImages(original, broken);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(std::isfinite(result->psnr));
  EXPECT_TRUE(std::isfinite(result->ssim));
  EXPECT_LT(result->ssim, 1.0);
}

TEST(Similarity, RefusesMismatchedImages) {
  EXPECT_FALSE(compareImages(ramp(3, 8, 8), ramp(3, 8, 16)).ok());
  EXPECT_FALSE(compareImages(ramp(3, 8, 8), ramp(1, 8, 8)).ok());
  PlanarImage truncated = ramp(3, 8, 8);
  truncated.data.pop_back();
  Result<Similarity> refused = compareImages(ramp(3, 8, 8), truncated);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace deviceops::imaging
