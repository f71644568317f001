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
// A suite's custom VAEs (vae_routes.cc); part of registerGenerationRoutes/-Unavailable.
void registerVaeRoutes(http::Router& router, AppContext& context, generation::SuiteManager& suites,
                       inference::ModelRegistry& registry);
void registerVaeUnavailable(http::Router& router, AppContext& context, const std::string& reason);

// Moves a streamed body of at most 1 MiB back into request.body, for routes that stream every
// body to a file (uploads can be gigabytes) but also take a small JSON request. Larger:
// kPayloadTooLarge telling the client to send `what` as application/octet-stream.
Status readSmallBody(http::Request& request, std::string_view what);

// The value of `result` encoded as JSON with `status`, or its error.
template <class T, class Encode>
Result<http::Reply> encoded(const Result<T>& result, Encode encode, int status = 200) {
  if (!result.ok()) return result.error();
  return http::jsonReply(status, encode(*result));
}

}  // namespace deviceops::api
