#include "imaging/tiled_decode.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>

namespace deviceops::imaging {
namespace {

constexpr int kDecodedChannels = 3;

struct Geometry {
  int stride = 0;      // latent rows/columns between tile starts
  int tileSample = 0;  // tile side in pixels
  int blend = 0;       // blend extent in pixels
  int rowLimit = 0;    // pixels kept per tile
};

Result<Geometry> geometryOf(const TilingOptions& options, int scale) {
  if (options.tileLatent < 2) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("tileLatent must be at least 2, is {}", options.tileLatent));
  }
  if (!(options.overlap >= 0.0 && options.overlap <= 0.9)) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("overlap must be in [0, 0.9], is {}", options.overlap));
  }
  Geometry geometry;
  // The same double arithmetic and truncation as Python's int(...).
  geometry.stride = static_cast<int>(options.tileLatent * (1.0 - options.overlap));
  geometry.tileSample = options.tileLatent * scale;
  geometry.blend = static_cast<int>(geometry.tileSample * options.overlap);
  geometry.rowLimit = geometry.tileSample - geometry.blend;
  if (geometry.stride * scale != geometry.rowLimit) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("tileLatent {} with overlap {} does not tile: the stride of {} latents is {} "
                    "pixels but each tile keeps {}",
                    options.tileLatent, options.overlap, geometry.stride, geometry.stride * scale,
                    geometry.rowLimit));
  }
  return geometry;
}

std::vector<float> extractTile(std::span<const float> latent, int channels, int height, int width,
                               int top, int left, int tileHeight, int tileWidth) {
  std::vector<float> tile(static_cast<std::size_t>(channels) * tileHeight * tileWidth);
  auto out = tile.begin();
  for (int channel = 0; channel < channels; ++channel) {
    for (int y = top; y < top + tileHeight; ++y) {
      const auto row = latent.begin() + (static_cast<std::size_t>(channel) * height + y) * width;
      out = std::copy(row + left, row + left + tileWidth, out);
    }
  }
  return tile;
}

Result<PlanarImage> decodeChecked(const TileDecoder& decodeTile, std::vector<float> tile,
                                  int tileHeight, int tileWidth, int scale) {
  ASSIGN_OR_RETURN(PlanarImage image, decodeTile(std::move(tile), tileHeight, tileWidth));
  const int expectedHeight = tileHeight * scale, expectedWidth = tileWidth * scale;
  const std::size_t expectedSize =
      static_cast<std::size_t>(kDecodedChannels) * expectedHeight * expectedWidth;
  if (image.channels != kDecodedChannels || image.height != expectedHeight ||
      image.width != expectedWidth || image.data.size() != expectedSize) {
    return makeError(
        ErrorCode::kInternal,
        fmt::format("the decoder returned {}x{}x{} ({} values) for a {}x{} latent "
                    "tile; expected {}x{}x{}",
                    image.channels, image.height, image.width, image.data.size(), tileHeight,
                    tileWidth, kDecodedChannels, expectedHeight, expectedWidth));
  }
  return image;
}

// diffusers' blend_v: the first rows of `below` fade in from the last rows of `above`.
void blendVertical(const PlanarImage& above, PlanarImage& below, int extent) {
  extent = std::min({above.height, below.height, extent});
  const int width = below.width;  // equal to above.width: the same tile column
  for (int channel = 0; channel < kDecodedChannels; ++channel) {
    const float* a = above.data.data() + static_cast<std::size_t>(channel) * above.height * width;
    float* b = below.data.data() + static_cast<std::size_t>(channel) * below.height * width;
    for (int y = 0; y < extent; ++y) {
      const double ratio = static_cast<double>(y) / extent;
      const auto keep = static_cast<float>(ratio), fade = static_cast<float>(1.0 - ratio);
      const float* aRow = a + static_cast<std::size_t>(above.height - extent + y) * width;
      float* bRow = b + static_cast<std::size_t>(y) * width;
      for (int x = 0; x < width; ++x) bRow[x] = aRow[x] * fade + bRow[x] * keep;
    }
  }
}

// diffusers' blend_h: the first columns of `right` fade in from the last columns of `left`.
void blendHorizontal(const PlanarImage& left, PlanarImage& right, int extent) {
  extent = std::min({left.width, right.width, extent});
  const int height = right.height;  // equal to left.height: the same tile row
  for (int channel = 0; channel < kDecodedChannels; ++channel) {
    for (int y = 0; y < height; ++y) {
      const float* aRow =
          left.data.data() + (static_cast<std::size_t>(channel) * height + y) * left.width;
      float* bRow =
          right.data.data() + (static_cast<std::size_t>(channel) * height + y) * right.width;
      for (int x = 0; x < extent; ++x) {
        const double ratio = static_cast<double>(x) / extent;
        bRow[x] = aRow[left.width - extent + x] * static_cast<float>(1.0 - ratio) +
                  bRow[x] * static_cast<float>(ratio);
      }
    }
  }
}

// Copies tile[:rows, :columns] to output at (top, left).
void place(const PlanarImage& tile, int rows, int columns, PlanarImage& output, int top, int left) {
  for (int channel = 0; channel < kDecodedChannels; ++channel) {
    for (int y = 0; y < rows; ++y) {
      const float* source =
          tile.data.data() + (static_cast<std::size_t>(channel) * tile.height + y) * tile.width;
      float* target = output.data.data() +
                      (static_cast<std::size_t>(channel) * output.height + top + y) * output.width +
                      left;
      std::copy(source, source + columns, target);
    }
  }
}

}  // namespace

Result<PlanarImage> tiledDecode(std::span<const float> latent, int channels, int height, int width,
                                const TilingOptions& options, const TileDecoder& decodeTile,
                                TilingReport* report, int scale) {
  if (channels <= 0 || height <= 0 || width <= 0 || scale <= 0) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("bad latent shape {}x{}x{} or scale {}", channels, height, width, scale));
  }
  if (latent.size() != static_cast<std::size_t>(channels) * height * width) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("a {}x{}x{} latent needs {} values, has {}", channels, height, width,
                    static_cast<std::size_t>(channels) * height * width, latent.size()));
  }
  ASSIGN_OR_RETURN(const Geometry geometry, geometryOf(options, scale));
  TilingReport local;
  TilingReport& out = report != nullptr ? *report : local;
  out = TilingReport{};
  out.tileLatent = options.tileLatent;

  if (height <= options.tileLatent && width <= options.tileLatent) {
    out.tiles = 1;
    return decodeChecked(decodeTile, std::vector<float>(latent.begin(), latent.end()), height,
                         width, scale);
  }

  PlanarImage output;
  output.channels = kDecodedChannels;
  output.height = height * scale;
  output.width = width * scale;
  output.data.resize(static_cast<std::size_t>(kDecodedChannels) * output.height * output.width);

  std::vector<PlanarImage> previousRow, currentRow;
  for (int top = 0, tileRow = 0; top < height; top += geometry.stride, ++tileRow) {
    const int tileHeight = std::min(options.tileLatent, height - top);
    if (tileRow > 0) out.boundaryRows.push_back(tileRow * geometry.rowLimit);
    currentRow.clear();
    for (int left = 0, tileColumn = 0; left < width; left += geometry.stride, ++tileColumn) {
      const int tileWidth = std::min(options.tileLatent, width - left);
      if (tileRow == 0 && tileColumn > 0) {
        out.boundaryColumns.push_back(tileColumn * geometry.rowLimit);
      }
      ASSIGN_OR_RETURN(PlanarImage tile,
                       decodeChecked(decodeTile,
                                     extractTile(latent, channels, height, width, top, left,
                                                 tileHeight, tileWidth),
                                     tileHeight, tileWidth, scale));
      ++out.tiles;
      if (tileRow > 0) blendVertical(previousRow[tileColumn], tile, geometry.blend);
      if (tileColumn > 0) blendHorizontal(currentRow[tileColumn - 1], tile, geometry.blend);
      place(tile, std::min(geometry.rowLimit, tile.height), std::min(geometry.rowLimit, tile.width),
            output, tileRow * geometry.rowLimit, tileColumn * geometry.rowLimit);
      currentRow.push_back(std::move(tile));
    }
    std::swap(previousRow, currentRow);
  }
  return output;
}

}  // namespace deviceops::imaging
