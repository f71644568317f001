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

// A handler decodes the request, makes one domain call and encodes the result. Failures are
// returned as errors; the server renders them (http/errors.cc) in the route's ErrorShape.
using Handler = std::function<Result<Reply>(Request&)>;

// How errors of a route look on the wire.
enum class ErrorShape {
  kApi,     // {"error": {"code": "NOT_FOUND", "message": "...", "details": {...}}}
  kKServe,  // KServe v2 / Triton: {"error": "message"}
};

enum class Execution {
  kInline,  // cheap and non-blocking (reads a cached snapshot): runs on the I/O thread
  kWorker,  // may block or take time: runs on the worker pool
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
  ErrorShape errorShape = ErrorShape::kApi;  // for the handler's errors and the server's own
};

struct RouteMatch {
  const Route* route = nullptr;  // null: no route (allowedMethods says whether the path exists)
  std::map<std::string, std::string> params;
  std::vector<std::string> allowedMethods;  // the path exists, but only for these methods (405)
};

class Router;

// Routes that share an error shape: a route file adds its routes through one group.
class RouteGroup {
 public:
  RouteGroup(Router& router, ErrorShape shape) : router_(router), shape_(shape) {}
  Route& add(std::string method, std::string pattern, Handler handler);

 private:
  Router& router_;
  ErrorShape shape_;
};

class Router {
 public:
  // Adds a route. Default scope: kRead for GET/HEAD, kOperate for everything else.
  Route& add(std::string method, std::string pattern, Handler handler);
  RouteGroup group(ErrorShape shape) { return RouteGroup(*this, shape); }
  RouteMatch match(std::string_view method, std::string_view path) const;
  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace deviceops::http
