// Route tables: a route group is a class holding references to the domain objects it serves
// (never null) plus a static table of its routes. The table is the one declaration of the
// group's methods and paths: it is registered with the group's handlers when the component
// runs, or, when the component is disabled, as the same routes answering 503 with the reason
// (so the API keeps its shape and `docs/openapi.yaml` matches either way).
//
// How to add a route: add a member `Result<http::Reply> name(http::Request&)` to the group
// (decode -> one domain call -> encode; errors are returned, http/errors.cc renders them), and
// one line to the group's table. `src/api/memory_routes.cc` is the template to copy.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "common/scope.h"
#include "config/config.h"
#include "http/errors.h"
#include "http/router.h"

namespace deviceops::api {

template <class Group>
struct RouteSpec {
  const char* method;
  const char* pattern;
  Result<http::Reply> (Group::*handle)(http::Request&);
  http::Execution execution = http::Execution::kWorker;
  std::optional<Scope> scope = std::nullopt;  // default: read for GET, operate otherwise
  bool authenticate = true;
  bool bodyToFile = false;
  // The route's own body limit, from the configuration (e.g. model uploads); null: the server's.
  std::uint64_t (*bodyLimit)(const config::Config&) = nullptr;
};

namespace internal {

template <class Group>
http::Route& addRoute(http::RouteGroup& routes, const config::Config& config,
                      const RouteSpec<Group>& spec, http::Handler handler) {
  http::Route& route = routes.add(spec.method, spec.pattern, std::move(handler));
  route.execution = spec.execution;
  if (spec.scope) route.scope = *spec.scope;
  route.authenticate = spec.authenticate;
  route.bodyToFile = spec.bodyToFile;
  if (spec.bodyLimit != nullptr) route.maxBodyBytes = spec.bodyLimit(config);
  return route;
}

}  // namespace internal

// Registers `table` with the handlers of `group`, which the routes share and keep alive.
template <class Group>
void addRoutes(http::Router& router, const config::Config& config, http::ErrorShape shape,
               std::shared_ptr<Group> group, std::span<const RouteSpec<Group>> table) {
  http::RouteGroup routes = router.group(shape);
  for (const RouteSpec<Group>& spec : table) {
    internal::addRoute(routes, config, spec, [group, handle = spec.handle](http::Request& request) {
      return ((*group).*handle)(request);
    });
  }
}

// Registers `table` for a disabled component: every route answers 503 with `reason`.
template <class Group>
void addUnavailableRoutes(http::Router& router, const config::Config& config,
                          http::ErrorShape shape, std::span<const RouteSpec<Group>> table,
                          std::string reason) {
  http::RouteGroup routes = router.group(shape);
  for (const RouteSpec<Group>& spec : table) {
    internal::addRoute(routes, config, spec, [reason](http::Request&) -> Result<http::Reply> {
      return makeError(ErrorCode::kUnavailable, reason);
    });
  }
}

}  // namespace deviceops::api
