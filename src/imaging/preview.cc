#include "imaging/preview.h"

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace deviceops::imaging {
namespace {

// ComfyUI comfy/latent_formats.py, class SDXL: latent_rgb_factors (rows: latent channels,
// columns: R, G, B) and latent_rgb_factors_bias, applied as latent_preview.py's
// Latent2RGBPreviewer does (torch.nn.functional.linear over the channel axis).
constexpr int kLatentChannels = 4;
constexpr float kSdxlRgbFactors[kLatentChannels][3] = {
    {0.3651f, 0.4232f, 0.4341f},
    {-0.2533f, -0.0042f, 0.1068f},
    {0.1076f, 0.1111f, -0.0362f},
    {-0.3165f, -0.2492f, -0.2188f},
};
constexpr float kSdxlRgbBias[3] = {0.1084f, -0.0175f, -0.0011f};

std::uint8_t previewByte(float value) {
  if (std::isnan(value)) return 0;
  float unit = (value + 1.0f) / 2.0f;
  unit = unit < 0.0f ? 0.0f : (unit > 1.0f ? 1.0f : unit);
  return static_cast<std::uint8_t>(unit * 255.0f);  // truncates, as torch's .to(uint8) does
}

}  // namespace

Rgb8Image latentPreview(std::span<const float> latents, int channels, int height, int width,
                        int upscale) {
  if (channels != kLatentChannels || height <= 0 || width <= 0 || upscale <= 0 ||
      latents.size() != static_cast<std::size_t>(channels) * height * width) {
    return {};
  }
  Rgb8Image image;
  image.width = width * upscale;
  image.height = height * upscale;
  image.pixels.resize(static_cast<std::size_t>(image.width) * image.height * 3);
  const std::size_t plane = static_cast<std::size_t>(height) * width;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const std::size_t index = static_cast<std::size_t>(y) * width + x;
      std::uint8_t rgb[3];
      for (int colour = 0; colour < 3; ++colour) {
        float sum = kSdxlRgbBias[colour];
        for (int channel = 0; channel < kLatentChannels; ++channel) {
          sum += latents[channel * plane + index] * kSdxlRgbFactors[channel][colour];
        }
        rgb[colour] = previewByte(sum);
      }
      for (int dy = 0; dy < upscale; ++dy) {
        std::uint8_t* row =
            image.pixels.data() + (static_cast<std::size_t>(y * upscale + dy) * image.width +
                                   static_cast<std::size_t>(x) * upscale) *
                                      3;
        for (int dx = 0; dx < upscale; ++dx) {
          row[dx * 3 + 0] = rgb[0];
          row[dx * 3 + 1] = rgb[1];
          row[dx * 3 + 2] = rgb[2];
        }
      }
    }
  }
  return image;
}

}  // namespace deviceops::imaging
