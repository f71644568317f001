// Tiled VAE decoding with diffusers' blending, so large images decode in bounded memory and the
// result matches diffusers' AutoencoderKL.tiled_decode (models/autoencoders/autoencoder_kl.py).
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "common/result.h"
#include "imaging/image.h"

namespace deviceops::imaging {

struct TilingOptions {
  int tileLatent = 128;   // tile side in latent pixels (SDXL: sample_size 1024 / 8)
  double overlap = 0.25;  // diffusers' tile_overlap_factor
};

struct TilingReport {
  int tiles = 0;       // decodeTile calls made
  int tileLatent = 0;  // options.tileLatent
  // Output rows / columns where one tile's crop ends and the next begins (pixels, ascending);
  // empty for a single-call decode. Feed them to seamScore.
  std::vector<int> boundaryRows, boundaryColumns;
};

// Decodes one tile: a planar latent tile (channels x tileHeight x tileWidth, row-major, owned by
// the callee) to a PlanarImage of 3 x (scale * tileHeight) x (scale * tileWidth).
using TileDecoder =
    std::function<Result<PlanarImage>(std::vector<float> tile, int tileHeight, int tileWidth)>;

// Decodes one latent (channels x height x width, planar) with `decodeTile`, exactly as diffusers'
// tiled_decode does:
// - tiles start every stride = int(tileLatent * (1 - overlap)) latent rows and columns and are
//   tileLatent wide (smaller at the bottom and right edges);
// - blend extent e = int(tileLatent * scale * overlap) pixels: each tile, in row-major order, is
//   blended in place with the (already blended) tile above (blend_v), then with the (already
//   blended) tile to its left (blend_h): b[y] = a[H_a - e' + y] (1 - y/e') + b[y] (y/e') for
//   y < e' = min(e, H_a, H_b);
// - each tile is cropped to row_limit = tileLatent * scale - e pixels and the crops are
//   concatenated.
// When height and width are both <= tileLatent, decodeTile is called once on the whole latent.
// Tiles are decoded in row-major order, and only one row of decoded tiles is held at a time.
// The output is always 3 x (scale * height) x (scale * width).
// Errors: kInvalidArgument for latent.size() != channels * height * width, a non-positive
// dimension or scale, tileLatent < 2, overlap outside [0, 0.9] (or NaN), and for options whose
// crop does not equal the stride (row_limit != stride * scale: diffusers would then return an
// image of the wrong size; 0.25 and 0.5 with an even tileLatent are fine) -- options are checked
// even when one call suffices. Errors of decodeTile propagate unchanged; a decoded tile of the
// wrong size is kInternal naming the expected and received sizes.
Result<PlanarImage> tiledDecode(std::span<const float> latent, int channels, int height, int width,
                                const TilingOptions& options, const TileDecoder& decodeTile,
                                TilingReport* report = nullptr, int scale = 8);

}  // namespace deviceops::imaging
