#include "vae/probes.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "imaging/png.h"

namespace deviceops::vae {
namespace {

using imaging::PlanarImage;

PlanarImage blank(int side, float value) {
  PlanarImage image;
  image.channels = 3;
  image.height = image.width = side;
  image.data.assign(static_cast<std::size_t>(3) * side * side, value);
  return image;
}

void set(PlanarImage& image, int y, int x, std::array<float, 3> rgb) {
  const std::size_t plane = static_cast<std::size_t>(image.height) * image.width;
  for (int c = 0; c < 3; ++c) image.data[c * plane + y * image.width + x] = rgb[c];
}

PlanarImage gradient(int side) {
  PlanarImage image = blank(side, 0);
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const float u = static_cast<float>(x) / (side - 1), v = static_cast<float>(y) / (side - 1);
      set(image, y, x, {2 * u - 1, 2 * v - 1, (u + v) - 1});
    }
  }
  return image;
}

// Dark strokes of 1 to 3 pixels on a light page, like lines of text and a frame.
PlanarImage edges(int side) {
  PlanarImage image = blank(side, 0.9f);
  const int margin = side / 8;
  for (int y = margin; y < side - margin; y += 6) {
    for (int x = margin; x < side - margin; ++x) {
      const int stroke = 1 + (x / 5) % 3;
      if ((x / 3) % 4 != 3) {
        for (int dy = 0; dy < stroke && y + dy < side; ++dy)
          set(image, y + dy, x, {-0.9f, -0.9f, -0.8f});
      }
    }
  }
  for (int i = 0; i < side; ++i) {
    set(image, i, 1, {-1, -1, -1});
    set(image, 1, i, {-1, -1, -1});
  }
  return image;
}

PlanarImage texture(int side) {
  PlanarImage image = blank(side, 0);
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const float checker = ((x / 2 + y / 2) % 2 == 0) ? 0.5f : -0.5f;
      const float frequency = 0.5f + 2.5f * static_cast<float>(y) / side;
      const float stripes = 0.4f * std::sin(frequency * static_cast<float>(x));
      set(image, y, x, {checker + stripes, checker - stripes, stripes});
    }
  }
  return image;
}

PlanarImage discs(int side) {
  PlanarImage image = blank(side, 0);
  const std::array<std::array<float, 4>, 3> circles = {
      {{0.3f, 0.3f, 0.22f, 0}, {0.7f, 0.35f, 0.18f, 1}, {0.5f, 0.72f, 0.25f, 2}}};
  const std::array<std::array<float, 3>, 3> colours = {
      {{0.9f, -0.6f, -0.6f}, {-0.5f, 0.8f, -0.4f}, {-0.6f, -0.4f, 0.9f}}};
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      for (const auto& circle : circles) {
        const float dx = static_cast<float>(x) / side - circle[0];
        const float dy = static_cast<float>(y) / side - circle[1];
        if (dx * dx + dy * dy < circle[2] * circle[2]) {
          set(image, y, x, colours[static_cast<int>(circle[3])]);
        }
      }
    }
  }
  return image;
}

// Value noise: a uniform random value every 4 pixels, bilinearly interpolated.
PlanarImage noise(int side) {
  PlanarImage image = blank(side, 0);
  const int cells = side / 4 + 2;
  std::uint64_t state = 0x9e3779b97f4a7c15ull;
  std::vector<float> lattice(static_cast<std::size_t>(3) * cells * cells);
  for (float& value : lattice) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    value = static_cast<float>(state >> 40) / static_cast<float>(1 << 24) * 1.6f - 0.8f;
  }
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const int cy = y / 4, cx = x / 4;
      const float fy = (y % 4) / 4.0f, fx = (x % 4) / 4.0f;
      std::array<float, 3> rgb{};
      for (int c = 0; c < 3; ++c) {
        const auto at = [&](int i, int j) { return lattice[(c * cells + i) * cells + j]; };
        rgb[c] = (1 - fy) * ((1 - fx) * at(cy, cx) + fx * at(cy, cx + 1)) +
                 fy * ((1 - fx) * at(cy + 1, cx) + fx * at(cy + 1, cx + 1));
      }
      set(image, y, x, rgb);
    }
  }
  return image;
}

// A hue wheel at full saturation: the colours an SDXL fp16 VAE tends to wash out or clip.
PlanarImage colour(int side) {
  PlanarImage image = blank(side, 0);
  for (int y = 0; y < side; ++y) {
    for (int x = 0; x < side; ++x) {
      const float hue = 2 * std::numbers::pi_v<float> * static_cast<float>(x) / side;
      const float value = 1.0f - static_cast<float>(y) / side;
      set(image, y, x,
          {value * std::cos(hue), value * std::cos(hue - 2.0944f),
           value * std::cos(hue + 2.0944f)});
    }
  }
  return image;
}

}  // namespace

std::vector<Probe> syntheticProbes(int side) {
  return {{"gradient", gradient(side)}, {"edges", edges(side)}, {"texture", texture(side)},
          {"discs", discs(side)},       {"noise", noise(side)}, {"colour", colour(side)}};
}

Result<Probe> probeFromPng(std::string name, std::string_view pngBytes, int maxSide) {
  Result<imaging::DecodedPng> decoded = imaging::decodePng(pngBytes);
  if (!decoded.ok()) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("probe image {}: {}", name, decoded.error().message));
  }
  const imaging::Rgb8Image& rgb = decoded->image;
  const int width = std::min(rgb.width, maxSide) / 8 * 8;
  const int height = std::min(rgb.height, maxSide) / 8 * 8;
  if (width < 8 || height < 8) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("probe image {} is {}x{} pixels; at least 8x8 is needed", name,
                                 rgb.width, rgb.height));
  }
  const int top = (rgb.height - height) / 2, left = (rgb.width - width) / 2;
  Probe probe;
  probe.name = std::move(name);
  probe.image.channels = 3;
  probe.image.height = height;
  probe.image.width = width;
  probe.image.data.resize(static_cast<std::size_t>(3) * height * width);
  const std::size_t plane = static_cast<std::size_t>(height) * width;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const std::size_t source = (static_cast<std::size_t>(top + y) * rgb.width + left + x) * 3;
      for (int c = 0; c < 3; ++c) {
        probe.image.data[c * plane + y * width + x] = rgb.pixels[source + c] / 127.5f - 1.0f;
      }
    }
  }
  return probe;
}

}  // namespace deviceops::vae
