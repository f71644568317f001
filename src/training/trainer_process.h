// Starting and ending trainer processes (one per rank of a job).
//
// spawnTrainer forks and execs `executable` with `arguments`: stdin from /dev/null, stdout and
// stderr appended to `logFile`, `progressFd` (a pipe's write end, or -1) as fd 3, every other
// descriptor closed, signals unblocked, its own process group, the daemon's environment with
// OMP_WAIT_POLICY=passive unless set, and PR_SET_PDEATHSIG = SIGTERM so
// that a trainer whose daemon died checkpoints and exits. PR_SET_PDEATHSIG fires when the
// *thread* that forked exits: call it from a thread that outlives the child (the job's monitor).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace deviceops::training {

struct SpawnRequest {
  std::filesystem::path executable;
  std::vector<std::string> arguments;  // without argv[0]
  std::filesystem::path logFile;
  int progressFd = -1;
};

Result<pid_t> spawnTrainer(const SpawnRequest& request);

struct ExitStatus {
  std::optional<int> exitCode;  // exited normally
  std::optional<int> signal;    // killed by a signal
};
// Non-blocking: nullopt while the process runs. Reaps it once it ended.
std::optional<ExitStatus> pollExit(pid_t pid);
// Sends `signal` to the process (ignores one that is already gone).
void sendSignal(pid_t pid, int signal);
// "SIGKILL", "SIGSEGV", ... or "signal 42".
std::string signalName(int signal);

// The last `count` lines of a text file (reads at most its last 64 KiB); empty when absent.
std::vector<std::string> tailLines(const std::filesystem::path& file, std::size_t count);

}  // namespace deviceops::training
