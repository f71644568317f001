#include "imaging/tiled_decode.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "imaging/quality.h"

namespace deviceops::imaging {
namespace {

constexpr int kChannels = 4;
constexpr double kWeights[3][kChannels] = {
    {0.5, -0.25, 0.125, 0.75}, {-0.5, 0.25, 1.0, 0.0}, {0.3, 0.3, -0.3, 0.1}};

// The latent of testdata/tiled_decode_reference.py.
std::vector<float> makeLatent(int height, int width) {
  std::vector<float> latent(static_cast<std::size_t>(kChannels) * height * width);
  for (int c = 0; c < kChannels; ++c) {
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        latent[(static_cast<std::size_t>(c) * height + y) * width + x] =
            static_cast<float>(((c * 31 + y * 17 + x * 7) % 23) / 11.0 - 1.0);
      }
    }
  }
  return latent;
}

// A decoder without spatial context whose values are dyadic, so blending equal values is exact:
// out[k] = sum_c w[k][c] z[c] with w in {±1/2, ±1/4, 1/8}, nearest-upsampled by 8.
Result<PlanarImage> contextFreeDecode(std::vector<float> tile, int height, int width) {
  static constexpr float kDyadic[3][kChannels] = {
      {0.5f, -0.25f, 0.125f, 0.25f}, {-0.5f, 0.25f, 0.5f, 0.0f}, {0.125f, 0.125f, -0.25f, 0.5f}};
  PlanarImage image{3, height * 8, width * 8, {}};
  image.data.resize(static_cast<std::size_t>(3) * image.height * image.width);
  for (int k = 0; k < 3; ++k) {
    for (int py = 0; py < image.height; ++py) {
      for (int px = 0; px < image.width; ++px) {
        float sum = 0;
        for (int c = 0; c < kChannels; ++c) {
          sum += kDyadic[k][c] *
                 tile[(static_cast<std::size_t>(c) * height + py / 8) * width + px / 8];
        }
        image.data[(static_cast<std::size_t>(k) * image.height + py) * image.width + px] = sum;
      }
    }
  }
  return image;
}

// Dyadic latent values (multiples of 1/8), so contextFreeDecode is exact.
std::vector<float> makeDyadicLatent(int height, int width) {
  std::vector<float> latent(static_cast<std::size_t>(kChannels) * height * width);
  for (std::size_t index = 0; index < latent.size(); ++index) {
    latent[index] = static_cast<float>((index * 7) % 16) / 8.0f - 1.0f;
  }
  return latent;
}

// The decoder of the Python reference: it adds the mean of its tile (spatial context).
Result<PlanarImage> contextDecode(std::vector<float> tile, int height, int width) {
  double mean = 0;
  for (const float value : tile) mean += value;
  mean /= static_cast<double>(tile.size());
  PlanarImage image{3, height * 8, width * 8, {}};
  image.data.resize(static_cast<std::size_t>(3) * image.height * image.width);
  for (int k = 0; k < 3; ++k) {
    for (int py = 0; py < image.height; ++py) {
      for (int px = 0; px < image.width; ++px) {
        double sum = 0;
        for (int c = 0; c < kChannels; ++c) {
          sum += kWeights[k][c] *
                 tile[(static_cast<std::size_t>(c) * height + py / 8) * width + px / 8];
        }
        image.data[(static_cast<std::size_t>(k) * image.height + py) * image.width + px] =
            static_cast<float>(sum + mean + 0.01 * (py % 8) - 0.02 * (px % 8));
      }
    }
  }
  return image;
}

PlanarImage runPythonReference(int height, int width, int tileLatent, double overlap) {
  const std::string command = std::string("/usr/bin/python3 ") + DEVICEOPS_SOURCE_DIR +
                              "/src/imaging/testdata/tiled_decode_reference.py " +
                              std::to_string(height) + " " + std::to_string(width) + " " +
                              std::to_string(tileLatent) + " " + std::to_string(overlap);
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(command.c_str(), "r"), pclose);
  PlanarImage image;
  if (!pipe) return image;
  if (std::fscanf(pipe.get(), "%d %d %d", &image.channels, &image.height, &image.width) != 3) {
    return image;
  }
  double value = 0;
  while (std::fscanf(pipe.get(), "%lf", &value) == 1)
    image.data.push_back(static_cast<float>(value));
  return image;
}

TEST(TiledDecode, MatchesDiffusersReferenceWithSpatialContext) {
  for (const int size : {10, 13}) {
    SCOPED_TRACE(size);
    const PlanarImage expected = runPythonReference(size, 10, 4, 0.25);
    ASSERT_EQ(expected.channels, 3);
    ASSERT_EQ(expected.height, size * 8);
    ASSERT_EQ(expected.width, 80);
    ASSERT_EQ(expected.data.size(), static_cast<std::size_t>(3) * size * 8 * 80);
    TilingReport report;
    auto decoded =
        tiledDecode(makeLatent(size, 10), kChannels, size, 10, {4, 0.25}, contextDecode, &report);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    ASSERT_EQ(decoded->height, size * 8);
    ASSERT_EQ(decoded->width, 80);
    double worst = 0;
    for (std::size_t index = 0; index < expected.data.size(); ++index) {
      worst = std::max(worst,
                       std::fabs(static_cast<double>(decoded->data[index]) - expected.data[index]));
    }
    EXPECT_LE(worst, 1e-6);
    // Tiles start at latent 0, 3, 6, 9 (and 12): every 3 latents = 24 pixels kept per tile.
    EXPECT_EQ(report.tiles, (size == 10 ? 4 : 5) * 4);
    EXPECT_EQ(report.tileLatent, 4);
    EXPECT_EQ(report.boundaryColumns, (std::vector<int>{24, 48, 72}));
    const std::vector<int> rows =
        size == 10 ? std::vector<int>{24, 48, 72} : std::vector<int>{24, 48, 72, 96};
    EXPECT_EQ(report.boundaryRows, rows);
  }
}

TEST(TiledDecode, BlendingMattersForTheReferenceCase) {
  // Without blending (overlap 0) the same decoder gives a different image, so the comparison
  // above really checks the blend.
  auto blended = tiledDecode(makeLatent(10, 10), kChannels, 10, 10, {4, 0.25}, contextDecode);
  auto unblended = tiledDecode(makeLatent(10, 10), kChannels, 10, 10, {4, 0.0}, contextDecode);
  ASSERT_TRUE(blended.ok() && unblended.ok());
  EXPECT_NE(blended->data, unblended->data);
}

TEST(TiledDecode, ContextFreeDecoderGivesTheUntiledImageExactly) {
  for (const auto& [height, width, tile, overlap] : std::vector<std::tuple<int, int, int, double>>{
           {10, 10, 4, 0.25}, {13, 7, 4, 0.25}, {9, 17, 8, 0.5}, {12, 5, 4, 0.0}}) {
    SCOPED_TRACE(::testing::Message()
                 << height << "x" << width << " tile " << tile << " overlap " << overlap);
    const std::vector<float> latent = makeDyadicLatent(height, width);
    auto untiled = contextFreeDecode(latent, height, width);
    ASSERT_TRUE(untiled.ok());
    auto tiled = tiledDecode(latent, kChannels, height, width, {tile, overlap}, contextFreeDecode);
    ASSERT_TRUE(tiled.ok()) << tiled.error().message;
    EXPECT_EQ(tiled->channels, 3);
    EXPECT_EQ(tiled->height, height * 8);
    EXPECT_EQ(tiled->width, width * 8);
    EXPECT_EQ(tiled->data, untiled->data);
  }
}

TEST(TiledDecode, SdxlSizesGiveEightTimesTheLatent) {
  // SDXL.md: a 200-latent side with 128-latent tiles gives 768 + 768 + 64 = 1600 pixels.
  TilingReport report;
  int calls = 0;
  std::vector<std::pair<int, int>> tileSizes;
  auto decoded = tiledDecode(
      makeDyadicLatent(200, 8), kChannels, 200, 8, {},
      [&](std::vector<float> tile, int height, int width) {
        ++calls;
        tileSizes.emplace_back(height, width);
        return contextFreeDecode(std::move(tile), height, width);
      },
      &report);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->height, 1600);
  EXPECT_EQ(decoded->width, 64);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(report.tiles, 3);
  EXPECT_EQ(report.tileLatent, 128);
  // Tiles start at latent rows 0, 96, 192.
  EXPECT_EQ(tileSizes, (std::vector<std::pair<int, int>>{{128, 8}, {104, 8}, {8, 8}}));
  EXPECT_EQ(report.boundaryRows, (std::vector<int>{768, 1536}));
  EXPECT_TRUE(report.boundaryColumns.empty());
}

TEST(TiledDecode, SmallLatentIsOneCall) {
  int calls = 0;
  TilingReport report;
  report.boundaryRows = {1, 2};  // stale values are replaced
  auto decoded = tiledDecode(
      makeLatent(4, 3), kChannels, 4, 3, {4, 0.25},
      [&](std::vector<float> tile, int height, int width) {
        ++calls;
        EXPECT_EQ(height, 4);
        EXPECT_EQ(width, 3);
        EXPECT_EQ(tile, makeLatent(4, 3));
        return contextDecode(std::move(tile), height, width);
      },
      &report);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(report.tiles, 1);
  EXPECT_TRUE(report.boundaryRows.empty());
  EXPECT_EQ(decoded->data, contextDecode(makeLatent(4, 3), 4, 3)->data);
}

TEST(TiledDecode, BadArgumentsAreInvalid) {
  const std::vector<float> latent = makeLatent(10, 10);
  struct Case {
    const char* name;
    int channels, height, width;
    TilingOptions options;
    int scale;
  };
  for (const Case& bad : std::vector<Case>{
           {"tile 1", 4, 10, 10, {1, 0.25}, 8},
           {"negative overlap", 4, 10, 10, {4, -0.1}, 8},
           {"overlap above 0.9", 4, 10, 10, {4, 0.95}, 8},
           {"NaN overlap", 4, 10, 10, {4, std::nan("")}, 8},
           {"crop differs from stride", 4, 10, 10, {10, 0.25}, 8},
           {"size mismatch", 4, 10, 9, {4, 0.25}, 8},
           {"zero height", 4, 0, 10, {4, 0.25}, 8},
           {"zero scale", 4, 10, 10, {4, 0.25}, 0},
       }) {
    SCOPED_TRACE(bad.name);
    int calls = 0;
    auto decoded = tiledDecode(
        latent, bad.channels, bad.height, bad.width, bad.options,
        [&](std::vector<float> tile, int height, int width) {
          ++calls;
          return contextDecode(std::move(tile), height, width);
        },
        nullptr, bad.scale);
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(calls, 0);
  }
}

TEST(TiledDecode, DecoderErrorsPropagate) {
  int calls = 0;
  auto decoded = tiledDecode(makeLatent(10, 10), kChannels, 10, 10, {4, 0.25},
                             [&](std::vector<float>, int, int) -> Result<PlanarImage> {
                               if (++calls == 3) {
                                 return makeError(ErrorCode::kResourceExhausted, "out of VRAM");
                               }
                               return PlanarImage{3, 32, 32, std::vector<float>(3 * 32 * 32)};
                             });
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kResourceExhausted);
  EXPECT_EQ(decoded.error().message, "out of VRAM");
  EXPECT_EQ(calls, 3);
}

TEST(TiledDecode, WrongSizedTileIsInternal) {
  auto decoded = tiledDecode(makeLatent(10, 10), kChannels, 10, 10, {4, 0.25},
                             [](std::vector<float>, int, int) -> Result<PlanarImage> {
                               return PlanarImage{3, 16, 32, std::vector<float>(3 * 16 * 32)};
                             });
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kInternal);
  EXPECT_NE(decoded.error().message.find("3x16x32"), std::string::npos) << decoded.error().message;
  EXPECT_NE(decoded.error().message.find("3x32x32"), std::string::npos) << decoded.error().message;
}

// Nearest upsampling of the first latent channel plus the mean of the tile: no seams but the
// tile means' (and the latent's own steps).
Result<PlanarImage> meanShiftDecode(std::vector<float> tile, int height, int width) {
  double mean = 0;
  for (const float value : tile) mean += value;
  mean /= static_cast<double>(tile.size());
  PlanarImage image{3, height * 8, width * 8, {}};
  for (int k = 0; k < 3; ++k) {
    for (int py = 0; py < image.height; ++py) {
      for (int px = 0; px < image.width; ++px) {
        image.data.push_back(
            static_cast<float>(tile[static_cast<std::size_t>(py / 8) * width + px / 8] + mean));
      }
    }
  }
  return image;
}

TEST(TiledDecode, SeamScoreSeesTileSeams) {
  // Without overlap, each tile is shifted by its own mean: the tile boundaries jump more than
  // the same rows and columns of the untiled decode. The context-free decoder tiles without any
  // seam.
  std::vector<float> smooth(static_cast<std::size_t>(kChannels) * 12 * 12);
  for (std::size_t index = 0; index < smooth.size(); ++index) {
    smooth[index] = 0.01f * static_cast<float>(index % 12 + (index / 12) % 12);
  }
  TilingReport report;
  auto tiled = tiledDecode(smooth, kChannels, 12, 12, {4, 0.0}, meanShiftDecode, &report);
  ASSERT_TRUE(tiled.ok());
  EXPECT_EQ(report.boundaryRows, (std::vector<int>{32, 64}));
  EXPECT_EQ(report.boundaryColumns, (std::vector<int>{32, 64}));
  auto untiled = meanShiftDecode(smooth, 12, 12);
  ASSERT_TRUE(untiled.ok());
  const double tiledScore = seamScore(*tiled, report.boundaryRows, report.boundaryColumns);
  const double untiledScore = seamScore(*untiled, report.boundaryRows, report.boundaryColumns);
  EXPECT_GT(tiledScore, untiledScore * 2) << tiledScore << " vs " << untiledScore;
  // Blending with overlap 0.5 hides most of the jump.
  TilingReport blendedReport;
  auto blended = tiledDecode(smooth, kChannels, 12, 12, {4, 0.5}, meanShiftDecode, &blendedReport);
  ASSERT_TRUE(blended.ok());
  EXPECT_LT(seamScore(*blended, blendedReport.boundaryRows, blendedReport.boundaryColumns),
            tiledScore);

  const std::vector<float> dyadic = makeDyadicLatent(10, 10);
  auto clean = tiledDecode(dyadic, kChannels, 10, 10, {4, 0.0}, contextFreeDecode, &report);
  auto reference = contextFreeDecode(dyadic, 10, 10);
  ASSERT_TRUE(clean.ok() && reference.ok());
  EXPECT_EQ(seamScore(*clean, report.boundaryRows, report.boundaryColumns),
            seamScore(*reference, report.boundaryRows, report.boundaryColumns));
}

}  // namespace
}  // namespace deviceops::imaging
