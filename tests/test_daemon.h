// Test harness: runs the real deviceopsd as a child process on 127.0.0.1 port 0 with a temporary
// data directory, and talks to it over raw sockets (so tests can also send malformed bytes).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace deviceops::testing {

struct RawResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // lowercased names
  std::string body;
  nlohmann::json json() const { return nlohmann::json::parse(body); }
};

// One TCP connection to 127.0.0.1:port.
class Connection {
 public:
  explicit Connection(int port);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  bool connected() const { return fd_ >= 0; }
  bool send(std::string_view bytes);
  // Reads one response (Content-Length framed). nullopt on close or timeout.
  std::optional<RawResponse> read(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Everything the peer sends until it closes the connection or `timeout` passes (streams).
  std::string readUntilClosed(std::chrono::milliseconds timeout);
  // True when the peer closes the connection within `timeout`.
  bool closedWithin(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
  std::string buffer_;
};

class TestDaemon {
 public:
  // `configToml` is written to <temp>/config.toml and passed with --config when non-empty.
  explicit TestDaemon(std::string configToml = "", std::vector<std::string> extraArgs = {});
  ~TestDaemon();
  bool started() const { return port_ > 0; }
  int port() const { return port_; }
  const std::filesystem::path& directory() const { return directory_; }
  std::string log() const;  // everything the daemon wrote to stdout/stderr so far

  // Waits at most `timeout` for the response (status 0 when none came).
  RawResponse request(const std::string& method, const std::string& target,
                      const std::string& body = "",
                      const std::map<std::string, std::string>& headers = {},
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  RawResponse get(const std::string& target) { return request("GET", target); }
  RawResponse post(const std::string& target, const nlohmann::json& body) {
    return request("POST", target, body.dump(), {{"Content-Type", "application/json"}});
  }

  // Sends SIGTERM and returns the exit status (or -signal), waiting at most `timeout`.
  int stop(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  pid_t pid() const { return pid_; }
  void kill();                          // SIGKILL, like a crash
  std::uint64_t residentBytes() const;  // VmRSS of the daemon process

 private:
  std::filesystem::path directory_;
  pid_t pid_ = -1;
  int port_ = 0;
  bool stopped_ = false;
};

// Runs a program, returns {exit code, stdout+stderr}.
std::pair<int, std::string> runProgram(const std::vector<std::string>& argv,
                                       const std::map<std::string, std::string>& environment = {});

}  // namespace deviceops::testing
