#include "http/errors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdint>

namespace deviceops::http {

int httpStatusFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return 400;
    case ErrorCode::kUnauthenticated:
      return 401;
    case ErrorCode::kPermissionDenied:
      return 403;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kPayloadTooLarge:
      return 413;
    case ErrorCode::kUnsupportedMediaType:
      return 415;
    case ErrorCode::kUnprocessable:
      return 422;
    case ErrorCode::kResourceExhausted:
      return 507;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    case ErrorCode::kInternal:
      return 500;
  }
  return 500;
}

Reply errorReply(const Error& error, ErrorShape shape) {
  nlohmann::json body;
  if (shape == ErrorShape::kKServe) {
    body = {{"error", error.message}};
  } else {
    body = {{"error",
             {{"code", errorCodeName(error.code)},
              {"message", error.message},
              {"details", error.details.is_null() ? nlohmann::json::object() : error.details}}}};
  }
  Reply reply = jsonReply(httpStatusFor(error.code), body);
  if (error.code == ErrorCode::kUnauthenticated) {
    reply.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"deviceops\"");
  }
  if (error.retryAfter) {
    reply.headers.emplace_back(
        "Retry-After", std::to_string(std::max<std::int64_t>(1, error.retryAfter->count())));
  } else if (error.code == ErrorCode::kUnavailable) {
    reply.headers.emplace_back("Retry-After", "1");
  }
  return reply;
}

Reply notFoundReply(std::string_view method, std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return errorReply(makeError(ErrorCode::kNotFound, "path must start with '/'"));
  }
  return errorReply(
      makeError(ErrorCode::kNotFound, fmt::format("no endpoint {} {}", method, path)));
}

Reply methodNotAllowedReply(std::string_view method, std::string_view path,
                            const std::vector<std::string>& allowed) {
  const std::string list = fmt::format("{}", fmt::join(allowed, ", "));
  const nlohmann::json body = {
      {"error",
       {{"code", "METHOD_NOT_ALLOWED"},
        {"message", fmt::format("method {} is not allowed on {}; allowed: {}", method, path, list)},
        {"details", {{"allowed", allowed}}}}}};
  return jsonReply(405, body).withHeader("Allow", list);
}

Result<nlohmann::json> parseJsonBody(const Request& request, bool requireObject) {
  if (request.body.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "request body is empty; expected a JSON object");
  }
  const std::string_view contentType = request.header("content-type");
  if (!contentType.empty() && contentType.find("json") == std::string_view::npos) {
    return makeError(
        ErrorCode::kUnsupportedMediaType,
        fmt::format("Content-Type '{}' is not JSON; send application/json", contentType));
  }
  try {
    nlohmann::json parsed = nlohmann::json::parse(request.body);
    if (requireObject && !parsed.is_object()) {
      return makeError(
          ErrorCode::kInvalidArgument,
          fmt::format("request body must be a JSON object, not {}", parsed.type_name()));
    }
    return parsed;
  } catch (const nlohmann::json::parse_error& error) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("invalid JSON at byte {}: {}", error.byte,
                    std::string(error.what()).substr(std::string(error.what()).find(':') + 2)),
        {{"position", error.byte}});
  } catch (const nlohmann::json::exception& error) {
    // e.g. out_of_range.406: a number too large for a double ("-3e25475").
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("invalid JSON: {}",
                    std::string(error.what()).substr(std::string(error.what()).find(']') + 2)));
  }
}

}  // namespace deviceops::http
