// Internal to src/api: the route groups registerCoreRoutes() assembles, and the small helper
// every handler uses to encode a domain result.
#pragma once

#include <utility>

#include "api/app.h"
#include "http/message.h"

namespace deviceops::api {

void registerSystemRoutes(http::Router& router, AppContext& context);
void registerDeviceRoutes(http::Router& router, AppContext& context);
void registerMemoryRoutes(http::Router& router, AppContext& context);
void registerAvailabilityRoutes(http::Router& router, AppContext& context);
void registerMetricsRoutes(http::Router& router, AppContext& context);

// The value of `result` encoded as JSON with `status`, or its error.
template <class T, class Encode>
Result<http::Reply> encoded(const Result<T>& result, Encode encode, int status = 200) {
  if (!result.ok()) return result.error();
  return http::jsonReply(status, encode(*result));
}

}  // namespace deviceops::api
