#include "selftest/bandwidth.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>

#include "selftest/testing/host_window.h"

namespace deviceops::selftest {
namespace {

using testing::HostWindow;

constexpr std::uint64_t kKiB = 1024;

BandwidthOptions fixedIterations(int iterations, std::uint64_t chunkBytes = 0) {
  BandwidthOptions options;
  options.budget = std::chrono::seconds(0);
  options.minIterations = iterations;
  options.chunkBytes = chunkBytes;
  return options;
}

unsigned char hostPattern(std::uint64_t i) { return static_cast<unsigned char>(i * 131 + 7); }

TEST(BandwidthNamesTest, RoundTrip) {
  for (Direction direction :
       {Direction::kHostToDevice, Direction::kDeviceToHost, Direction::kDeviceToDevice}) {
    EXPECT_EQ(parseDirection(directionName(direction)), direction);
  }
  EXPECT_EQ(directionName(Direction::kDeviceToDevice), "deviceToDevice");
  EXPECT_EQ(parseDirection("h2d"), std::nullopt);
}

TEST(BandwidthTest, HostToDeviceWritesTheChunkEveryIteration) {
  HostWindow window(1024 * kKiB);
  Result<BandwidthResult> result =
      measureBandwidth(window, Direction::kHostToDevice, fixedIterations(5, 64 * kKiB));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->direction, Direction::kHostToDevice);
  EXPECT_EQ(result->chunkBytes, 64 * kKiB);
  EXPECT_EQ(result->iterations, 5);
  EXPECT_EQ(result->bytesMoved, 5 * 64 * kKiB);
  EXPECT_EQ(result->iterationSeconds.count, 5U);
  EXPECT_EQ(window.writes(), 6U);  // one untimed warm-up
  EXPECT_EQ(window.reads(), 0U);
  EXPECT_EQ(window.bytesWritten(), 6 * 64 * kKiB);
  for (std::uint64_t i : {std::uint64_t{0}, std::uint64_t{1}, 64 * kKiB - 1}) {
    EXPECT_EQ(window.memory()[i], hostPattern(i));
  }
  EXPECT_EQ(window.memory()[64 * kKiB], 0);  // nothing past the chunk
  EXPECT_GT(result->seconds, 0);
  EXPECT_DOUBLE_EQ(result->bytesPerSecond, result->bytesMoved / result->seconds);
  EXPECT_FALSE(result->stopped);
}

TEST(BandwidthTest, DeviceToHostDefaultChunkIsTheWindow) {
  HostWindow window(300 * kKiB);
  Result<BandwidthResult> result =
      measureBandwidth(window, Direction::kDeviceToHost, fixedIterations(3));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->chunkBytes, 300 * kKiB);
  EXPECT_EQ(result->iterations, 3);
  EXPECT_EQ(result->bytesMoved, 3 * 300 * kKiB);
  EXPECT_EQ(window.reads(), 4U);
  EXPECT_EQ(window.writes(), 0U);
  EXPECT_EQ(window.largestTransfer(), 300 * kKiB);
}

TEST(BandwidthTest, DeviceToDeviceCopiesTheFirstHalfToTheSecond) {
  HostWindow window(1001);  // half = 500; the last byte is never touched
  Result<BandwidthResult> result =
      measureBandwidth(window, Direction::kDeviceToDevice, fixedIterations(3));
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->chunkBytes, 500U);
  EXPECT_EQ(result->bytesMoved, 1500U);  // bytes copied, not read + written
  EXPECT_EQ(window.copies(), 4U);
  EXPECT_EQ(window.writes(), 1U);  // the source, before the warm-up
  for (std::uint64_t i = 0; i < 500; ++i) {
    ASSERT_EQ(window.memory()[i], hostPattern(i)) << i;
    ASSERT_EQ(window.memory()[500 + i], hostPattern(i)) << i;
  }
  EXPECT_EQ(window.memory()[1000], 0);
}

TEST(BandwidthTest, BudgetRunsPastMinIterations) {
  HostWindow window(64 * kKiB);
  BandwidthOptions options;
  options.budget = std::chrono::milliseconds(30);
  options.minIterations = 3;
  const auto start = std::chrono::steady_clock::now();
  Result<BandwidthResult> result = measureBandwidth(window, Direction::kHostToDevice, options);
  const auto wall = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_GT(result->iterations, 3);  // a 64 KiB memcpy takes microseconds
  EXPECT_GE(wall, std::chrono::milliseconds(30));
  EXPECT_EQ(result->bytesMoved, static_cast<std::uint64_t>(result->iterations) * 64 * kKiB);
  EXPECT_EQ(window.writes(), static_cast<std::uint64_t>(result->iterations) + 1);
  EXPECT_LE(result->iterationSeconds.min, result->iterationSeconds.p50);
  EXPECT_LE(result->iterationSeconds.p50, result->iterationSeconds.max);
  EXPECT_DOUBLE_EQ(result->p50BytesPerSecond, 64 * kKiB / result->iterationSeconds.p50);
  EXPECT_LE(result->seconds, std::chrono::duration<double>(wall).count());
}

TEST(BandwidthTest, DeadlineInThePastMovesNothing) {
  HostWindow window(64 * kKiB);
  BandwidthOptions options = fixedIterations(3);
  options.stop.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  Result<BandwidthResult> result = measureBandwidth(window, Direction::kHostToDevice, options);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->iterations, 0);
  EXPECT_EQ(result->bytesMoved, 0U);
  EXPECT_EQ(result->bytesPerSecond, 0);
  EXPECT_TRUE(result->stopped);
  EXPECT_FALSE(result->cancelled);
  EXPECT_EQ(window.calls(), 0U);
}

// Sets a cancel flag once `calls` transfers went through.
class CancellingWindow final : public MemoryWindow {
 public:
  CancellingWindow(std::uint64_t size, std::atomic<bool>& flag, int calls)
      : inner_(size), flag_(flag), calls_(calls) {}
  std::uint64_t size() const override { return inner_.size(); }
  Status write(std::uint64_t offset, const void* source, std::uint64_t bytes) override {
    count();
    return inner_.write(offset, source, bytes);
  }
  Status read(std::uint64_t offset, void* destination, std::uint64_t bytes) override {
    count();
    return inner_.read(offset, destination, bytes);
  }
  Status copy(std::uint64_t destination, std::uint64_t source, std::uint64_t bytes) override {
    count();
    return inner_.copy(destination, source, bytes);
  }

 private:
  void count() {
    if (--calls_ == 0) flag_ = true;
  }
  HostWindow inner_;
  std::atomic<bool>& flag_;
  int calls_;
};

TEST(BandwidthTest, CancelStopsBeforeMinIterations) {
  std::atomic<bool> cancelled{false};
  CancellingWindow window(4096, cancelled, 4);  // warm-up + 3 timed
  BandwidthOptions options = fixedIterations(100);
  options.stop.cancelled = &cancelled;
  Result<BandwidthResult> result = measureBandwidth(window, Direction::kDeviceToHost, options);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->iterations, 3);
  EXPECT_EQ(result->bytesMoved, 3 * 4096U);
  EXPECT_TRUE(result->stopped);
  EXPECT_TRUE(result->cancelled);
}

TEST(BandwidthTest, TransferErrorIsReturned) {
  HostWindow window(4096);
  window.failAfterCalls(2);
  Result<BandwidthResult> result =
      measureBandwidth(window, Direction::kHostToDevice, fixedIterations(3));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kUnavailable);
}

TEST(BandwidthTest, BadArguments) {
  struct Case {
    const char* name;
    std::uint64_t windowBytes;
    Direction direction;
    BandwidthOptions options;
  };
  BandwidthOptions negativeBudget;
  negativeBudget.budget = std::chrono::seconds(-1);
  const Case cases[] = {
      {"empty window", 0, Direction::kHostToDevice, fixedIterations(3)},
      {"one byte cannot be halved", 1, Direction::kDeviceToDevice, fixedIterations(3)},
      {"chunk above window", 4096, Direction::kHostToDevice, fixedIterations(3, 4097)},
      {"chunk above half", 4096, Direction::kDeviceToDevice, fixedIterations(3, 2049)},
      {"no iterations", 4096, Direction::kHostToDevice, fixedIterations(0)},
      {"negative budget", 4096, Direction::kHostToDevice, negativeBudget},
  };
  for (const Case& testCase : cases) {
    SCOPED_TRACE(testCase.name);
    HostWindow window(testCase.windowBytes);
    Result<BandwidthResult> result = measureBandwidth(window, testCase.direction, testCase.options);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
    EXPECT_EQ(window.calls(), 0U);
  }
  HostWindow window(4096);
  EXPECT_TRUE(measureBandwidth(window, Direction::kDeviceToDevice, fixedIterations(1, 2048)).ok());
}

}  // namespace
}  // namespace deviceops::selftest
