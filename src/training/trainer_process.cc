#include "training/trainer_process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace deviceops::training {
namespace {

// After fork, before exec: only async-signal-safe calls.
[[noreturn]] void execChild(const char* path, char* const argv[], char* const envp[], int logFd,
                            int nullFd, int progressFd, pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(126);  // the parent died before prctl
  ::setpgid(0, 0);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  // fd 3 may currently be one of our own descriptors: move the progress fd out of the way first.
  int progress = progressFd;
  if (progress >= 0 && progress <= 3) progress = ::fcntl(progress, F_DUPFD_CLOEXEC, 10);
  ::dup2(nullFd, 0);
  ::dup2(logFd, 1);
  ::dup2(logFd, 2);
  if (progress >= 0) {
    ::dup2(progress, 3);
  } else {
    ::close(3);
  }
  const int firstToClose = progress >= 0 ? 4 : 3;
  if (::syscall(SYS_close_range, firstToClose, ~0U, 0) != 0) {
    for (int fd = firstToClose; fd < 4096; ++fd) ::close(fd);
  }
  ::execve(path, argv, envp);
  const char message[] = "deviceops: cannot execute the trainer\n";
  [[maybe_unused]] const ssize_t ignored = ::write(2, message, sizeof message - 1);
  ::_exit(127);
}

}  // namespace

Result<pid_t> spawnTrainer(const SpawnRequest& request) {
  std::error_code fsError;
  std::filesystem::create_directories(request.logFile.parent_path(), fsError);
  const int logFd =
      ::open(request.logFile.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0) {
    return makeError(ErrorCode::kInternal,
                     fmt::format("cannot open the log file {}: {}", request.logFile.string(),
                                 std::strerror(errno)));
  }
  const int nullFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  std::vector<std::string> strings;
  strings.push_back(request.executable.string());
  strings.insert(strings.end(), request.arguments.begin(), request.arguments.end());
  std::vector<char*> argv;
  for (std::string& s : strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  // The environment, plus OMP_WAIT_POLICY=passive unless the operator chose a policy: libtorch's
  // OpenMP threads otherwise spin while waiting, which costs a 2-thread job 3x on a machine whose
  // cores other work also uses (docs/BENCHMARKS.md section 6).
  std::string waitPolicy = "OMP_WAIT_POLICY=passive";
  std::vector<char*> envp;
  for (char** entry = environ; *entry != nullptr; ++entry) envp.push_back(*entry);
  if (std::getenv("OMP_WAIT_POLICY") == nullptr) envp.push_back(waitPolicy.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    execChild(strings[0].c_str(), argv.data(), envp.data(), logFd, nullFd, request.progressFd,
              parent);
  }
  const int forkErrno = errno;
  ::close(logFd);
  if (nullFd >= 0) ::close(nullFd);
  if (pid < 0) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("cannot start a trainer process: {}", std::strerror(forkErrno)));
  }
  return pid;
}

std::optional<ExitStatus> pollExit(pid_t pid) {
  int status = 0;
  const pid_t result = ::waitpid(pid, &status, WNOHANG);
  if (result == 0) return std::nullopt;
  ExitStatus exit;
  if (result < 0) {
    exit.exitCode = 1;  // not our child any more (already reaped): report a plain failure
  } else if (WIFEXITED(status)) {
    exit.exitCode = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
  } else {
    return std::nullopt;  // stopped/continued: still alive
  }
  return exit;
}

void sendSignal(pid_t pid, int signal) {
  if (pid > 0) ::kill(pid, signal);
}

std::string signalName(int signal) {
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation != nullptr ? std::string("SIG") + abbreviation
                                 : fmt::format("signal {}", signal);
}

std::vector<std::string> tailLines(const std::filesystem::path& file, std::size_t count) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > 65536 ? size - 65536 : 0;
  in.seekg(start);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  std::vector<std::string> lines;
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    lines.emplace_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  if (start > 0 && !lines.empty()) lines.erase(lines.begin());  // a partial first line
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  if (lines.size() > count)
    lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(count));
  return lines;
}

}  // namespace deviceops::training
