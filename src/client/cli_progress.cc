#include "client/cli_progress.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "client/table.h"

namespace deviceops::client {
namespace {

constexpr std::size_t kMaxBarWidth = 30;
constexpr std::size_t kMinBarWidth = 10;
constexpr auto kMinRateSpan = std::chrono::milliseconds(100);
constexpr auto kTerminalRedrawInterval = std::chrono::milliseconds(100);

std::string countText(const ProgressState& state) {
  if (!state.showCount) return "";
  if (state.unit == ProgressUnit::kBytes) {
    if (!state.total) return formatBytes(state.done);
    return formatBytes(state.done) + "/" + formatBytes(*state.total);
  }
  if (!state.total) return std::to_string(state.done);
  return fmt::format("{}/{}", state.done, *state.total);
}

// Whole percent, rounded down (100% only when done); padded to 3 digits on the terminal so the
// fields after it keep their columns.
std::string percentText(const ProgressState& state, bool padded) {
  if (!state.total || *state.total == 0) return "";
  const std::uint64_t percent = std::min(state.done, *state.total) * 100 / *state.total;
  return padded ? fmt::format("{:>3}%", percent) : fmt::format("{}%", percent);
}

std::string joinNonEmpty(const std::vector<std::string>& parts) {
  std::string joined;
  for (const std::string& part : parts) {
    if (part.empty()) continue;
    if (!joined.empty()) joined += ' ';
    joined += part;
  }
  return joined;
}

// The fields after the bar: percentage, counts, rate, ETA and (withDetail) the detail.
std::string statusText(const ProgressState& state, bool withDetail, bool padded) {
  std::string rate;
  if (state.ratePerSecond) rate = formatRate(*state.ratePerSecond, state.unit, state.itemName);
  std::string eta;
  if (state.etaSeconds && state.total && state.done < *state.total) {
    eta = "ETA " + formatDuration(*state.etaSeconds);
  }
  return joinNonEmpty(
      {percentText(state, padded), countText(state), rate, eta, withDetail ? state.detail : ""});
}

std::string barText(const ProgressState& state, std::size_t width) {
  const std::uint64_t total = state.total.value_or(0);
  const std::uint64_t done = std::min(state.done, total);
  const auto filled = total == 0 ? 0 : static_cast<std::size_t>(done * width / total);
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

int descriptorOf(const std::ostream& stream) {
  if (&stream == &std::cout) return STDOUT_FILENO;
  if (&stream == &std::cerr) return STDERR_FILENO;
  return -1;
}

}  // namespace

ProgressState makeProgressState(std::string label, std::optional<std::uint64_t> total,
                                ProgressUnit unit, std::string itemName) {
  ProgressState state;
  state.label = std::move(label);
  state.total = total;
  state.unit = unit;
  state.itemName = std::move(itemName);
  return state;
}

std::string formatDuration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  const auto total = static_cast<long long>(std::llround(seconds));
  if (total >= 3600) {
    return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  }
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

std::string formatRate(double perSecond, ProgressUnit unit, std::string_view itemName) {
  if (!std::isfinite(perSecond) || perSecond < 0) return "-";
  if (unit == ProgressUnit::kBytes) {
    return formatBytes(static_cast<std::uint64_t>(std::llround(perSecond))) + "/s";
  }
  if (perSecond == 0) return fmt::format("0 {}/s", itemName);
  if (perSecond >= 1) return fmt::format("{:.1f} {}/s", perSecond, itemName);
  return fmt::format("{:.2f} s/{}", 1.0 / perSecond, itemName);
}

std::string renderProgressBar(const ProgressState& state, std::size_t width) {
  if (!state.total) return truncateToWidth(renderProgressPlain(state), width);
  const std::size_t labelWidth = state.label.empty() ? 0 : displayWidth(state.label) + 1;
  const auto barWidthFor = [&](const std::string& status) -> std::size_t {
    const std::size_t used = labelWidth + 2 + 1 + displayWidth(status);  // "[", "]", " "
    return used >= width ? 0 : std::min(kMaxBarWidth, width - used);
  };
  std::string status = statusText(state, /*withDetail=*/true, /*padded=*/true);
  std::size_t barWidth = barWidthFor(status);
  if (barWidth < kMinBarWidth && !state.detail.empty()) {
    status = statusText(state, /*withDetail=*/false, /*padded=*/true);
    barWidth = barWidthFor(status);
  }
  barWidth = std::max(barWidth, kMinBarWidth);
  std::string line = state.label.empty() ? "" : state.label + " ";
  line += barText(state, barWidth) + " " + status;
  return truncateToWidth(line, width);
}

std::string renderProgressPlain(const ProgressState& state) {
  return joinNonEmpty({state.label, statusText(state, /*withDetail=*/true, /*padded=*/false)});
}

RateMeter::RateMeter(std::chrono::milliseconds window) : window_(window) {}

void RateMeter::record(ProgressClock::time_point now, std::uint64_t done) {
  if (!samples_.empty() && done < samples_.back().second) samples_.clear();
  samples_.emplace_back(now, done);
  // Keep the newest sample older than the window too, so the span covers the whole window.
  while (samples_.size() > 2 && now - samples_[1].first >= window_) samples_.pop_front();
}

std::optional<double> RateMeter::perSecond() const {
  if (samples_.size() < 2) return std::nullopt;
  const auto span = samples_.back().first - samples_.front().first;
  if (span < kMinRateSpan) return std::nullopt;
  const double seconds = std::chrono::duration<double>(span).count();
  return static_cast<double>(samples_.back().second - samples_.front().second) / seconds;
}

std::optional<double> RateMeter::etaSeconds(std::optional<std::uint64_t> total) const {
  if (!total || samples_.empty()) return std::nullopt;
  const std::uint64_t done = samples_.back().second;
  if (done >= *total) return 0.0;
  const std::optional<double> rate = perSecond();
  if (!rate || *rate <= 0) return std::nullopt;
  return static_cast<double>(*total - done) / *rate;
}

bool isTerminal(const std::ostream& stream) {
  const int descriptor = descriptorOf(stream);
  return descriptor >= 0 && ::isatty(descriptor) == 1;
}

std::size_t terminalColumns(const std::ostream& stream) {
  const int descriptor = descriptorOf(stream);
  winsize size{};
  if (descriptor >= 0 && ::ioctl(descriptor, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    return size.ws_col;
  }
  if (const char* columns = std::getenv("COLUMNS")) {
    const long value = std::strtol(columns, nullptr, 10);
    if (value > 0 && value < 10000) return static_cast<std::size_t>(value);
  }
  return 80;
}

ProgressBar::Options ProgressBar::optionsFor(const std::ostream& out) {
  Options options;
  options.terminal = isTerminal(out);
  options.width = terminalColumns(out);
  return options;
}

ProgressBar::ProgressBar(std::ostream& out, ProgressState initial, Options options,
                         ProgressClock::time_point now)
    : out_(out), state_(std::move(initial)), options_(options), lastDraw_(now) {
  if (options_.terminal) lastDraw_ = now - kTerminalRedrawInterval;
}

void ProgressBar::refreshRate(ProgressClock::time_point now) {
  meter_.record(now, state_.done);
  if (!options_.ownRate) return;
  // Before anything is done a rate says nothing (a job still starting): none is shown.
  state_.ratePerSecond = state_.done == 0 ? std::nullopt : meter_.perSecond();
  state_.etaSeconds = meter_.etaSeconds(state_.total);
}

void ProgressBar::update(std::uint64_t done, ProgressClock::time_point now) {
  if (finished_) return;
  state_.done = done;
  refreshRate(now);
  if (options_.terminal) {
    if (now - lastDraw_ < kTerminalRedrawInterval) return;
    lastDraw_ = now;
    draw();
    return;
  }
  if (now - lastDraw_ < options_.plainInterval) return;
  const std::string line = renderProgressPlain(state_);
  if (line == lastPlain_) return;
  lastDraw_ = now;
  lastPlain_ = line;
  out_ << line << "\n" << std::flush;
  shown_ = true;
}

void ProgressBar::printLine(ProgressClock::time_point now) {
  if (finished_) return;
  lastDraw_ = now;
  if (options_.terminal) {
    draw();
    out_ << "\n" << std::flush;
    drawn_ = false;
    return;
  }
  lastPlain_ = renderProgressPlain(state_);
  out_ << lastPlain_ << "\n" << std::flush;
  shown_ = true;
}

void ProgressBar::note(std::string_view line) {
  if (drawn_) out_ << "\r\x1b[K";
  out_ << line << "\n";
  if (drawn_) {
    drawn_ = false;
    draw();
  }
  out_ << std::flush;
}

void ProgressBar::finish(bool onlyIfShown) {
  if (finished_) return;
  finished_ = true;
  if (onlyIfShown && !shown_) return;
  if (options_.terminal) {
    draw();
    out_ << "\n" << std::flush;
    drawn_ = false;
    return;
  }
  const std::string line = renderProgressPlain(state_);
  if (line != lastPlain_) out_ << line << "\n" << std::flush;
  lastPlain_ = line;
}

void ProgressBar::draw() {
  out_ << "\r" << renderProgressBar(state_, std::max<std::size_t>(options_.width, 2) - 1)
       << "\x1b[K" << std::flush;
  drawn_ = true;
  shown_ = true;
}

}  // namespace deviceops::client
