#include "imaging/image.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace deviceops::imaging {
namespace {

TEST(ToRgb8, MatchesNumpyPostprocess) {
  // Expected bytes from diffusers' postprocess run in torch 1.13 / numpy on the same float32
  // values: ((x / 2 + 0.5).clamp(0, 1) * 255).round().astype(uint8).
  const std::vector<std::pair<float, int>> table = {
      {-1.0f, 0},
      {1.0f, 255},
      {0.0f, 128},  // 127.5: numpy rounds half to even
      {-2.0f, 0},
      {2.0f, 255},
      {std::numeric_limits<float>::quiet_NaN(), 0},
      {std::numeric_limits<float>::infinity(), 255},
      {-std::numeric_limits<float>::infinity(), 0},
      {-0.9900000095367432f, 1},
      {-0.5f, 64},
      {-0.25f, 96},
      {-0.10000000149011612f, 115},
      {0.0010000000474974513f, 128},
      {0.003920999821275473f, 128},
      {0.10000000149011612f, 140},
      {0.33000001311302185f, 170},
      {0.5f, 191},
      {0.7699999809265137f, 226},
      {0.9990000128746033f, 255},
      {0.9959999918937683f, 254},
      {-0.9959999918937683f, 1},
      {0.003921568859368563f, 128},
      {-0.003921568859368563f, 127},
  };
  PlanarImage image{3, 1, static_cast<int>(table.size()), {}};
  for (int channel = 0; channel < 3; ++channel) {
    for (const auto& [value, expected] : table) image.data.push_back(value);
  }
  const Rgb8Image rgb = toRgb8(image);
  ASSERT_EQ(rgb.width, static_cast<int>(table.size()));
  ASSERT_EQ(rgb.height, 1);
  ASSERT_EQ(rgb.pixels.size(), table.size() * 3);
  for (std::size_t index = 0; index < table.size(); ++index) {
    SCOPED_TRACE(table[index].first);
    for (int channel = 0; channel < 3; ++channel) {
      EXPECT_EQ(rgb.pixels[index * 3 + channel], table[index].second);
    }
  }
}

TEST(ToRgb8, InterleavesPlanarChannels) {
  // 2x2, R plane -1, G plane 1, B plane 0 except one pixel.
  PlanarImage image{3, 2, 2, {-1, -1, -1, -1, 1, 1, 1, 1, 0, 0, 0, -1}};
  const Rgb8Image rgb = toRgb8(image);
  EXPECT_EQ(rgb.pixels,
            (std::vector<std::uint8_t>{0, 255, 128, 0, 255, 128, 0, 255, 128, 0, 255, 0}));
  PlanarImage grey{1, 1, 2, {-1, 1}};
  EXPECT_EQ(toRgb8(grey).pixels, (std::vector<std::uint8_t>{0, 0, 0, 255, 255, 255}));
}

TEST(ToRgb8, MalformedGivesEmpty) {
  EXPECT_EQ(toRgb8(PlanarImage{3, 2, 2, std::vector<float>(11)}).width, 0);
  EXPECT_TRUE(toRgb8(PlanarImage{2, 2, 2, std::vector<float>(8)}).pixels.empty());
  EXPECT_TRUE(toRgb8(PlanarImage{3, 0, 2, {}}).pixels.empty());
}

}  // namespace
}  // namespace deviceops::imaging
