// Image types shared by the imaging component: the planar float image a VAE decoder writes and
// the 8-bit RGB image that is saved, previewed and served.
#pragma once

#include <cstdint>
#include <vector>

namespace deviceops::imaging {

// Planar float image as a VAE decoder writes it: channels x height x width, row-major, values
// nominally in [-1, 1]. Invariant expected by every consumer: data.size() ==
// channels * height * width (functions document what they do when it does not hold).
struct PlanarImage {
  int channels = 3, height = 0, width = 0;
  std::vector<float> data;
};

// 8-bit RGB, interleaved HWC: pixels.size() == width * height * 3.
struct Rgb8Image {
  int width = 0, height = 0;
  std::vector<std::uint8_t> pixels;
};

// diffusers' postprocess ("pil" output): clamp(x / 2 + 0.5, 0, 1) * 255, rounded as numpy's
// (x * 255).round() does (half to even), computed in float32 like the torch/numpy pipeline so the
// bytes are identical. NaN -> 0, +Inf -> 255, -Inf -> 0.
// Channels: 3 are used as RGB (more than 3: the first three); 1 is replicated to grey; any other
// count, or data.size() != channels * height * width, gives an empty image (width = height = 0).
Rgb8Image toRgb8(const PlanarImage& decoded);

}  // namespace deviceops::imaging
