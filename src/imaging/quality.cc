#include "imaging/quality.h"

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace deviceops::imaging {
namespace {

constexpr double kFlatStd = 1e-3;
constexpr double kBlackMean = 0.02;

double toUnit(float value) {
  const double unit = static_cast<double>(value) / 2.0 + 0.5;
  return unit < 0.0 ? 0.0 : (unit > 1.0 ? 1.0 : unit);
}

bool shapeMatches(const PlanarImage& image) {
  return image.channels > 0 && image.height > 0 && image.width > 0 &&
         image.data.size() == static_cast<std::size_t>(image.channels) * image.height * image.width;
}

// Running mean and population variance (Welford), in one pass over the data.
class Moments {
 public:
  void add(double value) {
    ++count_;
    const double delta = value - mean_;
    mean_ += delta / static_cast<double>(count_);
    squares_ += delta * (value - mean_);
  }
  std::uint64_t count() const { return count_; }
  double mean() const { return mean_; }
  double variance() const { return count_ == 0 ? 0.0 : squares_ / static_cast<double>(count_); }
  double std() const { return std::sqrt(variance()); }

 private:
  std::uint64_t count_ = 0;
  double mean_ = 0, squares_ = 0;
};

void countValues(std::span<const float> values, QualitySignals* signals) {
  std::uint64_t clipped = 0;
  for (const float value : values) {
    if (std::isnan(value)) {
      ++signals->nanCount;
    } else {
      if (std::isinf(value)) ++signals->infCount;
      if (value < -1.0f || value > 1.0f) ++clipped;
    }
  }
  signals->clippedFraction =
      values.empty() ? 0.0 : static_cast<double>(clipped) / static_cast<double>(values.size());
}

// Luma per pixel, NaN where the pixel is not valid.
std::vector<double> lumaPlane(const PlanarImage& image) {
  const std::size_t plane = static_cast<std::size_t>(image.height) * image.width;
  std::vector<double> luma(plane);
  const float* data = image.data.data();
  for (std::size_t index = 0; index < plane; ++index) {
    if (image.channels == 1) {
      const float value = data[index];
      luma[index] = std::isfinite(value) ? toUnit(value) : std::nan("");
      continue;
    }
    const float red = data[index], green = data[plane + index], blue = data[2 * plane + index];
    const bool valid = std::isfinite(red) && std::isfinite(green) && std::isfinite(blue);
    luma[index] =
        valid ? 0.299 * toUnit(red) + 0.587 * toUnit(green) + 0.114 * toUnit(blue) : std::nan("");
  }
  return luma;
}

double colourfulnessOf(const PlanarImage& image) {
  if (image.channels < 3) return 0.0;
  const std::size_t plane = static_cast<std::size_t>(image.height) * image.width;
  Moments redGreen, yellowBlue;
  for (std::size_t index = 0; index < plane; ++index) {
    const float red = image.data[index], green = image.data[plane + index],
                blue = image.data[2 * plane + index];
    if (!std::isfinite(red) || !std::isfinite(green) || !std::isfinite(blue)) continue;
    const double r = toUnit(red) * 255.0, g = toUnit(green) * 255.0, b = toUnit(blue) * 255.0;
    redGreen.add(r - g);
    yellowBlue.add(0.5 * (r + g) - b);
  }
  if (redGreen.count() == 0) return 0.0;
  return std::sqrt(redGreen.variance() + yellowBlue.variance()) +
         0.3 * std::sqrt(redGreen.mean() * redGreen.mean() + yellowBlue.mean() * yellowBlue.mean());
}

void measureInterior(const std::vector<double>& luma, int height, int width,
                     QualitySignals* signals) {
  Moments laplacian, tenengrad, residual;
  const auto at = [&](int y, int x) { return luma[static_cast<std::size_t>(y) * width + x]; };
  for (int y = 1; y + 1 < height; ++y) {
    for (int x = 1; x + 1 < width; ++x) {
      double n[3][3];
      bool valid = true;
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) {
          n[dy + 1][dx + 1] = at(y + dy, x + dx);
          valid = valid && !std::isnan(n[dy + 1][dx + 1]);
        }
      }
      if (!valid) continue;
      laplacian.add(n[0][1] + n[1][0] + n[1][2] + n[2][1] - 4.0 * n[1][1]);
      const double gx = (n[0][2] + 2.0 * n[1][2] + n[2][2]) - (n[0][0] + 2.0 * n[1][0] + n[2][0]);
      const double gy = (n[2][0] + 2.0 * n[2][1] + n[2][2]) - (n[0][0] + 2.0 * n[0][1] + n[0][2]);
      tenengrad.add(gx * gx + gy * gy);
      const double blurred = (n[0][0] + n[0][2] + n[2][0] + n[2][2] +
                              2.0 * (n[0][1] + n[1][0] + n[1][2] + n[2][1]) + 4.0 * n[1][1]) /
                             16.0;
      residual.add(n[1][1] - blurred);
    }
  }
  signals->laplacianVariance = laplacian.variance();
  signals->tenengrad = tenengrad.mean();
  signals->noiseResidual = residual.std();
}

}  // namespace

QualitySignals measureImage(const PlanarImage& decoded) {
  QualitySignals signals;
  countValues(decoded.data, &signals);
  if (!shapeMatches(decoded) || decoded.channels == 2) {
    signals.flat = signals.black = true;
    return signals;
  }
  const std::vector<double> luma = lumaPlane(decoded);
  Moments moments;
  for (const double value : luma) {
    if (!std::isnan(value)) moments.add(value);
  }
  signals.meanLuma = moments.mean();
  signals.stdLuma = moments.std();
  signals.flat = moments.count() == 0 || signals.stdLuma < kFlatStd;
  signals.black = signals.meanLuma < kBlackMean;
  signals.colourfulness = colourfulnessOf(decoded);
  if (decoded.height >= 3 && decoded.width >= 3) {
    measureInterior(luma, decoded.height, decoded.width, &signals);
  }
  return signals;
}

nlohmann::json toJson(const QualitySignals& signals) {
  return {{"nanCount", signals.nanCount},
          {"infCount", signals.infCount},
          {"meanLuma", signals.meanLuma},
          {"stdLuma", signals.stdLuma},
          {"flat", signals.flat},
          {"black", signals.black},
          {"laplacianVariance", signals.laplacianVariance},
          {"tenengrad", signals.tenengrad},
          {"noiseResidual", signals.noiseResidual},
          {"clippedFraction", signals.clippedFraction},
          {"colourfulness", signals.colourfulness}};
}

LatentStatistics measureLatents(std::span<const float> latents) {
  LatentStatistics statistics;
  Moments moments;
  for (const float value : latents) {
    if (std::isnan(value)) {
      ++statistics.nanCount;
    } else if (std::isinf(value)) {
      ++statistics.infCount;
    } else {
      moments.add(value);
    }
  }
  statistics.mean = moments.mean();
  statistics.std = moments.std();
  return statistics;
}

double seamScore(const PlanarImage& image, std::span<const int> boundaryRows,
                 std::span<const int> boundaryColumns) {
  if (!shapeMatches(image)) return 1.0;
  const int height = image.height, width = image.width;
  std::vector<bool> rowIsBoundary(height, false), columnIsBoundary(width, false);
  bool anyBoundary = false;
  for (const int row : boundaryRows) {
    if (row >= 1 && row < height) {
      rowIsBoundary[row] = true;
      anyBoundary = true;
    }
  }
  for (const int column : boundaryColumns) {
    if (column >= 1 && column < width) {
      columnIsBoundary[column] = true;
      anyBoundary = true;
    }
  }
  if (!anyBoundary) return 1.0;
  double seamSum = 0, otherSum = 0;
  std::uint64_t seamCount = 0, otherCount = 0;
  const auto addPair = [&](float first, float second, bool boundary) {
    if (!std::isfinite(first) || !std::isfinite(second)) return;
    const double difference = std::fabs(static_cast<double>(second) - first);
    if (boundary) {
      seamSum += difference;
      ++seamCount;
    } else {
      otherSum += difference;
      ++otherCount;
    }
  };
  const std::size_t plane = static_cast<std::size_t>(height) * width;
  for (int channel = 0; channel < image.channels; ++channel) {
    const float* data = image.data.data() + plane * channel;
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        const float value = data[static_cast<std::size_t>(y) * width + x];
        if (x > 0)
          addPair(data[static_cast<std::size_t>(y) * width + x - 1], value, columnIsBoundary[x]);
        if (y > 0)
          addPair(data[static_cast<std::size_t>(y - 1) * width + x], value, rowIsBoundary[y]);
      }
    }
  }
  if (seamCount == 0) return 1.0;
  const double seamMean = seamSum / static_cast<double>(seamCount);
  const double otherMean = otherCount == 0 ? 0.0 : otherSum / static_cast<double>(otherCount);
  if (otherMean == 0.0) {
    return seamMean == 0.0 ? 1.0 : std::numeric_limits<double>::infinity();
  }
  return seamMean / otherMean;
}

}  // namespace deviceops::imaging
