#include "devices/pattern.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <set>
#include <vector>

namespace deviceops::devices {
namespace {

constexpr std::uint64_t kSeed = 0x1234'5678'9abc'def0ULL;

TEST(PatternTest, WordsAreDistinctAndEveryBitVaries) {
  std::set<std::uint64_t> seen;
  std::uint64_t anySet = 0;
  std::uint64_t allSet = ~0ULL;
  for (std::uint64_t index = 0; index < 4096; ++index) {
    const std::uint64_t word = patternWord(kSeed, index);
    seen.insert(word);
    if (index < 64) {
      anySet |= word;
      allSet &= word;
    }
  }
  EXPECT_EQ(seen.size(), 4096u);  // no two offsets share a value: aliasing reads back wrong
  // Within 64 neighbouring words every bit is 1 somewhere and 0 somewhere: stuck bits show up.
  EXPECT_EQ(anySet, ~0ULL);
  EXPECT_EQ(allSet, 0u);
  EXPECT_NE(patternWord(kSeed, 7), patternWord(kSeed + 1, 7));
}

TEST(PatternTest, NextVerifySeedDiffersFromCallToCall) {
  const std::uint64_t first = nextVerifySeed();
  EXPECT_NE(first, nextVerifySeed());
}

TEST(PatternTest, RoundTripsAtAnyOffsetAndSize) {
  const std::uint64_t sizes[] = {1, 3, 7, 8, 9, 15, 16, 64, 4096 + 5};
  const std::uint64_t offsets[] = {0, 3, 8, 13, 4096};
  for (std::uint64_t size : sizes) {
    for (std::uint64_t offset : offsets) {
      SCOPED_TRACE(testing::Message() << "size " << size << " offset " << offset);
      std::vector<unsigned char> buffer(size + 1, 0xEE);
      writePattern(buffer.data(), size, offset, kSeed);
      EXPECT_EQ(buffer[size], 0xEE) << "wrote past the end";
      const PatternCheck check = checkPattern(buffer.data(), size, offset, kSeed);
      EXPECT_EQ(check.errors, 0u);
    }
  }
}

TEST(PatternTest, ChunkedWritesEqualOneWholeWrite) {
  constexpr std::uint64_t kBytes = 1000;
  std::vector<unsigned char> whole(kBytes);
  writePattern(whole.data(), kBytes, 0, kSeed);
  std::vector<unsigned char> chunked(kBytes);
  const std::uint64_t cuts[] = {0, 5, 8, 99, 512, 513, 1000};
  for (std::size_t i = 0; i + 1 < std::size(cuts); ++i) {
    writePattern(chunked.data() + cuts[i], cuts[i + 1] - cuts[i], cuts[i], kSeed);
  }
  EXPECT_EQ(whole, chunked);
  // The byte at offset o is byte o % 8 of word o / 8, little-endian.
  EXPECT_EQ(whole[8 * 10 + 3], static_cast<unsigned char>(patternWord(kSeed, 10) >> 24));
}

TEST(PatternTest, DetectsOneCorruptWordBetweenWriteAndRead) {
  constexpr std::uint64_t kBytes = 1 << 20;
  std::vector<unsigned char> buffer(kBytes);
  writePattern(buffer.data(), kBytes, 0, kSeed);
  buffer[8 * 1000 + 5] ^= 0x10;  // one flipped bit in word 1000
  PatternCheck check = checkPattern(buffer.data(), kBytes, 0, kSeed);
  EXPECT_EQ(check.errors, 1u);
  EXPECT_EQ(check.firstErrorOffset, 8000u);

  buffer[8 * 20] ^= 0x01;  // a second one, earlier
  check = checkPattern(buffer.data(), kBytes, 0, kSeed);
  EXPECT_EQ(check.errors, 2u);
  EXPECT_EQ(check.firstErrorOffset, 160u);
}

TEST(PatternTest, DetectsAddressAliasing) {
  // Two offsets that reach the same cell: the later write (word 4096) lands on word 0 too.
  constexpr std::uint64_t kBytes = 8 * 8192;
  std::vector<unsigned char> buffer(kBytes);
  writePattern(buffer.data(), kBytes, 0, kSeed);
  std::memcpy(buffer.data(), buffer.data() + 8 * 4096, 8);
  const PatternCheck check = checkPattern(buffer.data(), kBytes, 0, kSeed);
  EXPECT_EQ(check.errors, 1u);
  EXPECT_EQ(check.firstErrorOffset, 0u);
}

TEST(PatternTest, TailBytesAreWrittenAndChecked) {
  // 13 bytes: one whole word and a 5-byte tail, which counts as one word.
  std::vector<unsigned char> buffer(16, 0xEE);
  writePattern(buffer.data(), 13, 0, kSeed);
  EXPECT_EQ(buffer[13], 0xEE);
  EXPECT_EQ(buffer[12], static_cast<unsigned char>(patternWord(kSeed, 1) >> 32));
  buffer[12] ^= 0xFF;
  const PatternCheck check = checkPattern(buffer.data(), 13, 0, kSeed);
  EXPECT_EQ(check.errors, 1u);
  EXPECT_EQ(check.firstErrorOffset, 8u);
}

TEST(PatternTest, PartialFirstWordReportsItsWordOffset) {
  std::vector<unsigned char> buffer(10);
  writePattern(buffer.data(), 10, 5, kSeed);  // block offsets 5..14: words 0 (3 bytes), 1 (7)
  buffer[0] ^= 1;
  const PatternCheck check = checkPattern(buffer.data(), 10, 5, kSeed);
  EXPECT_EQ(check.errors, 1u);
  EXPECT_EQ(check.firstErrorOffset, 0u);
}

TEST(PatternTest, WrongSeedFailsEveryWord) {
  std::vector<unsigned char> buffer(8 * 100);
  writePattern(buffer.data(), buffer.size(), 0, kSeed);
  EXPECT_EQ(checkPattern(buffer.data(), buffer.size(), 0, kSeed + 1).errors, 100u);
}

TEST(PatternTest, AddCheckKeepsTheFirstErrorAndSums) {
  VerifyReport report;
  addCheck(report, PatternCheck{0, 0});
  EXPECT_EQ(report.errors, 0u);
  addCheck(report, PatternCheck{2, 64});
  addCheck(report, PatternCheck{3, 4096});
  EXPECT_EQ(report.errors, 5u);
  EXPECT_EQ(report.firstErrorOffset, 64u);
}

TEST(PatternTest, BandwidthIsBytesOverSecondsAndZeroWithoutTime) {
  VerifyReport report;
  report.bytesTested = 1000;
  EXPECT_EQ(report.writeBytesPerSecond(), 0.0);
  EXPECT_EQ(report.readBytesPerSecond(), 0.0);
  report.writeSeconds = 0.5;
  report.readSeconds = 0.25;
  EXPECT_DOUBLE_EQ(report.writeBytesPerSecond(), 2000.0);
  EXPECT_DOUBLE_EQ(report.readBytesPerSecond(), 4000.0);
}

TEST(PatternTest, VerifyHostMemoryPassesAndIsTimed) {
  constexpr std::uint64_t kBytes = 64ULL << 20;
  std::vector<unsigned char> buffer(kBytes);
  const VerifyReport report = verifyHostMemory(buffer.data(), kBytes, kSeed);
  EXPECT_EQ(report.bytesTested, kBytes);
  EXPECT_EQ(report.errors, 0u);
  EXPECT_GT(report.writeSeconds, 0.0);
  EXPECT_GT(report.readSeconds, 0.0);
  std::printf("[ timing ] pattern over 64 MiB of heap: write %.2f GB/s, read %.2f GB/s\n",
              report.writeBytesPerSecond() / 1e9, report.readBytesPerSecond() / 1e9);
}

}  // namespace
}  // namespace deviceops::devices
