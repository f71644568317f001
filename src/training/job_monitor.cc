// JobManager: one attempt of a job, from spawning its ranks to recording the outcome.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "training/job_live.h"
#include "training/job_manager.h"
#include "training/trainer_process.h"

namespace deviceops::training {
namespace {

using Clock = std::chrono::steady_clock;

struct Rank {
  pid_t pid = -1;
  std::optional<ExitStatus> exit;
};

bool exitedCleanly(const ExitStatus& exit) {
  return exit.exitCode && (*exit.exitCode == 0 || *exit.exitCode == 3);
}

// Waits until no earlier trainer of this job holds its lock (one that was told to stop by a dying
// daemon may still be writing its checkpoint).
bool waitForTrainerLock(const std::filesystem::path& lockFile, std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (true) {
    const int fd = ::open(lockFile.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return true;  // nothing to wait for that we could see
    const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    ::close(fd);
    if (free) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string describeExit(const ExitStatus& exit) {
  if (exit.signal)
    return fmt::format("killed by signal {} ({})", *exit.signal, signalName(*exit.signal));
  return fmt::format("exit code {}", exit.exitCode.value_or(-1));
}

}  // namespace

void JobManager::monitor(std::string jobId) {
  JobSpec spec;
  std::vector<std::string> devices;
  bool resume = false;
  int attempt = 0;
  std::shared_ptr<Live> live;
  {
    std::lock_guard lock(mutex_);
    const JobRecord& job = jobs_.at(jobId);
    spec = job.spec;
    devices = job.trainerDevices;
    resume = job.resumeNext;
    attempt = job.attempt;
    live = live_.at(jobId);
  }
  const std::filesystem::path workDir = spec.workDir;
  const int worldSize = static_cast<int>(devices.size());
  std::vector<Rank> ranks(static_cast<std::size_t>(worldSize));
  std::string spawnError;

  {
    std::ofstream out(workDir / "job.json", std::ios::trunc);
    out << toJson(spec).dump(2) << "\n";
    if (!out) spawnError = "cannot write job.json in " + workDir.string();
  }
  if (spawnError.empty() &&
      !waitForTrainerLock(workDir / "trainer.lock", options_.stopGrace + std::chrono::seconds(5))) {
    spawnError = "a trainer of an earlier attempt of this job is still running";
  }
  const std::filesystem::path rendezvous = workDir / fmt::format("rendezvous-{}", attempt);
  std::error_code ignored;
  std::filesystem::remove(rendezvous, ignored);
  int pipeFds[2] = {-1, -1};
  if (spawnError.empty() && ::pipe2(pipeFds, O_CLOEXEC) != 0) spawnError = "cannot create a pipe";
  for (int rank = 0; spawnError.empty() && rank < worldSize; ++rank) {
    SpawnRequest request;
    request.executable = options_.trainerExecutable;
    request.logFile = workDir / "logs" / fmt::format("rank-{}.log", rank);
    request.progressFd = rank == 0 ? pipeFds[1] : -1;
    request.arguments = {"train",
                         "--job",
                         (workDir / "job.json").string(),
                         "--rank",
                         std::to_string(rank),
                         "--world-size",
                         std::to_string(worldSize),
                         "--device",
                         devices[static_cast<std::size_t>(rank)],
                         "--rendezvous",
                         rendezvous.string()};
    if (rank == 0) request.arguments.insert(request.arguments.end(), {"--progress-fd", "3"});
    if (resume) request.arguments.emplace_back("--resume");
    Result<pid_t> pid = spawnTrainer(request);
    if (!pid.ok()) {
      spawnError = pid.error().message;
      break;
    }
    ranks[static_cast<std::size_t>(rank)].pid = *pid;
  }
  if (pipeFds[1] >= 0) ::close(pipeFds[1]);
  {
    std::lock_guard lock(mutex_);
    if (auto it = jobs_.find(jobId); it != jobs_.end()) {
      for (const Rank& rank : ranks) it->second.pids.push_back(rank.pid);
    }
  }
  if (!spawnError.empty()) {
    for (Rank& rank : ranks) sendSignal(rank.pid, SIGKILL);
  }

  // Watch: progress lines from rank 0, exits of every rank, stop requests and their deadlines.
  std::string pending;
  bool pipeOpen = pipeFds[0] >= 0;
  bool terminated = false;  // SIGTERM sent
  bool killed = false;      // SIGKILL sent after the grace period
  std::optional<Clock::time_point> killAt;
  std::optional<int> failedRank;
  auto running = [&] {
    return std::any_of(ranks.begin(), ranks.end(),
                       [](const Rank& r) { return r.pid > 0 && !r.exit; });
  };
  while (running() || pipeOpen) {
    if (pipeOpen) {
      pollfd descriptor{pipeFds[0], POLLIN, 0};
      if (::poll(&descriptor, 1, 100) > 0) {
        char buffer[8192];
        const ssize_t n = ::read(pipeFds[0], buffer, sizeof buffer);
        if (n <= 0) {
          pipeOpen = false;
        } else {
          pending.append(buffer, static_cast<std::size_t>(n));
          std::size_t newline;
          while ((newline = pending.find('\n')) != std::string::npos) {
            handleProgressLine(jobId, pending.substr(0, newline));
            pending.erase(0, newline + 1);
          }
        }
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (std::size_t r = 0; r < ranks.size(); ++r) {
      Rank& rank = ranks[r];
      if (rank.pid <= 0 || rank.exit) continue;
      rank.exit = pollExit(rank.pid);
      if (rank.exit && !exitedCleanly(*rank.exit) && !failedRank && !live->stopRequested) {
        failedRank = static_cast<int>(r);
        // The other ranks cannot finish a collective without it: end them.
        for (Rank& other : ranks) {
          if (!other.exit) sendSignal(other.pid, SIGTERM);
        }
        killAt = Clock::now() + std::chrono::seconds(3);
      }
    }
    if (live->stopRequested && !terminated) {
      terminated = true;
      for (Rank& rank : ranks) {
        if (!rank.exit) sendSignal(rank.pid, SIGTERM);
      }
      std::chrono::milliseconds grace;
      {
        std::lock_guard lock(mutex_);
        grace = live->stopGrace;
      }
      killAt = Clock::now() + grace;
    }
    if (killAt && Clock::now() >= *killAt && running()) {
      killed = true;
      for (Rank& rank : ranks) {
        if (!rank.exit) sendSignal(rank.pid, SIGKILL);
      }
      killAt.reset();
    }
    if (!running() && pipeOpen && ranks.front().exit) {
      // Rank 0 is gone; whatever it wrote is in the pipe. Drain without blocking.
      pollfd descriptor{pipeFds[0], POLLIN, 0};
      if (::poll(&descriptor, 1, 0) <= 0) pipeOpen = false;
    }
  }
  if (pipeFds[0] >= 0) ::close(pipeFds[0]);
  std::filesystem::remove(rendezvous, ignored);

  // The outcome, from exit statuses first and what rank 0 said second.
  std::lock_guard lock(mutex_);
  // Last action of this thread, under the lock: stop() may destroy the manager once it is 0.
  struct Finished {
    JobManager& manager;
    ~Finished() {
      --manager.runningMonitors_;
      manager.changed_.notify_all();
    }
  } finished{*this};
  auto it = jobs_.find(jobId);
  if (it == jobs_.end()) return;
  JobRecord& job = it->second;
  job.pids.clear();
  releaseReservations(job);
  job.progress.elapsedSeconds += job.progress.attemptElapsedSeconds;
  job.progress.attemptElapsedSeconds = 0;
  job.progress.etaSeconds.reset();
  const ExitStatus rank0 = ranks.front().exit.value_or(ExitStatus{});
  job.exitCode = rank0.exitCode;
  job.signal = rank0.signal;
  const std::string checkpointNote = job.progress.lastCheckpointStep
                                         ? fmt::format("resumable from the checkpoint at step {}",
                                                       *job.progress.lastCheckpointStep)
                                         : std::string("no checkpoint yet");
  const std::size_t logRank = failedRank ? static_cast<std::size_t>(*failedRank) : 0;
  auto failureLog = [&] {
    return tailLines(workDir / "logs" / fmt::format("rank-{}.log", logRank),
                     options_.failureLogLines);
  };
  if (!spawnError.empty()) {
    job.error = spawnError;
    transition(job, JobState::kFailed, spawnError);
  } else if (failedRank) {
    const ExitStatus& exit = *ranks[static_cast<std::size_t>(*failedRank)].exit;
    job.exitCode = exit.exitCode;
    job.signal = exit.signal;
    job.error = !live->errorMessage.empty() && *failedRank == 0
                    ? live->errorMessage
                    : fmt::format("rank {} trainer {}", *failedRank, describeExit(exit));
    job.lastLogLines = failureLog();
    transition(job, JobState::kFailed, job.error);
  } else if (rank0.exitCode == 0 && live->completed) {
    // Completed even if a stop request crossed the end of training.
    transition(job, JobState::kCompleted,
               live->completionReason.empty() ? "finished" : live->completionReason);
  } else if (live->shutdown) {
    transition(job, JobState::kInterrupted, "the daemon stopped; " + checkpointNote);
  } else if (live->stopRequested) {
    transition(job, JobState::kStopped,
               killed ? fmt::format("killed after the stop grace period; {}", checkpointNote)
                      : fmt::format("stopped on request at step {}; {}", job.progress.step,
                                    checkpointNote));
  } else {
    job.error = live->errorMessage.empty() ? "trainer " + describeExit(rank0) : live->errorMessage;
    job.lastLogLines = failureLog();
    transition(job, JobState::kFailed, job.error);
  }
  job.resumeNext = false;
  schedule();
}

void JobManager::handleProgressLine(const std::string& jobId, const std::string& line) {
  nlohmann::json event = nlohmann::json::parse(line, nullptr, false);
  if (event.is_discarded() || !event.is_object() || !event.contains("type") ||
      !event.at("type").is_string()) {
    spdlog::warn("training job {}: ignoring a malformed progress line", jobId);
    return;
  }
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(jobId);
  auto liveIt = live_.find(jobId);
  if (it == jobs_.end() || liveIt == live_.end()) return;
  JobRecord& job = it->second;
  Live& live = *liveIt->second;
  JobProgress& progress = job.progress;
  const std::string type = event.at("type").get<std::string>();
  try {
    if (type == "started") {
      progress.step = event.value("step", std::int64_t{0});
      progress.totalSteps = event.value("totalSteps", progress.totalSteps);
      progress.stepsPerEpoch = event.value("stepsPerEpoch", progress.stepsPerEpoch);
      progress.epochs = event.value("epochs", progress.epochs);
      if (job.state == JobState::kStarting) {
        const auto resumedFrom = event.value("resumedFrom", nlohmann::json(nullptr));
        transition(
            job, JobState::kRunning,
            resumedFrom.is_string()
                ? fmt::format("resumed at step {} from {}", progress.step,
                              resumedFrom.get<std::string>())
                : fmt::format("training on {} ({} threads per rank)",
                              fmt::join(job.trainerDevices, ", "), event.value("threads", 0)));
      }
    } else if (type == "progress") {
      progress.epoch = event.value("epoch", progress.epoch);
      progress.step = event.value("step", progress.step);
      progress.totalSteps = event.value("totalSteps", progress.totalSteps);
      if (event.contains("loss") && event.at("loss").is_number())
        progress.loss = event.at("loss").get<double>();
      if (event.contains("learningRate")) progress.learningRate = event.value("learningRate", 0.0);
      if (event.contains("samplesPerSecond")) {
        progress.samplesPerSecond = event.value("samplesPerSecond", 0.0);
        const double stepsPerSecond =
            *progress.samplesPerSecond /
            static_cast<double>(std::max<std::int64_t>(1, job.spec.batchSize));
        if (stepsPerSecond > 0) {
          progress.etaSeconds =
              static_cast<double>(progress.totalSteps - progress.step) / stepsPerSecond;
        }
      }
      progress.attemptElapsedSeconds =
          event.value("elapsedSeconds", progress.attemptElapsedSeconds);
    } else if (type == "epoch") {
      progress.epoch = event.value("epoch", progress.epoch);
      progress.step = event.value("step", progress.step);
      // The epoch's totals stand for the job's figures at this boundary (and are the only ones
      // of a job that ends before its first progress event).
      if (event.contains("loss") && event.at("loss").is_number())
        progress.loss = event.at("loss").get<double>();
      if (event.contains("learningRate") && event.at("learningRate").is_number())
        progress.learningRate = event.at("learningRate").get<double>();
      if (event.contains("samplesPerSecond") && event.at("samplesPerSecond").is_number())
        progress.samplesPerSecond = event.at("samplesPerSecond").get<double>();
      progress.attemptElapsedSeconds =
          std::max(progress.attemptElapsedSeconds,
                   event.value("elapsedSeconds", progress.attemptElapsedSeconds));
      progress.lastEpoch = event;
      progress.lastEpoch.erase("type");
      progress.history.push_back(progress.lastEpoch);
      (void)persist(job);
    } else if (type == "checkpoint") {
      progress.lastCheckpoint = event.value("file", "");
      progress.lastCheckpointStep = event.value("step", std::int64_t{0});
      (void)persist(job);
    } else if (type == "completed") {
      live.completed = true;
      live.completionReason = event.value("reason", "finished all epochs");
      job.weightsPath = event.value("weights", "");
      progress.step = event.value("step", progress.step);
    } else if (type == "stopped") {
      progress.step = event.value("step", progress.step);
    } else if (type == "error") {
      live.errorMessage = event.value("message", "the trainer reported an error");
    }
  } catch (const nlohmann::json::exception& error) {
    spdlog::warn("training job {}: progress line with a wrong field type: {}", jobId, error.what());
    return;
  }
  nlohmann::json data = std::move(event);
  data.erase("type");
  publish(jobId, type, std::move(data));
}

}  // namespace deviceops::training
