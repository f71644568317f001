// Bearer-token authorization from the [auth] section of the config.
//
// When config.authRequired() (bound to a non-loopback address, or auth.mode = "always"), each
// request needs "Authorization: Bearer <token>" of a configured token whose scope covers the
// route's scope (admin > operate > read). Secrets are compared in constant time and never logged;
// the token's name is the request's principal in the access log.
#pragma once

#include <string_view>

#include "config/config.h"
#include "http/server.h"

namespace deviceops::api {

http::Authorizer makeAuthorizer(const config::Config& config);

// Compares without an early exit on the first differing byte. Exposed for tests.
bool constantTimeEquals(std::string_view a, std::string_view b);

}  // namespace deviceops::api
