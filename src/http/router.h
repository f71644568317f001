// Router: method + path pattern -> handler. Patterns are literal segments and "{name}"
// parameters matching one non-empty segment: "/api/device/{deviceId}/health".
// Literal segments win over parameters, so "/api/memory/allocations" is not "{deviceId}".
//
// Thread-safety: routes are added before the server starts; lookups are const and concurrent.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/scope.h"
#include "http/message.h"

namespace deviceops::http {

using Handler = std::function<Response(Request&)>;

enum class Execution {
  kInline,   // cheap and non-blocking (reads a cached snapshot): runs on the I/O thread
  kWorker,   // may block or take time: runs on the worker pool
};

struct Route {
  std::string method;
  std::string pattern;
  Handler handler;
  Scope scope = Scope::kRead;  // needed when authentication is required
  Execution execution = Execution::kWorker;
  bool authenticate = true;  // false for /health, /ready: liveness probes carry no token
  // Overrides ServerOptions::maxBodyBytes for this route (e.g. model uploads).
  std::optional<std::uint64_t> maxBodyBytes;
  // The body is streamed to a temporary file (Request::bodyFile) instead of memory; the
  // request is authenticated before the body is read. The server deletes the file after the
  // handler returns unless the handler moved it away.
  bool bodyToFile = false;
};

struct RouteMatch {
  const Route* route = nullptr;  // null: see error
  std::map<std::string, std::string> params;
  std::optional<Error> error;    // kNotFound or kMethodNotAllowed (details.allowed lists methods)
};

class Router {
 public:
  // Adds a route. Default scope: kRead for GET/HEAD, kOperate for everything else.
  Route& add(std::string method, std::string pattern, Handler handler);
  RouteMatch match(std::string_view method, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace deviceops::http
