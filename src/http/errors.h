// The one place where an error becomes an HTTP response: ErrorCode -> status, the body in the
// route's shape, WWW-Authenticate on 401 and Retry-After on errors worth retrying.
//   api:    {"error": {"code": "NOT_FOUND", "message": "...", "details": {...}}}
//   kserve: {"error": "message"}                                  (KServe v2 / Triton)
#pragma once

#include <string_view>
#include <vector>

#include "common/result.h"
#include "http/message.h"
#include "http/router.h"

namespace deviceops::http {

int httpStatusFor(ErrorCode code);
Reply errorReply(const Error& error, ErrorShape shape = ErrorShape::kApi);
// The server's own answers when routing fails: 404 for an unknown path, 405 (with Allow) for a
// known path asked with another method.
Reply notFoundReply(std::string_view method, std::string_view path);
Reply methodNotAllowedReply(std::string_view method, std::string_view path,
                            const std::vector<std::string>& allowed);

// Parses a JSON request body. A syntax error is kInvalidArgument naming the byte position;
// a non-object top level is rejected when `requireObject`; a Content-Type that is not JSON is
// kUnsupportedMediaType.
Result<nlohmann::json> parseJsonBody(const Request& request, bool requireObject = true);

}  // namespace deviceops::http
