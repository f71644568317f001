// HttpServer: HTTP/1.1 on Boost.Beast + Asio with C++20 coroutines.
//
// - keep-alive; one coroutine per connection on its own strand;
// - an idle timeout while waiting for a request, a header timeout once its first byte is in, a
//   body timeout for the rest, a write timeout: a slow or stalled client cannot hold a thread;
// - a body size limit (413 before the body is read when Content-Length says so), per route if
//   the route says so; bodies of bodyToFile routes are streamed to a file, not held in memory;
// - a request handled on a worker whose client disconnects gets Request::cancelled set;
// - routes marked Execution::kWorker run on a worker pool, never on the I/O threads;
// - authentication is delegated to an Authorizer before routing to the handler;
// - one access-log line per request with status, bytes and latency (token secrets never logged);
// - shutdown(): stop accepting, close idle connections, let in-flight requests finish within
//   the grace period, then stop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/result.h"
#include "http/router.h"

namespace deviceops::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5000;  // 0 picks a free port
  int ioThreads = 2;
  int workerThreads = 64;
  std::uint64_t maxBodyBytes = 64ull << 20;
  std::uint32_t maxHeaderBytes = 16 * 1024;
  std::size_t maxConnections = 4096;
  std::chrono::milliseconds idleTimeout{60000};
  std::chrono::milliseconds headerTimeout{10000};
  std::chrono::milliseconds bodyTimeout{60000};
  std::chrono::milliseconds writeTimeout{60000};
  std::chrono::milliseconds shutdownGrace{10000};
  bool accessLog = true;
  // Where bodies of bodyToFile routes are streamed; empty: the system temp directory.
  std::string uploadDirectory;
};

// Returns the principal's name, or an error (kUnauthenticated / kPermissionDenied).
// Called for routes with authenticate = true.
using Authorizer = std::function<Result<std::string>(const Request&, Scope required)>;

class HttpServer {
 public:
  HttpServer(ServerOptions options, const Router& router, Authorizer authorizer);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; after it returns, boundPort() is known and connections are accepted.
  Status start();
  std::uint16_t boundPort() const;
  std::string boundAddress() const;  // "127.0.0.1:43817", "[::1]:5000"

  // Blocks until shutdown completes. Call after start().
  void wait();
  // Thread-safe; may be called from a signal handler's thread (not from a signal handler).
  void shutdown();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace deviceops::http
