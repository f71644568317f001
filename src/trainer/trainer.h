// The training loop of one rank (docs/TRAINING.md, "The trainer process" and "Training
// semantics"), as a library function so that tests can run ranks in-process.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "training_formats/spec.h"

namespace deviceops::trainer {

// Exit statuses of `deviceops-trainer train`.
constexpr int kExitCompleted = 0;
constexpr int kExitFailed = 1;     // unexpected failure; the daemon reports the last log lines
constexpr int kExitCannotRun = 2;  // after an "error" event: bad spec, dataset mismatch, ...
constexpr int kExitStopped = 3;    // stopped on request, after its checkpoint

struct RunOptions {
  int rank = 0;
  int worldSize = 1;
  std::string device = "cpu";  // "cpu" | "cuda:N"
  std::string rendezvous;      // FileStore path shared by all ranks (worldSize > 1)
  bool resume = false;         // continue from the newest valid checkpoint in <workDir>
  int progressFd = -1;         // JSON lines (rank 0 only; not owned)
  // Test hook: called on every rank with the number of the step being finished (1-based global
  // step); true requests a stop exactly like SIGTERM.
  std::function<bool(std::int64_t step)> stopAfter;
};

// The process-wide stop request set by the SIGTERM/SIGINT handlers (async-signal-safe store).
std::atomic<bool>& stopRequested();

// Runs rank options.rank of `spec` to completion, a stop request or a failure and returns the
// exit status above. Logs human-readable lines on stdout; never throws.
// Thread-safety: ranks of one job may run concurrently in one process (tests); torch's global
// thread count and RNG are process-wide, so concurrent ranks must use the same settings and no
// dropout if results must be reproducible.
int runTraining(const training::JobSpec& spec, const RunOptions& options);

}  // namespace deviceops::trainer
