#include "client/cli_progress.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

namespace deviceops::client {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

ProgressState counted(std::string label, std::uint64_t done, std::uint64_t total) {
  ProgressState state;
  state.label = std::move(label);
  state.done = done;
  state.total = total;
  return state;
}

TEST(FormatDurationTest, MinutesAndHours) {
  EXPECT_EQ(formatDuration(0), "0:00");
  EXPECT_EQ(formatDuration(7), "0:07");
  EXPECT_EQ(formatDuration(59.6), "1:00");
  EXPECT_EQ(formatDuration(725), "12:05");
  EXPECT_EQ(formatDuration(3723), "1:02:03");
  EXPECT_EQ(formatDuration(-1), "-");
  EXPECT_EQ(formatDuration(std::numeric_limits<double>::quiet_NaN()), "-");
  EXPECT_EQ(formatDuration(std::numeric_limits<double>::infinity()), "-");
}

TEST(FormatRateTest, BytesItemsAndSlowItems) {
  EXPECT_EQ(formatRate(80.0 * 1024 * 1024, ProgressUnit::kBytes, "step"), "80.0 MiB/s");
  EXPECT_EQ(formatRate(512, ProgressUnit::kBytes, "step"), "512 B/s");
  EXPECT_EQ(formatRate(2.5, ProgressUnit::kItems, "step"), "2.5 step/s");
  EXPECT_EQ(formatRate(1, ProgressUnit::kItems, "image"), "1.0 image/s");
  EXPECT_EQ(formatRate(0.625, ProgressUnit::kItems, "step"), "1.60 s/step");
  EXPECT_EQ(formatRate(0, ProgressUnit::kItems, "test"), "0 test/s");
  EXPECT_EQ(formatRate(-1, ProgressUnit::kItems, "step"), "-");
  EXPECT_EQ(formatRate(std::numeric_limits<double>::infinity(), ProgressUnit::kBytes, ""), "-");
}

TEST(RenderProgressBarTest, BarTakesTheRestOfTheWidth) {
  const ProgressState state = counted("upload", 42, 100);
  EXPECT_EQ(renderProgressBar(state, 40), "upload [#######............]  42% 42/100");
  // Capped at 30 columns on a wide terminal.
  EXPECT_EQ(renderProgressBar(state, 80), "upload [############..................]  42% 42/100");
}

TEST(RenderProgressBarTest, EmptyFullAndOverfullBars) {
  EXPECT_EQ(renderProgressBar(counted("x", 0, 10), 30), "x [................]   0% 0/10");
  EXPECT_EQ(renderProgressBar(counted("x", 10, 10), 30), "x [###############] 100% 10/10");
  // More done than the total (a server's estimate grew short) shows a full bar, not more.
  EXPECT_EQ(renderProgressBar(counted("x", 12, 10), 30), "x [###############] 100% 12/10");
}

TEST(RenderProgressBarTest, BytesRateEtaAndDetail) {
  ProgressState state = counted("upload data.csv", 12 * 1024 * 1024, 30 * 1024 * 1024);
  state.unit = ProgressUnit::kBytes;
  state.ratePerSecond = 6.0 * 1024 * 1024;
  state.etaSeconds = 3;
  EXPECT_EQ(renderProgressBar(state, 100),
            "upload data.csv [############..................]  40% 12.0 MiB/30.0 MiB "
            "6.0 MiB/s ETA 0:03");
  EXPECT_EQ(renderProgressPlain(state), "upload data.csv 40% 12.0 MiB/30.0 MiB 6.0 MiB/s ETA 0:03");
}

TEST(RenderProgressBarTest, NarrowWidthDropsDetailThenCuts) {
  ProgressState state = counted("train", 3, 8);
  state.ratePerSecond = 0.5;
  state.etaSeconds = 10;
  state.detail = "loss 0.1234";
  EXPECT_EQ(renderProgressBar(state, 100),
            "train [###########...................]  37% 3/8 2.00 s/step ETA 0:10 loss 0.1234");
  // 55 columns: the detail would leave 5 for the bar, so it goes.
  EXPECT_EQ(renderProgressBar(state, 55),
            "train [######...........]  37% 3/8 2.00 s/step ETA 0:10");
  EXPECT_EQ(renderProgressBar(state, 40), "train [###.......]  37% 3/8 2.00 s/step…");
  EXPECT_EQ(renderProgressPlain(state), "train 37% 3/8 2.00 s/step ETA 0:10 loss 0.1234");
}

TEST(RenderProgressBarTest, UnknownTotalHasNoBarPercentOrEta) {
  ProgressState state;
  state.label = "generate";
  state.done = 5;
  state.ratePerSecond = 2;
  state.etaSeconds = 4;  // meaningless without a total: not shown
  EXPECT_EQ(renderProgressBar(state, 80), "generate 5 2.0 step/s");
  EXPECT_EQ(renderProgressPlain(state), "generate 5 2.0 step/s");
  EXPECT_EQ(renderProgressBar(state, 10), "generate …");
}

TEST(RateMeterTest, SlidingWindowRateAndEta) {
  const ProgressClock::time_point t0{};
  RateMeter meter(seconds(10));
  EXPECT_EQ(meter.perSecond(), std::nullopt);
  meter.record(t0, 0);
  meter.record(t0 + milliseconds(50), 10);
  EXPECT_EQ(meter.perSecond(), std::nullopt) << "50 ms is too short to tell a rate";
  for (int t = 1; t <= 10; ++t) meter.record(t0 + seconds(t), 100u * t);
  ASSERT_TRUE(meter.perSecond().has_value());
  EXPECT_DOUBLE_EQ(*meter.perSecond(), 100.0);
  EXPECT_DOUBLE_EQ(*meter.etaSeconds(3000), 20.0);
  // Faster for 5 s: the window (t = 5 .. 15) sees 500 -> 2500.
  for (int t = 11; t <= 15; ++t) meter.record(t0 + seconds(t), 1000u + 300u * (t - 10));
  EXPECT_DOUBLE_EQ(*meter.perSecond(), 200.0);
  EXPECT_DOUBLE_EQ(*meter.etaSeconds(3000), 2.5);
  EXPECT_DOUBLE_EQ(*meter.etaSeconds(2500), 0.0);
  EXPECT_DOUBLE_EQ(*meter.etaSeconds(2000), 0.0) << "past the total is done";
  EXPECT_EQ(meter.etaSeconds(std::nullopt), std::nullopt);
}

TEST(RateMeterTest, RestartClearsAndStallHasNoEta) {
  const ProgressClock::time_point t0{};
  RateMeter meter;
  meter.record(t0, 500);
  meter.record(t0 + seconds(1), 10);  // counting started over
  EXPECT_EQ(meter.perSecond(), std::nullopt);
  meter.record(t0 + seconds(2), 10);
  EXPECT_DOUBLE_EQ(*meter.perSecond(), 0.0);
  EXPECT_EQ(meter.etaSeconds(100), std::nullopt) << "no progress: no ETA, never infinity";
}

TEST(ProgressBarTest, PlainLinesAtMostOncePerInterval) {
  const ProgressClock::time_point t0{};
  std::ostringstream out;
  ProgressBar bar(out, counted("job", 0, 10), {}, t0);
  bar.update(1, t0 + milliseconds(500));  // within the first second: nothing
  EXPECT_EQ(out.str(), "");
  bar.update(3, t0 + seconds(1));
  bar.update(4, t0 + milliseconds(1500));  // within a second of the last line
  bar.update(10, t0 + milliseconds(2100));
  bar.finish();  // the same text as the last line: not repeated
  EXPECT_EQ(out.str(),
            "job 30% 3/10 4.0 step/s ETA 0:02\n"
            "job 100% 10/10 5.6 step/s\n");
  EXPECT_EQ(out.str().find('\r'), std::string::npos);
  EXPECT_EQ(out.str().find('\x1b'), std::string::npos);
}

TEST(ProgressBarTest, PlainPrintLineAndFinish) {
  const ProgressClock::time_point t0{};
  std::ostringstream out;
  ProgressBar bar(out, counted("base", 0, 4), {.ownRate = false}, t0);
  bar.state().detail = "0.5 s/step";
  bar.update(3, t0 + milliseconds(10));
  bar.printLine(t0 + milliseconds(20));  // an event's own line, not throttled
  bar.state().label = "decode";
  bar.update(4, t0 + milliseconds(30));
  bar.finish();
  bar.finish();                    // idempotent
  bar.update(4, t0 + seconds(5));  // after finish: ignored
  EXPECT_EQ(out.str(), "base 75% 3/4 0.5 s/step\ndecode 100% 4/4 0.5 s/step\n");
}

TEST(ProgressBarTest, QuickWorkStaysSilentWithOnlyIfShown) {
  const ProgressClock::time_point t0{};
  std::ostringstream out;
  ProgressBar bar(out, counted("upload", 0, 100), {}, t0);
  bar.update(100, t0 + milliseconds(300));
  bar.finish(/*onlyIfShown=*/true);
  EXPECT_EQ(out.str(), "");
  EXPECT_FALSE(bar.shown());
}

TEST(ProgressBarTest, TerminalRedrawsInPlaceAndKeepsNotesAbove) {
  const ProgressClock::time_point t0{};
  std::ostringstream out;
  ProgressBar bar(out, counted("upload", 0, 100), {.terminal = true, .width = 41}, t0);
  bar.update(42, t0);
  EXPECT_EQ(out.str(), "\rupload [#######............]  42% 42/100\x1b[K");
  out.str("");
  bar.update(45, t0 + milliseconds(50));  // within 100 ms of the last redraw
  EXPECT_EQ(out.str(), "");
  bar.note("warn gpu0 memory.pattern: 1 bit flipped");
  EXPECT_EQ(out.str(),
            "\r\x1b[Kwarn gpu0 memory.pattern: 1 bit flipped\n"
            "\rupload [########...........]  45% 45/100\x1b[K");
  out.str("");
  bar.finish();
  EXPECT_EQ(out.str(), "\rupload [########...........]  45% 45/100\x1b[K\n");
}

TEST(IsTerminalTest, StringStreamsAreNotTerminals) {
  std::ostringstream out;
  EXPECT_FALSE(isTerminal(out));
  EXPECT_EQ(terminalColumns(out) > 0, true);
}

}  // namespace
}  // namespace deviceops::client
