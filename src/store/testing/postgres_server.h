// A real PostgreSQL 15 server for tests: initdb into a temporary directory, then `postgres` on a
// unix socket in that directory and on 127.0.0.1 at a free port. Not a double: the Debian
// package's binaries (/usr/lib/postgresql/15/bin). initdb and postgres refuse to run as root, so
// when the test runs as root they run as the `postgres` system user (fork, setgid/setuid; the
// temporary directory is chowned to it); otherwise as the current user.
//
// Failures are reported, never skipped: start() returns an Error with the reason and the tail
// of the server log, and the test that needs the server fails with it.
//
// Thread-compatibility: one thread drives a server (start/stop/restart).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "common/result.h"

namespace deviceops::testing {

class PostgresServer {
 public:
  PostgresServer() = default;
  ~PostgresServer();  // stops the server and removes the directory
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // initdb (once) and start; waits until the server accepts connections (up to 30 s).
  Status start();
  // Fast shutdown (SIGINT), waits for the process to exit. The data directory is kept.
  Status stop();
  Status restart() {
    if (Status stopped = stop(); !stopped.ok()) return stopped;
    return start();
  }
  bool running() const { return pid_ > 0; }
  // A `-c name=value` for the next start(), after (so overriding) the test defaults, which
  // trade durability for speed: fsync=off, synchronous_commit=off, full_page_writes=off.
  void addSetting(const std::string& name, const std::string& value) {
    settings_.push_back(name + "=" + value);
  }

  // Creates a database owned by the superuser; returns its libpq connection string
  // ("host=<socket dir> port=<port> dbname=<name> user=postgres").
  Result<std::string> createDatabase(const std::string& name);
  std::string connectionString(const std::string& database) const;
  // Runs one SQL statement (no results) against `database` (tests' bookkeeping).
  Status execute(const std::string& database, const std::string& sql);
  int port() const { return port_; }
  std::string logTail() const;

 private:
  Status initdb();
  std::filesystem::path directory_;
  int port_ = 0;
  pid_t pid_ = -1;
  bool initialised_ = false;
  std::vector<std::string> settings_;
};

}  // namespace deviceops::testing
