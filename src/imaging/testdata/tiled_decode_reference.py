"""Reference for tiled_decode_test.cc: diffusers' AutoencoderKL.tiled_decode tiling and blending
(models/autoencoders/autoencoder_kl.py, blend_v / blend_h / tiled_decode), written again in
numpy float32 with a toy decoder that has spatial context (it adds the mean of its tile).

Usage: tiled_decode_reference.py HEIGHT WIDTH TILE_LATENT OVERLAP
Prints "3 H W" and then the decoded image, planar, one value per line (repr of float32)."""
import sys

import numpy as np

SCALE = 8
CHANNELS = 4
WEIGHTS = [[0.5, -0.25, 0.125, 0.75], [-0.5, 0.25, 1.0, 0.0], [0.3, 0.3, -0.3, 0.1]]


def make_latent(height, width):
    z = np.zeros((CHANNELS, height, width), dtype=np.float32)
    for c in range(CHANNELS):
        for y in range(height):
            for x in range(width):
                z[c, y, x] = ((c * 31 + y * 17 + x * 7) % 23) / 11.0 - 1.0
    return z


def decode(tile):
    """Toy decoder, mirrored in tiled_decode_test.cc: float64 arithmetic, float32 result."""
    channels, th, tw = tile.shape
    t64 = tile.astype(np.float64)
    mean = t64.sum() / t64.size
    out = np.zeros((3, th * SCALE, tw * SCALE), dtype=np.float64)
    for k in range(3):
        base = sum(WEIGHTS[k][c] * t64[c] for c in range(channels)) + mean
        up = np.repeat(np.repeat(base, SCALE, axis=0), SCALE, axis=1)
        py = np.arange(th * SCALE)[:, None] % SCALE
        px = np.arange(tw * SCALE)[None, :] % SCALE
        out[k] = up + 0.01 * py - 0.02 * px
    return out.astype(np.float32)


def blend_v(a, b, extent):
    extent = min(a.shape[1], b.shape[1], extent)
    for y in range(extent):
        w = np.float32(y / extent)
        b[:, y, :] = a[:, -extent + y, :] * np.float32(1 - y / extent) + b[:, y, :] * w
    return b


def blend_h(a, b, extent):
    extent = min(a.shape[2], b.shape[2], extent)
    for x in range(extent):
        w = np.float32(x / extent)
        b[:, :, x] = a[:, :, -extent + x] * np.float32(1 - x / extent) + b[:, :, x] * w
    return b


def tiled_decode(z, tile_latent, overlap):
    tile_sample = tile_latent * SCALE
    overlap_size = int(tile_latent * (1 - overlap))
    blend_extent = int(tile_sample * overlap)
    row_limit = tile_sample - blend_extent
    rows = []
    for i in range(0, z.shape[1], overlap_size):
        row = []
        for j in range(0, z.shape[2], overlap_size):
            row.append(decode(z[:, i:i + tile_latent, j:j + tile_latent]))
        rows.append(row)
    result_rows = []
    for i, row in enumerate(rows):
        result_row = []
        for j, tile in enumerate(row):
            if i > 0:
                tile = blend_v(rows[i - 1][j], tile, blend_extent)
            if j > 0:
                tile = blend_h(row[j - 1], tile, blend_extent)
            result_row.append(tile[:, :row_limit, :row_limit])
        result_rows.append(np.concatenate(result_row, axis=2))
    return np.concatenate(result_rows, axis=1)


def main():
    height, width, tile_latent = (int(v) for v in sys.argv[1:4])
    overlap = float(sys.argv[4])
    image = tiled_decode(make_latent(height, width), tile_latent, overlap)
    lines = ["%d %d %d" % image.shape]
    lines.extend(repr(float(v)) for v in image.reshape(-1))
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
