// Full-reference similarity of a reconstruction to its original (VAE round trips; SDXL.md
// section 7). Both images are planar [-1, 1] values as a VAE reads and writes them; each value is
// first shown as the saved image would show it: clamp(x / 2 + 0.5, 0, 1) (NaN counts as 0).
//
// - psnr: 10 log10(1 / MSE) over every value of every channel, in dB; +infinity when equal.
// - ssim: Wang et al. 2004 on the luma Y = 0.299 R + 0.587 G + 0.114 B (a one-channel image is
//   its own luma), 11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 1, over the
//   window positions that fit inside the image ("valid"), averaged. Images smaller than 11x11
//   use one window of their own size with the same weights, cropped.
// Precondition checked: same channels, height and width and data sizes that match; otherwise
// kInvalidArgument. Pure functions; thread-safe.
#pragma once

#include "common/result.h"
#include "imaging/image.h"

namespace deviceops::imaging {

struct Similarity {
  double psnr = 0;
  double ssim = 0;
  double mse = 0;  // on [0, 1]
};

Result<Similarity> compareImages(const PlanarImage& original, const PlanarImage& reconstructed);

}  // namespace deviceops::imaging
