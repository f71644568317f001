// Transfer bandwidth of a MemoryWindow: host -> device, device -> host and device -> device, in
// the manner of nvbandwidth's copy-engine tests (one buffer moved repeatedly, time per transfer).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/result.h"
#include "selftest/latency.h"
#include "selftest/memory_window.h"

namespace deviceops::selftest {

enum class Direction { kHostToDevice, kDeviceToHost, kDeviceToDevice };
// "hostToDevice" | "deviceToHost" | "deviceToDevice".
std::string_view directionName(Direction direction);
std::optional<Direction> parseDirection(std::string_view text);

inline constexpr std::uint64_t kMaxDefaultBandwidthChunkBytes = 256ULL << 20;

struct BandwidthOptions {
  // Bytes per transfer; 0 = min(256 MiB, window) for host <-> device and min(256 MiB, window / 2)
  // for device -> device. An explicit size above that limit is kInvalidArgument.
  std::uint64_t chunkBytes = 0;
  // Timed transfers continue until the budget (wall time since the first timed transfer) is spent
  // and at least minIterations ran, whichever is later, unless the Stop becomes due first.
  std::chrono::duration<double> budget = std::chrono::seconds(1);
  int minIterations = 3;
  Stop stop;  // checked before the warm-up and between transfers
};

struct BandwidthResult {
  Direction direction = Direction::kHostToDevice;
  std::uint64_t chunkBytes = 0;
  // iterations * chunkBytes. For device -> device this counts the bytes copied, not read plus
  // written (nvbandwidth counts the same way), so it is comparable with the other directions.
  std::uint64_t bytesMoved = 0;
  double seconds = 0;               // summed time of the timed transfers (warm-up excluded)
  double bytesPerSecond = 0;        // bytesMoved / seconds; 0 when nothing was timed
  int iterations = 0;               // timed transfers
  LatencySummary iterationSeconds;  // per timed transfer
  double p50BytesPerSecond = 0;     // chunkBytes / iterationSeconds.p50
  bool stopped = false;             // the Stop ended the measurement (maybe below minIterations)
  bool cancelled = false;           // ... because Stop::cancelled was set
};

// Moves `chunkBytes` repeatedly: host -> device writes the window's [0, chunk); device -> host
// reads it; device -> device copies [0, chunk) to [size / 2, size / 2 + chunk). One untimed
// warm-up transfer runs first; the host buffer is allocated and written before any transfer (and,
// for device -> device, written into the source range before the warm-up), so page faults are not
// timed. The window's previous contents of the ranges used are overwritten.
//
// Errors: an empty window, a chunk that does not fit, minIterations < 1 or a negative budget is
// kInvalidArgument; a failing transfer returns its error. Blocks for about the budget; not
// thread-safe per window.
Result<BandwidthResult> measureBandwidth(MemoryWindow& window, Direction direction,
                                         const BandwidthOptions& options);

}  // namespace deviceops::selftest
