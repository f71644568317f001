#include "imaging/image.h"

#include <cmath>
#include <cstddef>

namespace deviceops::imaging {
namespace {

std::uint8_t toByte(float value) {
  if (std::isnan(value)) return 0;
  float unit = value / 2.0f + 0.5f;
  unit = unit < 0.0f ? 0.0f : (unit > 1.0f ? 1.0f : unit);
  // std::nearbyint rounds half to even in the default rounding mode, as numpy's round does.
  return static_cast<std::uint8_t>(std::nearbyint(unit * 255.0f));
}

}  // namespace

Rgb8Image toRgb8(const PlanarImage& decoded) {
  const bool shapeOk = decoded.channels > 0 && decoded.height > 0 && decoded.width > 0 &&
                       decoded.data.size() == static_cast<std::size_t>(decoded.channels) *
                                                  decoded.height * decoded.width;
  if (!shapeOk || (decoded.channels != 1 && decoded.channels < 3)) return {};
  Rgb8Image image;
  image.width = decoded.width;
  image.height = decoded.height;
  const std::size_t plane = static_cast<std::size_t>(decoded.height) * decoded.width;
  image.pixels.resize(plane * 3);
  for (std::size_t index = 0; index < plane; ++index) {
    for (std::size_t channel = 0; channel < 3; ++channel) {
      const std::size_t source = decoded.channels == 1 ? 0 : channel;
      image.pixels[index * 3 + channel] = toByte(decoded.data[source * plane + index]);
    }
  }
  return image;
}

}  // namespace deviceops::imaging
