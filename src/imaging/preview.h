// Cheap previews of SDXL latents without the VAE, for progress images while sampling.
#pragma once

#include <span>

#include "imaging/image.h"

namespace deviceops::imaging {

// A preview of SDXL latents (4 x height x width, planar, as the sampler holds them: no scaling is
// applied) through the linear latent -> RGB projection ComfyUI uses for SDXL: rgb = factors^T z +
// bias, then clamp((rgb + 1) / 2, 0, 1) * 255 truncated to 8 bits (ComfyUI's preview_to_image),
// each latent pixel repeated `upscale` x `upscale` times (nearest). NaN maps to 0.
// Returns an empty image (0 x 0) when channels != 4, a dimension or upscale is not positive, or
// latents.size() != channels * height * width. Thread-safe.
Rgb8Image latentPreview(std::span<const float> latents, int channels, int height, int width,
                        int upscale = 1);

}  // namespace deviceops::imaging
