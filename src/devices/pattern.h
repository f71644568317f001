// Memory test pattern shared by every allocator's verify(): 64-bit words whose value depends on
// the word's offset inside the block and on a seed, so that stuck bits (a bit that never
// changes across the block) and address aliasing (two offsets reaching the same cell) read back
// wrong. A verify is one write pass over the whole block, then one read pass.
//
// The pattern, defined byte by byte so that any offset and size work (tails included): the byte
// at block offset `o` is byte `o % 8` (little-endian) of patternWord(seed, o / 8).
//
// Thread-safety: every function is pure apart from the memory it is given; nextVerifySeed() is
// safe to call concurrently.
#pragma once

#include <cstdint>

#include "devices/allocator.h"

namespace deviceops::devices {

// The word at word index `wordIndex` (block offset 8 * wordIndex): seed + wordIndex * an odd
// 64-bit constant. Distinct for distinct indices (mod 2^64), and every bit position varies
// across neighbouring words.
std::uint64_t patternWord(std::uint64_t seed, std::uint64_t wordIndex);

// A different seed for each call (a counter through a mixing function), so repeated verifies of
// one block expect different bits in each cell. Deterministic for a given call order.
std::uint64_t nextVerifySeed();

// Writes the pattern for block offsets [blockOffset, blockOffset + bytes) into
// `destination[0, bytes)`. `destination` needs no particular alignment.
void writePattern(void* destination, std::uint64_t bytes, std::uint64_t blockOffset,
                  std::uint64_t seed);

struct PatternCheck {
  // Words (8-byte cells of the block, a partial first or last word counting as one) that differ.
  std::uint64_t errors = 0;
  std::uint64_t firstErrorOffset = 0;  // block offset of the first bad word; valid if errors > 0
};

// Compares `source[0, bytes)` with the pattern for block offsets [blockOffset, blockOffset +
// bytes). Used on its own by chunked verifies (staging copies) and by tests that corrupt memory
// between the write and the read pass.
PatternCheck checkPattern(const void* source, std::uint64_t bytes, std::uint64_t blockOffset,
                          std::uint64_t seed);

// Adds `check` (of a chunk later in the block than any added before) to `report`.
void addCheck(VerifyReport& report, const PatternCheck& check);

// The whole verify over host-visible memory `data[0, bytes)` (block offset 0): write pass, then
// read pass, each timed with std::chrono::steady_clock.
VerifyReport verifyHostMemory(void* data, std::uint64_t bytes, std::uint64_t seed);

}  // namespace deviceops::devices
