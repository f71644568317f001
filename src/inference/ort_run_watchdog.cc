#include "inference/ort_run_watchdog.h"

#include <algorithm>

namespace deviceops::inference {

StopReason stopReason(const RunControl& control, std::chrono::steady_clock::time_point now) {
  if (control.cancelled && control.cancelled->load()) return StopReason::kCancelled;
  if (control.deadline && now >= *control.deadline) return StopReason::kDeadline;
  return StopReason::kNone;
}

RunWatchdog::Watch::Watch(RunWatchdog& watchdog, Ort::RunOptions& options,
                          const RunControl& control)
    : watchdog_(watchdog), options_(options), control_(control) {
  watchdog_.add(this);
}

RunWatchdog::Watch::~Watch() { watchdog_.remove(this); }

RunWatchdog& RunWatchdog::instance() {
  static RunWatchdog watchdog;
  return watchdog;
}

RunWatchdog::RunWatchdog() : thread_([this] { loop(); }) {}

RunWatchdog::~RunWatchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RunWatchdog::add(Watch* watch) {
  bool first = false;
  {
    std::lock_guard lock(mutex_);
    watches_.push_back(watch);
    first = watches_.size() == 1;
  }
  if (first) wake_.notify_all();
}

void RunWatchdog::remove(Watch* watch) {
  std::lock_guard lock(mutex_);
  watches_.erase(std::remove(watches_.begin(), watches_.end(), watch), watches_.end());
}

void RunWatchdog::loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (watches_.empty()) {
      wake_.wait(lock, [this] { return stop_ || !watches_.empty(); });
      continue;
    }
    const auto now = std::chrono::steady_clock::now();
    for (Watch* watch : watches_) {
      if (watch->reason_.load() != StopReason::kNone) continue;
      const StopReason reason = stopReason(watch->control_, now);
      if (reason == StopReason::kNone) continue;
      watch->reason_.store(reason);
      // Only sets a flag that ONNX Runtime reads between nodes; safe while Run is in progress.
      try {
        watch->options_.SetTerminate();
      } catch (...) {  // NOLINT(bugprone-empty-catch): the run then ends on its own
      }
    }
    wake_.wait_for(lock, kScanInterval, [this] { return stop_; });
  }
}

}  // namespace deviceops::inference
