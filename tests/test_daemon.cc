#include "test_daemon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

namespace deviceops::testing {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

Connection::Connection(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

bool Connection::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

namespace {

// Reads more bytes into `buffer`; false on close, error or deadline.
bool readMore(int fd, std::string& buffer, SteadyClock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
  if (left.count() <= 0) return false;
  pollfd descriptor{fd, POLLIN, 0};
  if (::poll(&descriptor, 1, static_cast<int>(left.count())) <= 0) return false;
  char chunk[65536];
  const ssize_t received = ::recv(fd, chunk, sizeof chunk, 0);
  if (received <= 0) return false;
  buffer.append(chunk, static_cast<std::size_t>(received));
  return true;
}

}  // namespace

std::optional<RawResponse> Connection::read(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  std::size_t headerEnd;
  while ((headerEnd = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!readMore(fd_, buffer_, deadline)) return std::nullopt;
  }
  RawResponse response;
  std::istringstream head(buffer_.substr(0, headerEnd));
  std::string line;
  std::getline(head, line);
  if (line.size() < 12) return std::nullopt;
  response.status = std::atoi(line.substr(9, 3).c_str());
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    response.headers[name] = value;
  }
  const std::size_t length =
      response.headers.count("content-length") ? std::stoul(response.headers["content-length"]) : 0;
  while (buffer_.size() < headerEnd + 4 + length) {
    if (!readMore(fd_, buffer_, deadline)) return std::nullopt;
  }
  response.body = buffer_.substr(headerEnd + 4, length);
  buffer_.erase(0, headerEnd + 4 + length);
  return response;
}

std::string Connection::readUntilClosed(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (readMore(fd_, buffer_, deadline)) {
  }
  return std::exchange(buffer_, {});
}

bool Connection::closedWithin(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    pollfd descriptor{fd_, POLLIN, 0};
    if (::poll(&descriptor, 1, 20) > 0) {
      char chunk[4096];
      const ssize_t received = ::recv(fd_, chunk, sizeof chunk, 0);
      if (received <= 0) return true;
    }
  }
  return false;
}

TestDaemon::TestDaemon(std::string configToml, std::vector<std::string> extraArgs) {
  char pattern[] = "/tmp/deviceops-test-XXXXXX";
  directory_ = ::mkdtemp(pattern);
  const std::filesystem::path readyFile = directory_ / "ready";
  std::vector<std::string> args = {DEVICEOPSD_PATH, "--ready-file", readyFile.string()};
  const auto given = [&](const char* flag) {
    return std::find(extraArgs.begin(), extraArgs.end(), flag) != extraArgs.end();
  };
  if (!given("--data-dir")) args.insert(args.end(), {"--data-dir", (directory_ / "data").string()});
  if (!given("--listen")) {
    args.insert(args.end(), {"--listen", "127.0.0.1:0"});
  }
  if (!configToml.empty()) {
    std::ofstream(directory_ / "config.toml") << configToml;
    args.push_back("--config");
    args.push_back((directory_ / "config.toml").string());
  }
  args.insert(args.end(), extraArgs.begin(), extraArgs.end());
  const std::string logPath = (directory_ / "daemon.log").string();
  pid_ = ::fork();
  if (pid_ == 0) {
    const int log = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(log, 1);
    ::dup2(log, 2);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  const auto deadline = SteadyClock::now() + 30s;
  while (SteadyClock::now() < deadline) {
    std::ifstream ready(readyFile);
    std::string address;
    if (ready >> address) {
      port_ = std::atoi(address.substr(address.rfind(':') + 1).c_str());
      return;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      stopped_ = true;
      return;
    }
    std::this_thread::sleep_for(10ms);
  }
}

TestDaemon::~TestDaemon() {
  if (!stopped_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

std::string TestDaemon::log() const {
  std::ifstream file(directory_ / "daemon.log");
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

RawResponse TestDaemon::request(const std::string& method, const std::string& target,
                                const std::string& body,
                                const std::map<std::string, std::string>& headers,
                                std::chrono::milliseconds timeout) {
  Connection connection(port_);
  std::string message = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [name, value] : headers) message += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST" || method == "PUT") {
    message += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  message += "Connection: close\r\n\r\n" + body;
  connection.send(message);
  return connection.read(timeout).value_or(RawResponse{});
}

void TestDaemon::kill() {
  if (stopped_) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  stopped_ = true;
}

std::uint64_t TestDaemon::residentBytes() const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

int TestDaemon::stop(std::chrono::milliseconds timeout) {
  if (stopped_) return -1;
  ::kill(pid_, SIGTERM);
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      stopped_ = true;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return -WTERMSIG(status);
    }
    std::this_thread::sleep_for(10ms);
  }
  return -1000;
}

std::pair<int, std::string> runProgram(const std::vector<std::string>& argv,
                                       const std::map<std::string, std::string>& environment) {
  int pipeFds[2];
  if (::pipe(pipeFds) != 0) return {-1, "pipe failed"};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(pipeFds[1], 1);
    ::dup2(pipeFds[1], 2);
    ::close(pipeFds[0]);
    for (const auto& [name, value] : environment) ::setenv(name.c_str(), value.c_str(), 1);
    std::vector<std::string> copy = argv;
    std::vector<char*> raw;
    for (std::string& arg : copy) raw.push_back(arg.data());
    raw.push_back(nullptr);
    ::execv(raw[0], raw.data());
    ::_exit(127);
  }
  ::close(pipeFds[1]);
  std::string output;
  char chunk[4096];
  ssize_t received;
  while ((received = ::read(pipeFds[0], chunk, sizeof chunk)) > 0) {
    output.append(chunk, static_cast<std::size_t>(received));
  }
  ::close(pipeFds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status), output};
}

}  // namespace deviceops::testing
