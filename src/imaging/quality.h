// Reference-free quality signals of decoded images and latents (design: SDXL.md section 7). Pure
// arithmetic on caller-owned data; every function is thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>

#include "imaging/image.h"

namespace deviceops::imaging {

// Luma Y = 0.299 R + 0.587 G + 0.114 B of [0, 1] values: a decoded value x in [-1, 1] becomes
// clamp(x / 2 + 0.5, 0, 1), what the saved image shows. A one-channel image is its own luma.
// "Interior" means the pixels with a full 3x3 neighbourhood (1 <= y < H-1, 1 <= x < W-1).
// Variances and standard deviations are population ones (divided by n).
struct QualitySignals {
  std::uint64_t nanCount = 0, infCount = 0;  // over every value of every channel
  double meanLuma = 0, stdLuma = 0;          // over the valid pixels
  bool flat = false;                         // stdLuma < 1e-3, or no valid pixel
  bool black = false;                        // meanLuma < 0.02 (also true with no valid pixel)
  double laplacianVariance = 0;  // variance of the 3x3 [0,1,0;1,-4,1;0,1,0] of Y, interior
  double tenengrad = 0;          // mean of Gx^2 + Gy^2 (3x3 Sobel) of Y, interior
  double noiseResidual = 0;      // std of Y - blur(Y), blur = [1,2,1]/4 separable, interior
  double clippedFraction = 0;    // values < -1 or > 1 (±Inf included) / all values
  double colourfulness = 0;      // Hasler-Süsstrunk 2003 on [0, 255] RGB, valid pixels
};

// A pixel is valid when all its channels are finite; the statistics use valid pixels only, and
// an interior statistic only pixels whose whole 3x3 neighbourhood is valid. Images smaller than
// 3x3 get the counts, means, flat/black, clippedFraction and colourfulness; the interior signals
// stay 0. Channels: 3 (or more: the first three are RGB) or 1 (grey, colourfulness 0); with 2
// channels, or data.size() != channels * height * width, only nanCount, infCount and
// clippedFraction are computed (over data as it is), and flat and black are true.
QualitySignals measureImage(const PlanarImage& decoded);

// {"nanCount": ..., "infCount": ..., "meanLuma": ..., ...}: the field names as keys.
nlohmann::json toJson(const QualitySignals& signals);

struct LatentStatistics {
  double mean = 0, std = 0;  // population, over the finite values
  std::uint64_t nanCount = 0, infCount = 0;
};
LatentStatistics measureLatents(std::span<const float> latents);

// Seam score of a tiled decode: the mean |difference| between adjacent pixels across the given
// boundaries, divided by the same mean over all other adjacent pairs; 1.0 means the seams look
// like the rest of the image. Boundary row r means the vertical pairs (r-1, r) of every column,
// boundary column c the horizontal pairs (c-1, c) of every row, in every channel; rows and
// columns outside [1, H-1] / [1, W-1] are ignored, as are pairs with a non-finite value.
// Returns 1.0 when no boundary pair remains, or when both means are 0; +infinity when only the
// "elsewhere" mean is 0 (or no other pair exists). A malformed image (size mismatch) gives 1.0.
double seamScore(const PlanarImage& image, std::span<const int> boundaryRows,
                 std::span<const int> boundaryColumns);

}  // namespace deviceops::imaging
