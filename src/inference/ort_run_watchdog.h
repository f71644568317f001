// RunWatchdog: terminates ONNX Runtime runs whose RunControl was cancelled or whose deadline
// passed. Internal to src/inference/.
//
// One process-wide thread scans the active runs every kScanInterval (5 ms) and, for a run that
// must stop, records why and calls Ort::RunOptions::SetTerminate (a flag ONNX Runtime checks
// between nodes). The thread sleeps while no run is registered.
//
// Thread-safety: all members are safe to call concurrently. A Watch must be destroyed (which
// unregisters it) before the RunOptions it refers to.
#pragma once

#include <onnxruntime_cxx_api.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "inference/session.h"

namespace deviceops::inference {

enum class StopReason { kNone, kCancelled, kDeadline };

// Whether `control` asks to stop now.
StopReason stopReason(const RunControl& control, std::chrono::steady_clock::time_point now);

class RunWatchdog {
 public:
  static constexpr std::chrono::milliseconds kScanInterval{5};

  // Registers one run for as long as the Watch lives; reason() tells whether the watchdog
  // terminated it (and why).
  class Watch {
   public:
    Watch(RunWatchdog& watchdog, Ort::RunOptions& options, const RunControl& control);
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    StopReason reason() const { return reason_.load(); }

   private:
    friend class RunWatchdog;
    RunWatchdog& watchdog_;
    Ort::RunOptions& options_;
    const RunControl& control_;
    std::atomic<StopReason> reason_{StopReason::kNone};
  };

  static RunWatchdog& instance();
  ~RunWatchdog();

 private:
  RunWatchdog();
  void add(Watch* watch);
  void remove(Watch* watch);
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Watch*> watches_;  // guarded by mutex_
  bool stop_ = false;            // guarded by mutex_
  std::thread thread_;
};

}  // namespace deviceops::inference
