// Progress display for the CLI: one bar (with rate and ETA) redrawn in place on a terminal, plain
// lines when the output is a pipe or a file, so scripts and CI logs stay readable. Every command
// that shows progress (uploads, train/generate/test --follow) uses ProgressBar; nothing else
// draws bars.
//
// Terminal form (fitted to the terminal's width, bar between 10 and 30 columns):
//   "upload data.csv [########..........]  42% 12.0 MiB/28.6 MiB 80.0 MiB/s ETA 0:01"
// Plain form (no bar, no escapes):
//   "upload data.csv 42% 12.0 MiB/28.6 MiB 80.0 MiB/s ETA 0:01"
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace deviceops::client {

using ProgressClock = std::chrono::steady_clock;

enum class ProgressUnit {
  kItems,  // counted things (steps, images, tests): "3/8", rates "2.5 step/s" or "1.60 s/step"
  kBytes,  // "12.0 MiB/28.6 MiB", rates "80.0 MiB/s"
};

// What one progress line shows.
struct ProgressState {
  std::string label;                   // first on the line, e.g. "upload data.csv"
  std::uint64_t done = 0;              // units done so far
  std::optional<std::uint64_t> total;  // empty: unknown (no bar, no percentage, no ETA)
  ProgressUnit unit = ProgressUnit::kItems;
  std::string itemName = "step";        // kItems: the singular name used in rates
  std::optional<double> ratePerSecond;  // units per second; empty: not known yet
  std::optional<double> etaSeconds;     // empty: not known
  std::string detail;                   // free text at the end ("loss 0.1234 512 samples/s")
  bool showCount = true;  // false: no "3/8" (done/total is only a fraction, e.g. of 1000)
};

// A state with these fields set and the rest as declared.
ProgressState makeProgressState(std::string label, std::optional<std::uint64_t> total,
                                ProgressUnit unit = ProgressUnit::kItems,
                                std::string itemName = "step");

// "0:07", "12:05", "1:02:03" (hours unbounded); "-" for a negative or non-finite value.
std::string formatDuration(double seconds);

// A rate in the unit's terms: kBytes "80.0 MiB/s"; kItems "2.5 step/s" from 1 per second up,
// "1.60 s/step" below (slow steps read better as seconds each). "-" for a non-finite or
// negative rate, "0 <item>/s" for zero.
std::string formatRate(double perSecond, ProgressUnit unit, std::string_view itemName);

// The terminal form of state in at most `width` columns (display width, see table.h). The bar
// takes what the text leaves, up to 30 columns; below 10 the detail is dropped first, then the
// line is cut to width with "…". Without a total there is no bar.
std::string renderProgressBar(const ProgressState& state, std::size_t width);

// The plain form: the same fields without the bar, never cut.
std::string renderProgressPlain(const ProgressState& state);

// Units per second over a sliding window of recent samples, and the time left at that rate.
// Not thread-safe.
class RateMeter {
 public:
  explicit RateMeter(std::chrono::milliseconds window = std::chrono::seconds(10));

  // Records `done` at `now`. A count lower than the last one (a restart) clears the history.
  void record(ProgressClock::time_point now, std::uint64_t done);
  // (newest - oldest done) / (time between them) over the window; empty until the samples span
  // at least 100 ms.
  std::optional<double> perSecond() const;
  // (total - newest done) / perSecond(); empty without a total or a positive rate, 0 when done.
  std::optional<double> etaSeconds(std::optional<std::uint64_t> total) const;

 private:
  std::chrono::milliseconds window_;
  std::deque<std::pair<ProgressClock::time_point, std::uint64_t>> samples_;
};

// True when `stream` is std::cout or std::cerr and that descriptor is a terminal. A test's
// string stream never is.
bool isTerminal(const std::ostream& stream);

// Columns of the terminal behind `stream` (TIOCGWINSZ), else $COLUMNS, else 80.
std::size_t terminalColumns(const std::ostream& stream);

// One progress display on `out`. On a terminal, update() redraws the line in place ("\r" ...
// "\x1b[K") at most 10 times a second; otherwise it prints a plain line at most once per
// plainInterval (the first one plainInterval after construction), and only when the text changed.
// Callers set the fields through state() and then call update(); the rate and ETA are computed here
// from the done counts unless the caller set them (state().ratePerSecond / etaSeconds stay as set
// when `ownRate` is false). Times are injected for tests. Not thread-safe.
class ProgressBar {
 public:
  struct Options {
    bool terminal = false;
    std::size_t width = 80;  // terminal columns
    std::chrono::milliseconds plainInterval = std::chrono::seconds(1);
    bool ownRate = true;  // compute ratePerSecond and etaSeconds from the done counts
  };

  // Options for out: a terminal (isTerminal) and its width (terminalColumns), or plain lines.
  static Options optionsFor(const std::ostream& out);

  ProgressBar(std::ostream& out, ProgressState initial, Options options,
              ProgressClock::time_point now = ProgressClock::now());
  ~ProgressBar() = default;
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  ProgressState& state() { return state_; }

  // Sets done (the rest of state() as the caller left it) and shows it as described above.
  void update(std::uint64_t done, ProgressClock::time_point now = ProgressClock::now());
  // Shows the current state now, unthrottled: a plain line (also when unchanged), or on a
  // terminal the line is redrawn and kept (a newline), the next update starting a new one.
  // For events that deserve a line of their own (a stage ended).
  void printLine(ProgressClock::time_point now = ProgressClock::now());
  // Prints `line` on a line of its own above the bar (the bar is redrawn below it).
  void note(std::string_view line);
  // Ends the display: the final state as a kept line. With onlyIfShown, nothing is printed when
  // no line was ever shown (a quick upload stays silent in a log). Idempotent.
  void finish(bool onlyIfShown = false);

  bool shown() const { return shown_; }

 private:
  void draw();
  void refreshRate(ProgressClock::time_point now);

  std::ostream& out_;
  ProgressState state_;
  Options options_;
  RateMeter meter_;
  ProgressClock::time_point lastDraw_;
  std::string lastPlain_;
  bool drawn_ = false;  // the terminal's current line holds the bar
  bool shown_ = false;  // some line was printed
  bool finished_ = false;
};

}  // namespace deviceops::client
