// The one place where ErrorCode becomes an HTTP status, and the JSON error body:
//   {"error": {"code": "NOT_FOUND", "message": "...", "details": {...}}}
#pragma once

#include "common/result.h"
#include "http/message.h"

namespace deviceops::http {

int httpStatusFor(ErrorCode code);
Response errorResponse(const Error& error);
Response errorResponse(ErrorCode code, std::string message,
                       nlohmann::json details = nlohmann::json::object());

// Parses a JSON request body. A syntax error is kInvalidArgument naming the byte position;
// a non-object top level is rejected when `requireObject`.
Result<nlohmann::json> parseJsonBody(const Request& request, bool requireObject = true);

}  // namespace deviceops::http
