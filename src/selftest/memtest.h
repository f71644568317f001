// Memory pattern tests in the style of memtester and DCGM's memory diagnostic, run over a
// MemoryWindow (device memory seen through host <-> device transfers).
//
// Every test works in passes; a pass writes a pattern over the whole window and checks it by
// reading it back, chunk by chunk through one host buffer. Words are 64-bit; word i lives at byte
// offset 8 * i and its pattern is a function of i (and of the pass), so a chunk's pattern does
// not depend on the chunk size.
//
// Tail bytes: when size() is not a multiple of 8, the last word is partial and is tested too:
// only its first (size() % 8) bytes are written and compared, as the low-address bytes of the
// pattern word in host byte order. Errors in it report the expected and read values of those
// bytes alone (the missing bytes read as zero).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "selftest/memory_window.h"

namespace deviceops::selftest {

enum class PatternTest {
  // Each word holds its own byte offset in the window (write all, then read all); the second
  // pass holds the complement. Finds address lines that alias two offsets onto one cell.
  kAddressInAddress,
  // Pass k: word i = 1 << ((i + k) % 64). Up to 64 passes: every bit of every word is 1 once.
  kWalkingOnes,
  // The complement of walkingOnes: every bit of every word is 0 once.
  kWalkingZeros,
  // Pass with pattern p: fill p ascending; ascending: check p, write ~p; descending: check ~p,
  // write p. Pass 0 uses p = 0, later passes a random p from the seed.
  kMovingInversions,
  // Pass k: seeded pseudo-random words (splitmix64 of seed, k and i); write all, then read all.
  kRandomPattern,
};

inline constexpr std::array<PatternTest, 5> kAllPatternTests{
    PatternTest::kAddressInAddress, PatternTest::kWalkingOnes, PatternTest::kWalkingZeros,
    PatternTest::kMovingInversions, PatternTest::kRandomPattern};

// Stable names: "addressInAddress" | "walkingOnes" | "walkingZeros" | "movingInversions" |
// "randomPattern".
std::string_view patternTestName(PatternTest test);
std::optional<PatternTest> parsePatternTest(std::string_view text);

// Passes a test runs when MemtestOptions::maxPasses is 0: addressInAddress 2, walking 64,
// movingInversions 2, randomPattern 1.
int defaultPasses(PatternTest test);

inline constexpr std::uint64_t kDefaultMemtestChunkBytes = 16ULL << 20;

struct MemtestOptions {
  Stop stop;
  std::uint64_t seed = 0x5eed5eed5eed5eedULL;  // randomPattern words, movingInversions' p > 0
  // Passes to run; 0 = defaultPasses(test). Walking tests run at most 64 (more is cut to 64).
  int maxPasses = 0;
  // Bytes per transfer and the size of the one host buffer: rounded down to a multiple of 8
  // (at least 8) and never more than the window (rounded up to 8).
  std::uint64_t chunkBytes = kDefaultMemtestChunkBytes;
  // Called on the calling thread after every chunk with the fraction of the planned work done
  // (0..1, non-decreasing; 1 once every pass finished). May be empty.
  std::function<void(double)> progress;
};

struct MemtestResult {
  PatternTest test = PatternTest::kAddressInAddress;
  int plannedPasses = 0;
  int completedPasses = 0;
  // Bytes checked, counted once per pass each (a word checked twice in one pass, as in
  // movingInversions, counts once): size() * completedPasses plus the bytes the final check of an
  // interrupted pass reached.
  std::uint64_t bytesTested = 0;
  bool partial = false;    // no full pass finished (stopped before or during the first one)
  bool stopped = false;    // the Stop became due before every planned pass finished
  bool cancelled = false;  // stopped because Stop::cancelled was set (not the deadline)
  // Word reads that differed from the expected pattern, over all checks of all passes (a bad cell
  // checked three times and wrong each time counts 3).
  std::uint64_t errors = 0;
  std::uint64_t firstErrorOffset = 0;  // byte offset of the first differing word
  std::uint64_t firstExpected = 0;
  std::uint64_t firstActual = 0;
  std::uint64_t badBits = 0;  // OR of expected ^ actual over every differing word
  double seconds = 0;         // wall time of the whole test
};

// Runs one pattern test over the whole window. A failing transfer ends the test and its error is
// returned as it is. An empty window is kInvalidArgument. Not thread-safe per window (see
// MemoryWindow); blocks for the test's duration (check Stop to bound it).
Result<MemtestResult> runPatternTest(MemoryWindow& window, PatternTest test,
                                     const MemtestOptions& options);

// A human reason for a result with errors, e.g. "2 words differ; first at offset 0x100000:
// expected 0x0000000000000000, read 0x0000000000000008 (bit 3)". When other words differ in
// other bits, the union follows: "; bad bits over all words: 3, 17". Empty when errors == 0.
std::string failureReason(const MemtestResult& result);

}  // namespace deviceops::selftest
