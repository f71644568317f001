// JobManager's per-job runtime state (private to the training component).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>

#include "training/job_manager.h"

namespace deviceops::training {

// Guarded by JobManager::mutex_ (the atomics are also read by the monitor without it).
struct JobManager::Live {
  std::deque<JobEvent> backlog;  // the newest options.eventBacklog events
  std::uint64_t sequence = 0;
  std::atomic<bool> stopRequested{false};
  std::atomic<bool> shutdown{false};  // the daemon is stopping: outcome "interrupted"
  std::chrono::milliseconds stopGrace{30000};
  // What rank 0 reported in this attempt.
  bool completed = false;
  std::string errorMessage;
  std::string completionReason;

  void resetAttempt() {
    stopRequested = false;
    completed = false;
    errorMessage.clear();
    completionReason.clear();
  }
};

}  // namespace deviceops::training
