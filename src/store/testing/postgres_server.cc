#include "store/testing/postgres_server.h"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace deviceops::testing {
namespace {

constexpr const char* kBin = "/usr/lib/postgresql/15/bin/";

Error failure(std::string message) {
  return makeError(ErrorCode::kUnavailable, std::move(message));
}

int freePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  int port = 0;
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

// Who runs the server: the postgres user when we are root, else ourselves.
struct RunAs {
  bool drop = false;
  uid_t uid = 0;
  gid_t gid = 0;
};

Result<RunAs> runAs() {
  RunAs who;
  if (::geteuid() != 0) return who;
  const passwd* user = ::getpwnam("postgres");
  if (user == nullptr) {
    return failure(
        "running as root, and there is no 'postgres' user to run PostgreSQL as "
        "(install the Debian postgresql package)");
  }
  who.drop = true;
  who.uid = user->pw_uid;
  who.gid = user->pw_gid;
  return who;
}

// fork + (drop privileges) + exec; stdout/stderr appended to `log`. Returns the child's pid.
Result<pid_t> spawn(const std::vector<std::string>& argv, const std::filesystem::path& log) {
  Result<RunAs> who = runAs();
  if (!who.ok()) return who.error();
  const pid_t pid = ::fork();
  if (pid < 0) return failure("fork failed");
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    ::setpgid(0, 0);  // SIGINT to the test does not reach the server
    if (who->drop) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(who->gid) != 0 || ::setuid(who->uid) != 0) {
        ::_exit(126);
      }
    }
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

Status chownTree(const std::filesystem::path& path) {
  Result<RunAs> who = runAs();
  if (!who.ok()) return who.error();
  if (!who->drop) return Status::success();
  if (::chown(path.c_str(), who->uid, who->gid) != 0) {
    return failure("cannot chown " + path.string() + " to postgres");
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path)) {
    if (::lchown(entry.path().c_str(), who->uid, who->gid) != 0) {
      return failure("cannot chown " + entry.path().string() + " to postgres");
    }
  }
  return Status::success();
}

}  // namespace

PostgresServer::~PostgresServer() {
  (void)stop();
  if (!directory_.empty()) {
    std::error_code error;
    std::filesystem::remove_all(directory_, error);
  }
}

std::string PostgresServer::logTail() const {
  std::ifstream file(directory_ / "server.log");
  std::stringstream content;
  content << file.rdbuf();
  std::string text = content.str();
  if (text.size() > 2000) text = text.substr(text.size() - 2000);
  return text;
}

Status PostgresServer::initdb() {
  char pattern[] = "/tmp/deviceops-pg-XXXXXX";
  if (::mkdtemp(pattern) == nullptr) return failure("mkdtemp failed");
  directory_ = pattern;
  std::filesystem::create_directories(directory_ / "socket");
  if (Status owned = chownTree(directory_); !owned.ok()) return owned;
  Result<pid_t> pid =
      spawn({std::string(kBin) + "initdb", "-D", (directory_ / "data").string(), "-U", "postgres",
             "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"},
            directory_ / "server.log");
  if (!pid.ok()) return pid.error();
  int status = 0;
  ::waitpid(*pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return failure("initdb failed (status " + std::to_string(status) + "): " + logTail());
  }
  initialised_ = true;
  return Status::success();
}

Status PostgresServer::start() {
  if (pid_ > 0) return Status::success();
  if (!std::filesystem::exists(std::string(kBin) + "postgres")) {
    return failure(std::string("PostgreSQL 15 is not installed (") + kBin +
                   "postgres missing); install the Debian postgresql package");
  }
  if (!initialised_) {
    if (Status done = initdb(); !done.ok()) return done;
  }
  if (port_ == 0) port_ = freePort();
  std::vector<std::string> argv = {std::string(kBin) + "postgres",
                                   "-D",
                                   (directory_ / "data").string(),
                                   "-p",
                                   std::to_string(port_),
                                   "-k",
                                   (directory_ / "socket").string(),
                                   "-c",
                                   "listen_addresses=127.0.0.1",
                                   "-c",
                                   "fsync=off",
                                   "-c",
                                   "synchronous_commit=off",
                                   "-c",
                                   "full_page_writes=off",
                                   "-c",
                                   "max_connections=50"};
  for (const std::string& setting : settings_) {
    argv.push_back("-c");
    argv.push_back(setting);
  }
  Result<pid_t> pid = spawn(argv, directory_ / "server.log");
  if (!pid.ok()) return pid.error();
  pid_ = *pid;
  const std::string info = connectionString("postgres");
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < until) {
    if (PQping(info.c_str()) == PQPING_OK) return Status::success();
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return failure("postgres exited during start-up: " + logTail());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  (void)stop();
  return failure("postgres did not accept connections within 30 s: " + logTail());
}

Status PostgresServer::stop() {
  if (pid_ <= 0) return Status::success();
  ::kill(pid_, SIGINT);  // fast shutdown: disconnect clients, checkpoint, exit
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > until) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  return Status::success();
}

std::string PostgresServer::connectionString(const std::string& database) const {
  return "host=" + (directory_ / "socket").string() + " port=" + std::to_string(port_) +
         " dbname=" + database + " user=postgres";
}

Status PostgresServer::execute(const std::string& database, const std::string& sql) {
  PGconn* connection = PQconnectdb(connectionString(database).c_str());
  if (PQstatus(connection) != CONNECTION_OK) {
    std::string message = PQerrorMessage(connection);
    PQfinish(connection);
    return failure("cannot connect to PostgreSQL: " + message);
  }
  PGresult* result = PQexec(connection, sql.c_str());
  const ExecStatusType status = PQresultStatus(result);
  std::string message = PQresultErrorMessage(result);
  PQclear(result);
  PQfinish(connection);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    return failure("PostgreSQL: " + message + " (" + sql + ")");
  }
  return Status::success();
}

Result<std::string> PostgresServer::createDatabase(const std::string& name) {
  if (Status created = execute("postgres", "CREATE DATABASE \"" + name + "\""); !created.ok()) {
    return created.error();
  }
  return connectionString(name);
}

}  // namespace deviceops::testing
