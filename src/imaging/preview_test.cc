#include "imaging/preview.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace deviceops::imaging {
namespace {

// Hand-computed from ComfyUI's SDXL factors: rgb = z . factors + bias; byte =
// trunc(clamp((rgb + 1) / 2, 0, 1) * 255).
TEST(LatentPreview, KnownPixels) {
  // 1x3 latent: pixel 0 all zero (bias only), pixel 1 channel 0 = 1, pixel 2 saturating.
  std::vector<float> latents(4 * 3, 0.0f);
  latents[0 * 3 + 1] = 1.0f;
  latents[0 * 3 + 2] = 10.0f;  // R +3.651, G +4.232, B +4.341: all clamp to 255
  const Rgb8Image image = latentPreview(latents, 4, 1, 3);
  ASSERT_EQ(image.width, 3);
  ASSERT_EQ(image.height, 1);
  EXPECT_EQ(image.pixels,
            (std::vector<std::uint8_t>{141, 125, 127,  // (0.1084, -0.0175, -0.0011 + 1) / 2 * 255
                                       187, 179, 182,  // (0.4735, 0.4057, 0.4330 + 1) / 2 * 255
                                       255, 255, 255}));
  std::vector<float> negative(4, 0.0f);
  negative[3] = 10.0f;  // channel 3 has only negative factors
  EXPECT_EQ(latentPreview(negative, 4, 1, 1).pixels, (std::vector<std::uint8_t>{0, 0, 0}));
  std::vector<float> broken(4, std::nanf(""));
  EXPECT_EQ(latentPreview(broken, 4, 1, 1).pixels, (std::vector<std::uint8_t>{0, 0, 0}));
}

TEST(LatentPreview, UpscalesNearest) {
  std::vector<float> latents(4 * 2, 0.0f);
  latents[1] = 1.0f;  // channel 0, pixel (0, 1)
  const Rgb8Image image = latentPreview(latents, 4, 1, 2, 2);
  ASSERT_EQ(image.width, 4);
  ASSERT_EQ(image.height, 2);
  const std::vector<std::uint8_t> row = {141, 125, 127, 141, 125, 127,
                                         187, 179, 182, 187, 179, 182};
  std::vector<std::uint8_t> expected = row;
  expected.insert(expected.end(), row.begin(), row.end());
  EXPECT_EQ(image.pixels, expected);
}

TEST(LatentPreview, BadShapesGiveEmpty) {
  const std::vector<float> latents(16, 0.0f);
  EXPECT_EQ(latentPreview(latents, 3, 2, 2).width, 0);  // not 4 channels... and size mismatch
  EXPECT_EQ(latentPreview(latents, 4, 2, 3).width, 0);  // size mismatch
  EXPECT_EQ(latentPreview(latents, 4, 2, 2, 0).width, 0);
  EXPECT_EQ(latentPreview(std::vector<float>(12), 3, 2, 2).width, 0);  // 3 channels
  EXPECT_EQ(latentPreview(latents, 4, 2, 2).width, 2);
}

}  // namespace
}  // namespace deviceops::imaging
