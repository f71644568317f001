#include "devices/pattern.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>

namespace deviceops::devices {
namespace {

// 2^64 / golden ratio, odd: multiplying by it is a bijection on 64-bit words.
constexpr std::uint64_t kWordMultiplier = 0x9E3779B97F4A7C15ULL;
constexpr std::uint64_t kWordBytes = 8;

// The pattern's bytes [from, to) of word `wordIndex`, little-endian, into `out`.
void patternBytes(std::uint64_t seed, std::uint64_t wordIndex, unsigned from, unsigned to,
                  unsigned char* out) {
  const std::uint64_t word = patternWord(seed, wordIndex);
  for (unsigned byte = from; byte < to; ++byte) {
    out[byte - from] = static_cast<unsigned char>(word >> (8 * byte));
  }
}

// Keeps the compiler from forwarding the write pass's values into the read pass: the read pass
// must load what the memory holds.
void memoryBarrier(const void* data) { asm volatile("" : : "r"(data) : "memory"); }

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::uint64_t patternWord(std::uint64_t seed, std::uint64_t wordIndex) {
  return seed + wordIndex * kWordMultiplier;
}

std::uint64_t nextVerifySeed() {
  static std::atomic<std::uint64_t> counter{0};
  // splitmix64's finaliser.
  std::uint64_t z = counter.fetch_add(1, std::memory_order_relaxed) * kWordMultiplier + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void writePattern(void* destination, std::uint64_t bytes, std::uint64_t blockOffset,
                  std::uint64_t seed) {
  auto* out = static_cast<unsigned char*>(destination);
  std::uint64_t offset = blockOffset;
  const std::uint64_t end = blockOffset + bytes;
  // A partial first word when blockOffset is not a multiple of 8.
  if (offset % kWordBytes != 0 && offset < end) {
    const auto from = static_cast<unsigned>(offset % kWordBytes);
    const auto to = static_cast<unsigned>(std::min<std::uint64_t>(kWordBytes, from + bytes));
    patternBytes(seed, offset / kWordBytes, from, to, out);
    out += to - from;
    offset += to - from;
  }
  const std::uint64_t words = (end - offset) / kWordBytes;
  std::uint64_t value = patternWord(seed, offset / kWordBytes);
  for (std::uint64_t i = 0; i < words; ++i) {
    std::memcpy(out + i * kWordBytes, &value, kWordBytes);
    value += kWordMultiplier;
  }
  out += words * kWordBytes;
  offset += words * kWordBytes;
  if (offset < end) {  // tail bytes
    patternBytes(seed, offset / kWordBytes, 0, static_cast<unsigned>(end - offset), out);
  }
}

PatternCheck checkPattern(const void* source, std::uint64_t bytes, std::uint64_t blockOffset,
                          std::uint64_t seed) {
  PatternCheck check;
  auto note = [&check](std::uint64_t wordOffset) {
    if (check.errors == 0) check.firstErrorOffset = wordOffset;
    ++check.errors;
  };
  const auto* in = static_cast<const unsigned char*>(source);
  std::uint64_t offset = blockOffset;
  const std::uint64_t end = blockOffset + bytes;
  unsigned char expected[kWordBytes];
  // A partial word (head or tail): compared byte by byte, counted once.
  auto checkPartial = [&](unsigned from, unsigned to) {
    patternBytes(seed, offset / kWordBytes, from, to, expected);
    if (std::memcmp(in, expected, to - from) != 0) note(offset - from);
    in += to - from;
    offset += to - from;
  };
  if (offset % kWordBytes != 0 && offset < end) {
    const auto from = static_cast<unsigned>(offset % kWordBytes);
    checkPartial(from, static_cast<unsigned>(std::min<std::uint64_t>(kWordBytes, from + bytes)));
  }
  const std::uint64_t words = (end - offset) / kWordBytes;
  std::uint64_t value = patternWord(seed, offset / kWordBytes);
  for (std::uint64_t i = 0; i < words; ++i) {
    std::uint64_t actual;
    std::memcpy(&actual, in + i * kWordBytes, kWordBytes);
    if (actual != value) [[unlikely]] {
      note(offset + i * kWordBytes);
    }
    value += kWordMultiplier;
  }
  in += words * kWordBytes;
  offset += words * kWordBytes;
  if (offset < end) checkPartial(0, static_cast<unsigned>(end - offset));
  return check;
}

void addCheck(VerifyReport& report, const PatternCheck& check) {
  if (check.errors == 0) return;
  if (report.errors == 0) report.firstErrorOffset = check.firstErrorOffset;
  report.errors += check.errors;
}

VerifyReport verifyHostMemory(void* data, std::uint64_t bytes, std::uint64_t seed) {
  VerifyReport report;
  report.bytesTested = bytes;
  auto start = std::chrono::steady_clock::now();
  writePattern(data, bytes, 0, seed);
  memoryBarrier(data);
  report.writeSeconds = secondsSince(start);
  start = std::chrono::steady_clock::now();
  addCheck(report, checkPattern(data, bytes, 0, seed));
  report.readSeconds = secondsSince(start);
  return report;
}

double VerifyReport::writeBytesPerSecond() const {
  return writeSeconds > 0 ? static_cast<double>(bytesTested) / writeSeconds : 0.0;
}

double VerifyReport::readBytesPerSecond() const {
  return readSeconds > 0 ? static_cast<double>(bytesTested) / readSeconds : 0.0;
}

}  // namespace deviceops::devices
