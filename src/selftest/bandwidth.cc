#include "selftest/bandwidth.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

namespace deviceops::selftest {
namespace {

constexpr std::array<std::pair<Direction, std::string_view>, 3> kNames{{
    {Direction::kHostToDevice, "hostToDevice"},
    {Direction::kDeviceToHost, "deviceToHost"},
    {Direction::kDeviceToDevice, "deviceToDevice"},
}};

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, "bandwidth: " + std::move(message));
}

// One transfer of `bytes` in `direction`.
Status transfer(MemoryWindow& window, Direction direction, std::vector<unsigned char>& host,
                std::uint64_t bytes) {
  switch (direction) {
    case Direction::kHostToDevice:
      return window.write(0, host.data(), bytes);
    case Direction::kDeviceToHost:
      return window.read(0, host.data(), bytes);
    case Direction::kDeviceToDevice:
      return window.copy(window.size() / 2, 0, bytes);
  }
  return makeError(ErrorCode::kInternal, "bandwidth: unknown direction");
}

}  // namespace

std::string_view directionName(Direction direction) {
  for (const auto& [candidate, name] : kNames) {
    if (candidate == direction) return name;
  }
  return "unknown";
}

std::optional<Direction> parseDirection(std::string_view text) {
  for (const auto& [direction, name] : kNames) {
    if (name == text) return direction;
  }
  return std::nullopt;
}

Result<BandwidthResult> measureBandwidth(MemoryWindow& window, Direction direction,
                                         const BandwidthOptions& options) {
  const std::uint64_t limit =
      direction == Direction::kDeviceToDevice ? window.size() / 2 : window.size();
  if (limit == 0) return invalid("the memory window is too small");
  if (options.minIterations < 1) {
    return invalid(fmt::format("minIterations must be >= 1, got {}", options.minIterations));
  }
  if (options.budget.count() < 0) return invalid("the time budget is negative");
  if (options.chunkBytes > limit) {
    return invalid(fmt::format("a chunk of {} bytes does not fit: at most {} bytes for {}",
                               options.chunkBytes, limit, directionName(direction)));
  }
  const std::uint64_t chunk = options.chunkBytes != 0
                                  ? options.chunkBytes
                                  : std::min(kMaxDefaultBandwidthChunkBytes, limit);

  BandwidthResult result;
  result.direction = direction;
  result.chunkBytes = chunk;
  auto stopNow = [&] {
    if (!options.stop.due()) return false;
    result.stopped = true;
    result.cancelled = options.stop.isCancelled();
    return true;
  };

  // Allocated and written (every page touched) before anything is timed.
  std::vector<unsigned char> host(chunk);
  for (std::uint64_t i = 0; i < chunk; ++i) host[i] = static_cast<unsigned char>(i * 131 + 7);
  if (stopNow()) return result;
  if (direction == Direction::kDeviceToDevice) RETURN_IF_ERROR(window.write(0, host.data(), chunk));
  RETURN_IF_ERROR(transfer(window, direction, host, chunk));  // warm-up

  std::vector<double> times;
  double elapsed = 0;  // summed transfer time
  const auto loopStart = std::chrono::steady_clock::now();
  auto budgetSpent = [&] { return std::chrono::steady_clock::now() - loopStart >= options.budget; };
  while (result.iterations < options.minIterations || !budgetSpent()) {
    if (stopNow()) break;
    const auto start = std::chrono::steady_clock::now();
    RETURN_IF_ERROR(transfer(window, direction, host, chunk));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    times.push_back(seconds);
    elapsed += seconds;
    ++result.iterations;
  }

  result.bytesMoved = static_cast<std::uint64_t>(result.iterations) * chunk;
  result.seconds = elapsed;
  if (elapsed > 0) result.bytesPerSecond = static_cast<double>(result.bytesMoved) / elapsed;
  result.iterationSeconds = summarize(std::move(times));
  if (result.iterationSeconds.p50 > 0) {
    result.p50BytesPerSecond = static_cast<double>(chunk) / result.iterationSeconds.p50;
  }
  return result;
}

}  // namespace deviceops::selftest
