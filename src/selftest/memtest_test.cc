#include "selftest/memtest.h"

#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "selftest/testing/host_window.h"

namespace deviceops::selftest {
namespace {

using testing::HostWindow;

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;

MemtestOptions options(int maxPasses, std::uint64_t chunkBytes) {
  MemtestOptions result;
  result.maxPasses = maxPasses;
  result.chunkBytes = chunkBytes;
  return result;
}

MemtestResult run(MemoryWindow& window, PatternTest test, const MemtestOptions& testOptions) {
  Result<MemtestResult> result = runPatternTest(window, test, testOptions);
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  return result.ok() ? *result : MemtestResult{};
}

TEST(MemtestNamesTest, RoundTripAndUnknown) {
  for (PatternTest test : kAllPatternTests) {
    EXPECT_EQ(parsePatternTest(patternTestName(test)), test);
  }
  EXPECT_EQ(patternTestName(PatternTest::kMovingInversions), "movingInversions");
  EXPECT_EQ(patternTestName(PatternTest::kAddressInAddress), "addressInAddress");
  EXPECT_EQ(parsePatternTest("walkingones"), std::nullopt);
  EXPECT_EQ(parsePatternTest(""), std::nullopt);
  EXPECT_EQ(defaultPasses(PatternTest::kWalkingZeros), 64);
  EXPECT_EQ(defaultPasses(PatternTest::kAddressInAddress), 2);
}

// Clean memory: no errors and every byte counted once per pass, whatever the window size
// (multiple of the chunk or not, multiple of 8 or not).
TEST(MemtestCleanTest, EveryTestEverySize) {
  struct Case {
    std::uint64_t size;
    std::uint64_t chunk;
  };
  for (Case sizes : {Case{1 * kMiB, 64 * kKiB}, Case{100000, 4096}, Case{1003, 64}, Case{5, 64},
                     Case{4096, 16 * kMiB}}) {
    for (PatternTest test : kAllPatternTests) {
      SCOPED_TRACE(::testing::Message() << patternTestName(test) << " size " << sizes.size);
      HostWindow window(sizes.size, 0xAB);
      const int passes = test == PatternTest::kWalkingOnes || test == PatternTest::kWalkingZeros
                             ? 3
                             : defaultPasses(test);
      MemtestResult result = run(window, test, options(passes, sizes.chunk));
      EXPECT_EQ(result.test, test);
      EXPECT_EQ(result.errors, 0U);
      EXPECT_EQ(result.badBits, 0U);
      EXPECT_EQ(result.plannedPasses, passes);
      EXPECT_EQ(result.completedPasses, passes);
      EXPECT_EQ(result.bytesTested, sizes.size * static_cast<std::uint64_t>(passes));
      EXPECT_FALSE(result.partial);
      EXPECT_FALSE(result.stopped);
      EXPECT_FALSE(result.cancelled);
      EXPECT_GE(result.seconds, 0);
      EXPECT_LE(window.largestTransfer(), std::min(sizes.chunk, (sizes.size + 7) / 8 * 8));
      EXPECT_EQ(failureReason(result), "");
    }
  }
}

TEST(MemtestCleanTest, PatternsAreTheDocumentedWords) {
  HostWindow window(64 * kKiB, 0xAB);
  ASSERT_TRUE(runPatternTest(window, PatternTest::kAddressInAddress, options(1, 4096)).ok());
  EXPECT_EQ(window.word(0), 0U);
  EXPECT_EQ(window.word(0x1238), 0x1238U);
  ASSERT_TRUE(runPatternTest(window, PatternTest::kAddressInAddress, options(2, 4096)).ok());
  EXPECT_EQ(window.word(0x1238), ~std::uint64_t{0x1238});
  ASSERT_TRUE(runPatternTest(window, PatternTest::kWalkingOnes, options(2, 4096)).ok());
  EXPECT_EQ(window.word(0), 2U);             // pass 1: 1 << ((0 + 1) % 64)
  EXPECT_EQ(window.word(8 * 63), 1U);        // 1 << ((63 + 1) % 64)
  EXPECT_EQ(window.word(8 * 70), 1U << 7U);  // 1 << ((70 + 1) % 64)
  ASSERT_TRUE(runPatternTest(window, PatternTest::kWalkingZeros, options(1, 4096)).ok());
  EXPECT_EQ(window.word(8 * 3), ~std::uint64_t{8});
  ASSERT_TRUE(runPatternTest(window, PatternTest::kMovingInversions, options(1, 4096)).ok());
  EXPECT_EQ(window.word(0x2000), 0U);  // a pass ends with p written back, p = 0 in pass 0
}

TEST(MemtestCleanTest, ChunkRoundsDownToWordsAndNeverExceedsTheWindow) {
  HostWindow small(1000);
  ASSERT_TRUE(runPatternTest(small, PatternTest::kRandomPattern, MemtestOptions{}).ok());
  EXPECT_EQ(small.largestTransfer(), 1000U);  // default 16 MiB, cut to the window
  EXPECT_EQ(small.writes(), 1U);
  HostWindow odd(1000);
  ASSERT_TRUE(runPatternTest(odd, PatternTest::kRandomPattern, options(1, 13)).ok());
  EXPECT_EQ(odd.largestTransfer(), 8U);
  EXPECT_EQ(odd.writes(), 125U);
  HostWindow tiny(1000);
  ASSERT_TRUE(runPatternTest(tiny, PatternTest::kRandomPattern, options(1, 0)).ok());
  EXPECT_EQ(tiny.largestTransfer(), 8U);
}

TEST(MemtestCleanTest, RandomPatternDependsOnTheSeed) {
  HostWindow first(4096);
  HostWindow second(4096);
  HostWindow third(4096);
  MemtestOptions seeded = options(1, 1024);
  seeded.seed = 1;
  ASSERT_TRUE(runPatternTest(first, PatternTest::kRandomPattern, seeded).ok());
  ASSERT_TRUE(runPatternTest(second, PatternTest::kRandomPattern, seeded).ok());
  seeded.seed = 2;
  ASSERT_TRUE(runPatternTest(third, PatternTest::kRandomPattern, seeded).ok());
  EXPECT_EQ(first.memory(), second.memory());
  EXPECT_NE(first.memory(), third.memory());
  EXPECT_NE(first.word(0), first.word(8));
}

TEST(MemtestFaultTest, MovingInversionsFindsStuckAtZero) {
  HostWindow window(2 * kMiB);
  window.addStuckBit(0x100000, 3, false);
  MemtestResult result = run(window, PatternTest::kMovingInversions, options(1, 64 * kKiB));
  // p = 0: the ascending sweep writes ~0, the descending check reads bit 3 as 0.
  EXPECT_EQ(result.errors, 1U);
  EXPECT_EQ(result.firstErrorOffset, 0x100000U);
  EXPECT_EQ(result.firstExpected, ~std::uint64_t{0});
  EXPECT_EQ(result.firstActual, ~std::uint64_t{8});
  EXPECT_EQ(result.badBits, 8U);
  EXPECT_EQ(result.completedPasses, 1);
  EXPECT_EQ(result.bytesTested, 2 * kMiB);
  EXPECT_EQ(failureReason(result),
            "1 word differs; first at offset 0x100000: expected 0xffffffffffffffff, read "
            "0xfffffffffffffff7 (bit 3)");

  // With the random second pass the bit is wrong in exactly one check of each pass.
  MemtestResult twoPasses = run(window, PatternTest::kMovingInversions, options(2, 64 * kKiB));
  EXPECT_EQ(twoPasses.errors, 2U);
  EXPECT_EQ(twoPasses.badBits, 8U);
  EXPECT_EQ(twoPasses.firstExpected, ~std::uint64_t{0});
}

TEST(MemtestFaultTest, MovingInversionsFindsStuckAtOne) {
  HostWindow window(2 * kMiB);
  window.addStuckBit(0x100000, 3, true);
  MemtestResult result = run(window, PatternTest::kMovingInversions, options(1, 64 * kKiB));
  EXPECT_EQ(result.errors, 1U);
  EXPECT_EQ(result.firstErrorOffset, 0x100000U);
  EXPECT_EQ(result.firstExpected, 0U);
  EXPECT_EQ(result.firstActual, 8U);
  EXPECT_EQ(result.badBits, 8U);
  EXPECT_EQ(failureReason(result),
            "1 word differs; first at offset 0x100000: expected 0x0000000000000000, read "
            "0x0000000000000008 (bit 3)");
}

TEST(MemtestFaultTest, WalkingOnesFindsStuckAtZeroInThePassThatSetsTheBit) {
  // Word 10 holds bit 5 in pass k = 59 ((10 + 59) % 64 == 5).
  HostWindow window(64 * kKiB);
  window.addStuckBit(80, 5, false);
  MemtestResult before = run(window, PatternTest::kWalkingOnes, options(59, 4096));
  EXPECT_EQ(before.errors, 0U);
  MemtestResult all = run(window, PatternTest::kWalkingOnes, MemtestOptions{});
  EXPECT_EQ(all.completedPasses, 64);
  EXPECT_EQ(all.errors, 1U);
  EXPECT_EQ(all.firstErrorOffset, 80U);
  EXPECT_EQ(all.firstExpected, 0x20U);
  EXPECT_EQ(all.firstActual, 0U);
  EXPECT_EQ(all.badBits, 0x20U);
  EXPECT_EQ(all.bytesTested, 64 * 64 * kKiB);
}

TEST(MemtestFaultTest, WalkingZerosFindsStuckAtOne) {
  HostWindow window(64 * kKiB);
  window.addStuckBit(80, 5, true);
  MemtestResult result = run(window, PatternTest::kWalkingZeros, options(100, 4096));
  EXPECT_EQ(result.plannedPasses, 64);  // cut to 64
  EXPECT_EQ(result.errors, 1U);
  EXPECT_EQ(result.firstErrorOffset, 80U);
  EXPECT_EQ(result.firstExpected, ~std::uint64_t{0x20});
  EXPECT_EQ(result.firstActual, ~std::uint64_t{0});
}

TEST(MemtestFaultTest, AddressInAddressFindsAliasedWordsThatWalkingMisses) {
  // Words 0x200 and 0x600 share a cell; both hold the same walking pattern ((i + k) % 64).
  HostWindow window(64 * kKiB);
  window.aliasWords(0x1000, 0x3000);
  MemtestResult address = run(window, PatternTest::kAddressInAddress, options(0, 4096));
  EXPECT_EQ(address.completedPasses, 2);
  EXPECT_EQ(address.errors, 2U);  // once per pass; 0x3000, written last, reads right
  EXPECT_EQ(address.firstErrorOffset, 0x1000U);
  EXPECT_EQ(address.firstExpected, 0x1000U);
  EXPECT_EQ(address.firstActual, 0x3000U);
  EXPECT_EQ(address.badBits, 0x2000U);
  EXPECT_EQ(failureReason(address),
            "2 words differ; first at offset 0x1000: expected 0x0000000000001000, read "
            "0x0000000000003000 (bit 13)");

  MemtestResult walking = run(window, PatternTest::kWalkingOnes, options(0, 4096));
  EXPECT_EQ(walking.errors, 0U);
}

TEST(MemtestFaultTest, FlippingBitIsFound) {
  HostWindow window(256 * kKiB);
  window.addFlippingBit(0x8000, 40, 1);
  MemtestResult random = run(window, PatternTest::kRandomPattern, options(1, 16 * kKiB));
  EXPECT_EQ(random.errors, 1U);
  EXPECT_EQ(random.firstErrorOffset, 0x8000U);
  EXPECT_EQ(random.firstExpected ^ random.firstActual, std::uint64_t{1} << 40);
  EXPECT_EQ(random.badBits, std::uint64_t{1} << 40);
  EXPECT_EQ(random.firstExpected, window.word(0x8000));  // what is stored is right

  // Every second read: moving inversions reads each word twice per pass, the second is wrong.
  HostWindow intermittent(256 * kKiB);
  intermittent.addFlippingBit(0x8000, 0, 2);
  MemtestResult moving = run(intermittent, PatternTest::kMovingInversions, options(1, 16 * kKiB));
  EXPECT_EQ(moving.errors, 1U);
  EXPECT_EQ(moving.firstExpected, ~std::uint64_t{0});
  EXPECT_EQ(moving.firstActual, ~std::uint64_t{1});
}

TEST(MemtestFaultTest, SeveralBadBitsAreListed) {
  HostWindow window(64 * kKiB);
  window.addStuckBit(0x100, 1, true);
  window.addStuckBit(0x100, 2, true);
  window.addStuckBit(0x200, 63, true);
  MemtestResult result = run(window, PatternTest::kMovingInversions, options(1, 4096));
  EXPECT_EQ(result.errors, 2U);
  EXPECT_EQ(result.badBits, 0x8000000000000006ULL);
  EXPECT_EQ(failureReason(result),
            "2 words differ; first at offset 0x100: expected 0x0000000000000000, read "
            "0x0000000000000006 (bits 1, 2); bad bits over all words: 1, 2, 63");
}

// Corrupts one byte of every read that includes it.
class CorruptByteWindow final : public MemoryWindow {
 public:
  CorruptByteWindow(std::uint64_t size, std::uint64_t offset, unsigned char mask)
      : inner_(size), offset_(offset), mask_(mask) {}
  std::uint64_t size() const override { return inner_.size(); }
  Status write(std::uint64_t offset, const void* source, std::uint64_t bytes) override {
    return inner_.write(offset, source, bytes);
  }
  Status read(std::uint64_t offset, void* destination, std::uint64_t bytes) override {
    RETURN_IF_ERROR(inner_.read(offset, destination, bytes));
    if (offset_ >= offset && offset_ < offset + bytes) {
      static_cast<unsigned char*>(destination)[offset_ - offset] ^= mask_;
    }
    return Status::success();
  }
  Status copy(std::uint64_t destination, std::uint64_t source, std::uint64_t bytes) override {
    return inner_.copy(destination, source, bytes);
  }

 private:
  HostWindow inner_;
  std::uint64_t offset_;
  unsigned char mask_;
};

// Records every transfer as "r<offset>" or "w<offset>".
class RecordingWindow final : public MemoryWindow {
 public:
  explicit RecordingWindow(std::uint64_t size) : inner_(size) {}
  std::uint64_t size() const override { return inner_.size(); }
  Status write(std::uint64_t offset, const void* source, std::uint64_t bytes) override {
    calls.push_back("w" + std::to_string(offset));
    return inner_.write(offset, source, bytes);
  }
  Status read(std::uint64_t offset, void* destination, std::uint64_t bytes) override {
    calls.push_back("r" + std::to_string(offset));
    return inner_.read(offset, destination, bytes);
  }
  Status copy(std::uint64_t destination, std::uint64_t source, std::uint64_t bytes) override {
    calls.push_back("c" + std::to_string(destination));
    return inner_.copy(destination, source, bytes);
  }
  std::vector<std::string> calls;

 private:
  HostWindow inner_;
};

TEST(MemtestOrderTest, MovingInversionsSweepsUpThenDown) {
  RecordingWindow window(3 * 64);
  ASSERT_TRUE(runPatternTest(window, PatternTest::kMovingInversions, options(1, 64)).ok());
  EXPECT_EQ(window.calls,
            (std::vector<std::string>{"w0", "w64", "w128",                          // fill p
                                      "r0", "w0", "r64", "w64", "r128", "w128",     // up: p -> ~p
                                      "r128", "w128", "r64", "w64", "r0", "w0"}));  // down
}

TEST(MemtestOrderTest, WriteAllThenReadAll) {
  RecordingWindow window(3 * 64);
  ASSERT_TRUE(runPatternTest(window, PatternTest::kAddressInAddress, options(1, 64)).ok());
  EXPECT_EQ(window.calls, (std::vector<std::string>{"w0", "w64", "w128", "r0", "r64", "r128"}));
}

TEST(MemtestTailTest, PartialLastWordIsTested) {
  // 1003 bytes: the last word (offset 1000) has 3 bytes; corrupt its third byte.
  CorruptByteWindow window(1003, 1002, 0x10);
  MemtestResult result = run(window, PatternTest::kRandomPattern, options(1, 64));
  EXPECT_EQ(result.errors, 1U);
  EXPECT_EQ(result.firstErrorOffset, 1000U);
  EXPECT_EQ(result.bytesTested, 1003U);
  EXPECT_LT(result.firstExpected, std::uint64_t{1} << 24);  // only the 3 bytes
  if constexpr (std::endian::native == std::endian::little) {
    EXPECT_EQ(result.badBits, std::uint64_t{1} << 20);
  }
  // The last full word before the tail is reported at its own offset.
  CorruptByteWindow lastFull(1003, 999, 0x01);
  MemtestResult full = run(lastFull, PatternTest::kAddressInAddress, options(1, 64));
  EXPECT_EQ(full.errors, 1U);
  EXPECT_EQ(full.firstErrorOffset, 992U);
  EXPECT_EQ(full.firstExpected, 992U);
}

TEST(MemtestStopTest, DeadlineInThePastRunsNoPass) {
  HostWindow window(64 * kKiB);
  MemtestOptions testOptions = options(0, 4096);
  testOptions.stop.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  MemtestResult result = run(window, PatternTest::kWalkingOnes, testOptions);
  EXPECT_EQ(result.completedPasses, 0);
  EXPECT_TRUE(result.partial);
  EXPECT_TRUE(result.stopped);
  EXPECT_FALSE(result.cancelled);
  EXPECT_EQ(result.bytesTested, 0U);
  EXPECT_EQ(window.calls(), 0U);
}

TEST(MemtestStopTest, CancelBetweenPasses) {
  // 4 chunks, 2 sweeps per pass: 8 chunks per pass; cancelling at half of 64 passes stops after
  // exactly 32 passes.
  HostWindow window(16 * kKiB);
  std::atomic<bool> cancelled{false};
  MemtestOptions testOptions = options(0, 4096);
  testOptions.stop.cancelled = &cancelled;
  std::vector<double> seen;
  testOptions.progress = [&](double fraction) {
    seen.push_back(fraction);
    if (fraction >= 0.5) cancelled = true;
  };
  MemtestResult result = run(window, PatternTest::kWalkingOnes, testOptions);
  EXPECT_TRUE(result.cancelled);
  EXPECT_TRUE(result.stopped);
  EXPECT_FALSE(result.partial);
  EXPECT_EQ(result.completedPasses, 32);
  EXPECT_EQ(result.bytesTested, 32 * 16 * kKiB);
  EXPECT_EQ(seen.size(), 256U);
  EXPECT_DOUBLE_EQ(seen.back(), 0.5);
}

TEST(MemtestStopTest, CancelInsideTheFirstPassIsPartial) {
  HostWindow window(16 * kKiB);
  std::atomic<bool> cancelled{false};
  MemtestOptions testOptions = options(1, 4096);
  testOptions.stop.cancelled = &cancelled;
  int calls = 0;
  testOptions.progress = [&](double) {
    if (++calls == 6) cancelled = true;  // 4 chunks written, 2 checked
  };
  MemtestResult result = run(window, PatternTest::kRandomPattern, testOptions);
  EXPECT_TRUE(result.cancelled);
  EXPECT_TRUE(result.partial);
  EXPECT_EQ(result.completedPasses, 0);
  EXPECT_EQ(result.bytesTested, 2 * 4096U);
  EXPECT_EQ(window.reads(), 2U);
}

TEST(MemtestProgressTest, RisesToOne) {
  HostWindow window(10000);
  std::vector<double> seen;
  MemtestOptions testOptions = options(2, 4096);  // 3 chunks, 3 sweeps, 2 passes
  testOptions.progress = [&](double fraction) { seen.push_back(fraction); };
  ASSERT_TRUE(runPatternTest(window, PatternTest::kMovingInversions, testOptions).ok());
  ASSERT_EQ(seen.size(), 18U);
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_GT(seen[i], seen[i - 1]);
  EXPECT_DOUBLE_EQ(seen.front(), 1.0 / 18);
  EXPECT_DOUBLE_EQ(seen.back(), 1.0);
}

TEST(MemtestErrorTest, WindowErrorIsReturned) {
  HostWindow window(64 * kKiB);
  window.failAfterCalls(5);
  Result<MemtestResult> result =
      runPatternTest(window, PatternTest::kAddressInAddress, options(0, 4096));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(result.error().message, "host window: injected failure of write");
  EXPECT_EQ(window.calls(), 5U);
}

TEST(MemtestErrorTest, BadArguments) {
  HostWindow empty(0);
  Result<MemtestResult> result = runPatternTest(empty, PatternTest::kRandomPattern, {});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  HostWindow window(64);
  result = runPatternTest(window, PatternTest::kRandomPattern, options(-1, 64));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(window.calls(), 0U);
}

}  // namespace
}  // namespace deviceops::selftest
