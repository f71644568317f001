#include "imaging/similarity.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace deviceops::imaging {
namespace {

float shown(float value) {
  if (std::isnan(value)) return 0.0f;
  return std::clamp(value / 2.0f + 0.5f, 0.0f, 1.0f);
}

std::vector<double> luma(const PlanarImage& image) {
  const std::size_t plane = static_cast<std::size_t>(image.height) * image.width;
  std::vector<double> y(plane);
  for (std::size_t i = 0; i < plane; ++i) {
    if (image.channels < 3) {
      y[i] = shown(image.data[i]);
    } else {
      y[i] = 0.299 * shown(image.data[i]) + 0.587 * shown(image.data[plane + i]) +
             0.114 * shown(image.data[2 * plane + i]);
    }
  }
  return y;
}

// Separable Gaussian of `size` taps, sigma 1.5, normalised.
std::vector<double> gaussian(int size) {
  std::vector<double> weights(size);
  double sum = 0;
  const double centre = (size - 1) / 2.0;
  for (int i = 0; i < size; ++i) {
    weights[i] = std::exp(-((i - centre) * (i - centre)) / (2 * 1.5 * 1.5));
    sum += weights[i];
  }
  for (double& w : weights) w /= sum;
  return weights;
}

// Valid-mode separable filter of an h x w plane with `k` taps in each direction.
std::vector<double> filter(const std::vector<double>& in, int h, int w,
                           const std::vector<double>& kx, const std::vector<double>& ky) {
  const int ow = w - static_cast<int>(kx.size()) + 1;
  const int oh = h - static_cast<int>(ky.size()) + 1;
  std::vector<double> rows(static_cast<std::size_t>(h) * ow, 0.0);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < ow; ++x) {
      double sum = 0;
      for (std::size_t k = 0; k < kx.size(); ++k) sum += kx[k] * in[y * w + x + k];
      rows[y * ow + x] = sum;
    }
  }
  std::vector<double> out(static_cast<std::size_t>(oh) * ow, 0.0);
  for (int y = 0; y < oh; ++y) {
    for (int x = 0; x < ow; ++x) {
      double sum = 0;
      for (std::size_t k = 0; k < ky.size(); ++k) sum += ky[k] * rows[(y + k) * ow + x];
      out[y * ow + x] = sum;
    }
  }
  return out;
}

double ssimOf(const std::vector<double>& a, const std::vector<double>& b, int h, int w) {
  const std::vector<double> kx = gaussian(std::min(11, w));
  const std::vector<double> ky = gaussian(std::min(11, h));
  std::vector<double> aa(a.size()), bb(a.size()), ab(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    aa[i] = a[i] * a[i];
    bb[i] = b[i] * b[i];
    ab[i] = a[i] * b[i];
  }
  const std::vector<double> muA = filter(a, h, w, kx, ky), muB = filter(b, h, w, kx, ky);
  const std::vector<double> sAA = filter(aa, h, w, kx, ky), sBB = filter(bb, h, w, kx, ky),
                            sAB = filter(ab, h, w, kx, ky);
  constexpr double kC1 = (0.01 * 1) * (0.01 * 1), kC2 = (0.03 * 1) * (0.03 * 1);
  double total = 0;
  for (std::size_t i = 0; i < muA.size(); ++i) {
    const double varA = sAA[i] - muA[i] * muA[i];
    const double varB = sBB[i] - muB[i] * muB[i];
    const double cov = sAB[i] - muA[i] * muB[i];
    total += ((2 * muA[i] * muB[i] + kC1) * (2 * cov + kC2)) /
             ((muA[i] * muA[i] + muB[i] * muB[i] + kC1) * (varA + varB + kC2));
  }
  return muA.empty() ? 0.0 : total / static_cast<double>(muA.size());
}

}  // namespace

Result<Similarity> compareImages(const PlanarImage& original, const PlanarImage& reconstructed) {
  const auto wellFormed = [](const PlanarImage& image) {
    return image.channels >= 1 && image.height > 0 && image.width > 0 &&
           image.data.size() ==
               static_cast<std::size_t>(image.channels) * image.height * image.width;
  };
  if (!wellFormed(original) || !wellFormed(reconstructed) ||
      original.channels != reconstructed.channels || original.height != reconstructed.height ||
      original.width != reconstructed.width) {
    return makeError(ErrorCode::kInvalidArgument,
                     "images to compare must be well-formed and of the same size and channels");
  }
  Similarity result;
  double sum = 0;
  for (std::size_t i = 0; i < original.data.size(); ++i) {
    const double d = shown(original.data[i]) - shown(reconstructed.data[i]);
    sum += d * d;
  }
  result.mse = sum / static_cast<double>(original.data.size());
  result.psnr = result.mse == 0 ? std::numeric_limits<double>::infinity()
                                : 10.0 * std::log10(1.0 / result.mse);
  result.ssim = ssimOf(luma(original), luma(reconstructed), original.height, original.width);
  return result;
}

}  // namespace deviceops::imaging
