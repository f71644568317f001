#include "imaging/quality.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace deviceops::imaging {
namespace {

constexpr int kSide = 64;

// A grey (R = G = B) image from a function of (y, x) returning decoded values in [-1, 1].
PlanarImage greyImage(int height, int width, const std::function<float(int, int)>& value) {
  PlanarImage image{3, height, width, {}};
  const std::size_t plane = static_cast<std::size_t>(height) * width;
  image.data.resize(plane * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const float v = value(y, x);
      for (int c = 0; c < 3; ++c)
        image.data[c * plane + static_cast<std::size_t>(y) * width + x] = v;
    }
  }
  return image;
}

PlanarImage gradient() {
  return greyImage(kSide, kSide, [](int y, int x) { return -0.8f + 1.6f * (x + y) / (2 * kSide); });
}
PlanarImage checkerboard() {
  return greyImage(kSide, kSide,
                   [](int y, int x) { return ((y / 8 + x / 8) % 2 == 0) ? -0.8f : 0.8f; });
}
PlanarImage disc() {
  return greyImage(kSide, kSide, [](int y, int x) {
    const int dy = y - kSide / 2, dx = x - kSide / 2;
    return dy * dy + dx * dx < 20 * 20 ? 0.7f : -0.7f;
  });
}

// 3x3 [1,2,1]/4 separable blur, edges replicated, every channel.
PlanarImage blurred(const PlanarImage& image) {
  PlanarImage out = image;
  const auto at = [&](int c, int y, int x) {
    y = std::clamp(y, 0, image.height - 1);
    x = std::clamp(x, 0, image.width - 1);
    return image.data[(static_cast<std::size_t>(c) * image.height + y) * image.width + x];
  };
  for (int c = 0; c < image.channels; ++c) {
    for (int y = 0; y < image.height; ++y) {
      for (int x = 0; x < image.width; ++x) {
        float sum = 0;
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) {
            sum += at(c, y + dy, x + dx) * (dy == 0 ? 2.0f : 1.0f) * (dx == 0 ? 2.0f : 1.0f);
          }
        }
        out.data[(static_cast<std::size_t>(c) * image.height + y) * image.width + x] = sum / 16;
      }
    }
  }
  return out;
}

// Adds the same uniform noise in [-amplitude, amplitude] to R, G and B (fixed seed).
PlanarImage noised(const PlanarImage& image, float amplitude) {
  PlanarImage out = image;
  std::mt19937 generator(1234);
  std::uniform_real_distribution<float> noise(-amplitude, amplitude);
  const std::size_t plane = static_cast<std::size_t>(image.height) * image.width;
  for (std::size_t index = 0; index < plane; ++index) {
    const float delta = noise(generator);
    for (int c = 0; c < 3; ++c) out.data[c * plane + index] += delta;
  }
  return out;
}

TEST(Quality, BlurLowersSharpnessAndNoiseRaisesResidual) {
  for (const auto& [name, image] : std::vector<std::pair<const char*, PlanarImage>>{
           {"gradient", gradient()}, {"checkerboard", checkerboard()}, {"disc", disc()}}) {
    SCOPED_TRACE(name);
    const QualitySignals original = measureImage(image);
    const QualitySignals soft = measureImage(blurred(image));
    const QualitySignals noisy = measureImage(noised(image, 0.1f));
    EXPECT_EQ(original.nanCount, 0u);
    EXPECT_FALSE(original.flat);
    EXPECT_FALSE(original.black);
    EXPECT_EQ(original.colourfulness, 0.0);
    // A linear ramp has no Laplacian to lower (the blur's replicated edges even add some).
    if (std::string(name) != "gradient") {
      EXPECT_LT(soft.laplacianVariance, original.laplacianVariance);
      EXPECT_LT(soft.tenengrad, original.tenengrad);
    }
    EXPECT_GT(noisy.noiseResidual, original.noiseResidual);
    EXPECT_GT(noisy.noiseResidual, soft.noiseResidual);
    EXPECT_GT(noisy.laplacianVariance, original.laplacianVariance);
  }
}

TEST(Quality, GradientHasConstantSobelAndZeroLaplacian) {
  // Y = 0.1 + 0.8 (x + y) / 128 on [0, 1]: a step of 0.00625 per pixel, so
  // Gx = Gy = 4 * 2 * 0.00625 = 0.05, Laplacian 0.
  const QualitySignals signals = measureImage(gradient());
  EXPECT_NEAR(signals.laplacianVariance, 0.0, 1e-12);
  EXPECT_NEAR(signals.tenengrad, 2 * 0.05 * 0.05, 1e-7);
  EXPECT_NEAR(signals.noiseResidual, 0.0, 1e-6);
  EXPECT_NEAR(signals.meanLuma, 0.1 + 0.8 * 63.0 / 128, 1e-6);
}

// Y (one channel, [0, 1]):     Laplacian at the interior   Sobel Gx, Gy
//   0    0    0    0            (1,1) -2    (1,2) 0.75      (1,1) 0.25, 0.25   (1,2) -1, 0.5
//   0   .5    0    0            (2,1) 0.75  (2,2) -1        (2,1) 0.5, -1      (2,2) -0.5, -0.5
//   0    0  .25    0            mean -0.375, variance       G^2: 0.125, 1.25, 1.25, 0.5
//   0    0    0    0            5.5625 / 4 = 1.390625       mean 0.78125
TEST(Quality, HandComputedFourByFour) {
  PlanarImage image{1, 4, 4, std::vector<float>(16, -1.0f)};
  image.data[1 * 4 + 1] = 0.0f;   // Y 0.5
  image.data[2 * 4 + 2] = -0.5f;  // Y 0.25
  const QualitySignals signals = measureImage(image);
  EXPECT_DOUBLE_EQ(signals.laplacianVariance, 1.390625);
  EXPECT_DOUBLE_EQ(signals.tenengrad, 0.78125);
  EXPECT_DOUBLE_EQ(signals.meanLuma, 0.75 / 16);
  // Blur residual at the interior: (1,1) 0.5 - (0.5*4 + 0.25)/16, (1,2) -(0.5*2 + 0.25*2)/16,
  // (2,1) the same, (2,2) 0.25 - (0.5 + 0.25*4)/16.
  const double residuals[] = {0.5 - 2.25 / 16, -1.5 / 16, -1.5 / 16, 0.25 - 1.5 / 16};
  double mean = 0, squares = 0;
  for (const double r : residuals) mean += r / 4;
  for (const double r : residuals) squares += (r - mean) * (r - mean) / 4;
  EXPECT_NEAR(signals.noiseResidual, std::sqrt(squares), 1e-12);

  // The same image in RGB gives the same Y (0.299 + 0.587 + 0.114 = 1).
  PlanarImage rgb{3, 4, 4, {}};
  for (int c = 0; c < 3; ++c) rgb.data.insert(rgb.data.end(), image.data.begin(), image.data.end());
  EXPECT_NEAR(measureImage(rgb).laplacianVariance, 1.390625, 1e-12);
  EXPECT_NEAR(measureImage(rgb).tenengrad, 0.78125, 1e-12);
}

TEST(Quality, BlackImageIsFlatAndBlack) {
  const QualitySignals signals = measureImage(greyImage(8, 8, [](int, int) { return -1.0f; }));
  EXPECT_TRUE(signals.flat);
  EXPECT_TRUE(signals.black);
  EXPECT_EQ(signals.meanLuma, 0.0);
  EXPECT_EQ(signals.clippedFraction, 0.0);
  const QualitySignals grey = measureImage(greyImage(8, 8, [](int, int) { return 0.0f; }));
  EXPECT_TRUE(grey.flat);
  EXPECT_FALSE(grey.black);
  EXPECT_DOUBLE_EQ(grey.meanLuma, 0.5);
}

TEST(Quality, NanAndInfAreCountedAndExcluded) {
  PlanarImage image = greyImage(4, 4, [](int, int) { return 0.0f; });
  image.data[0] = std::numeric_limits<float>::quiet_NaN();       // R of pixel 0
  image.data[16 + 5] = std::numeric_limits<float>::infinity();   // G of pixel 5
  image.data[32 + 6] = std::numeric_limits<float>::quiet_NaN();  // B of pixel 6
  const QualitySignals signals = measureImage(image);
  EXPECT_EQ(signals.nanCount, 2u);
  EXPECT_EQ(signals.infCount, 1u);
  EXPECT_DOUBLE_EQ(signals.meanLuma, 0.5);  // the 13 valid pixels
  EXPECT_EQ(signals.stdLuma, 0.0);
  EXPECT_DOUBLE_EQ(signals.clippedFraction, 1.0 / 48);  // +Inf is outside [-1, 1]

  PlanarImage allNan{3, 4, 4, std::vector<float>(48, std::nanf(""))};
  const QualitySignals broken = measureImage(allNan);
  EXPECT_EQ(broken.nanCount, 48u);
  EXPECT_TRUE(broken.flat);
  EXPECT_TRUE(broken.black);
  EXPECT_EQ(broken.laplacianVariance, 0.0);
}

TEST(Quality, SaturatedImageIsClipped) {
  PlanarImage image = greyImage(4, 4, [](int y, int) { return y < 2 ? 1.5f : 0.5f; });
  image.data[47] = -1.25f;
  const QualitySignals signals = measureImage(image);
  EXPECT_DOUBLE_EQ(signals.clippedFraction, 25.0 / 48);
  EXPECT_EQ(measureImage(greyImage(4, 4, [](int, int) { return 1.0f; })).clippedFraction, 0.0);
}

TEST(Quality, Colourfulness) {
  EXPECT_EQ(measureImage(checkerboard()).colourfulness, 0.0);
  // Red / green checkerboard: rg = ±255 (mean 0, std 255), yb = 127.5 (std 0):
  // M = 255 + 0.3 * 127.5.
  PlanarImage image{3, 8, 8, std::vector<float>(3 * 64, -1.0f)};
  for (int index = 0; index < 64; ++index) {
    const bool red = (index / 8 + index % 8) % 2 == 0;
    image.data[(red ? 0 : 64) + index] = 1.0f;
  }
  EXPECT_NEAR(measureImage(image).colourfulness, 255 + 0.3 * 127.5, 1e-9);
}

TEST(Quality, TinyAndMalformedImages) {
  const QualitySignals tiny = measureImage(greyImage(2, 5, [](int, int x) { return x * 0.1f; }));
  EXPECT_GT(tiny.meanLuma, 0.5);
  EXPECT_GT(tiny.stdLuma, 0.0);
  EXPECT_EQ(tiny.laplacianVariance, 0.0);
  EXPECT_EQ(tiny.tenengrad, 0.0);
  EXPECT_EQ(tiny.noiseResidual, 0.0);

  PlanarImage wrongSize{3, 4, 4, std::vector<float>(10, 2.0f)};
  const QualitySignals malformed = measureImage(wrongSize);
  EXPECT_TRUE(malformed.flat);
  EXPECT_EQ(malformed.meanLuma, 0.0);
  EXPECT_DOUBLE_EQ(malformed.clippedFraction, 1.0);
}

TEST(Quality, JsonKeys) {
  QualitySignals signals;
  signals.nanCount = 3;
  signals.laplacianVariance = 0.5;
  signals.flat = true;
  const nlohmann::json json = toJson(signals);
  EXPECT_EQ(json.size(), 11u);
  EXPECT_EQ(json.at("nanCount"), 3);
  EXPECT_EQ(json.at("laplacianVariance"), 0.5);
  EXPECT_EQ(json.at("flat"), true);
  for (const char* key : {"infCount", "meanLuma", "stdLuma", "black", "tenengrad", "noiseResidual",
                          "clippedFraction", "colourfulness"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
}

TEST(Quality, LatentStatistics) {
  const std::vector<float> latents = {1.0f,  -1.0f,         3.0f,
                                      -3.0f, std::nanf(""), std::numeric_limits<float>::infinity()};
  const LatentStatistics statistics = measureLatents(latents);
  EXPECT_EQ(statistics.nanCount, 1u);
  EXPECT_EQ(statistics.infCount, 1u);
  EXPECT_DOUBLE_EQ(statistics.mean, 0.0);
  EXPECT_DOUBLE_EQ(statistics.std, std::sqrt(5.0));
  const LatentStatistics empty = measureLatents({});
  EXPECT_EQ(empty.mean, 0.0);
  EXPECT_EQ(empty.std, 0.0);
}

TEST(Quality, SeamScore) {
  // A ramp: every horizontal step is 0.01 and every vertical step 0.02.
  PlanarImage ramp{1, 6, 8, {}};
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 8; ++x) ramp.data.push_back(0.01f * x + 0.02f * y);
  }
  EXPECT_EQ(seamScore(ramp, {}, {}), 1.0);
  const std::vector<int> outOfRange = {0, 8, -3};
  EXPECT_EQ(seamScore(ramp, outOfRange, outOfRange), 1.0);
  const std::vector<int> column4 = {4};
  // Boundary pairs: the 6 horizontal pairs (3,4): 0.01. Others: 6*6 horizontal of 0.01 and
  // 5*8 vertical of 0.02 -> mean (0.36 + 0.8) / 76.
  EXPECT_NEAR(seamScore(ramp, {}, column4), 0.01 / (1.16 / 76), 1e-5);

  // A step of 1 at column 4 of a flat image: infinite; seen from the step: 1 / mean(other).
  PlanarImage step{1, 4, 8, {}};
  for (int y = 0; y < 4; ++y) {
    for (int x = 0; x < 8; ++x) step.data.push_back(x < 4 ? 0.0f : 1.0f);
  }
  EXPECT_EQ(seamScore(step, {}, column4), std::numeric_limits<double>::infinity());
  const std::vector<int> row2 = {2};
  // Boundary: the 8 vertical pairs (1,2), all 0. Others: 28 horizontal pairs (4 steps of 1)
  // and 16 vertical ones.
  EXPECT_DOUBLE_EQ(seamScore(step, row2, {}), 0.0);
  PlanarImage flat{1, 4, 4, std::vector<float>(16, 0.5f)};
  EXPECT_EQ(seamScore(flat, row2, {}), 1.0);
}

}  // namespace
}  // namespace deviceops::imaging
