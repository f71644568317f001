// The deterministic probe set a VAE comparison encodes and decodes (SDXL.md section 7): synthetic
// images that stress what VAEs get wrong — smooth gradients (banding, colour shifts), thin edges
// and text-like strokes (ringing, blur), fine textures (detail loss, aliasing), flat discs
// (edges against flat areas, colour fidelity), smooth noise, and saturated colour patches
// (clipping, washed-out colour). Planar RGB in [-1, 1], as a VAE encoder reads.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "imaging/image.h"

namespace deviceops::vae {

struct Probe {
  std::string name;
  imaging::PlanarImage image;
};

// "gradient", "edges", "texture", "discs", "noise", "colour": side x side each. Precondition:
// side is a positive multiple of 8 (callers validate it).
std::vector<Probe> syntheticProbes(int side);

// A user's PNG as a probe: the centred crop of at most maxSide x maxSide pixels whose sides are
// multiples of 8. kInvalidArgument when the PNG does not decode or is under 8 x 8 pixels.
Result<Probe> probeFromPng(std::string name, std::string_view pngBytes, int maxSide);

}  // namespace deviceops::vae
