// Feeds arbitrary bytes to the request path of the HTTP server, the way src/http/server.cc reads a
// connection: Boost.Beast's request parser (16 KiB header limit, 1 MiB body limit), then for each
// request that parses, parseTarget, the Router (populated like the real API), parseJsonBody and
// parseByteSize on the body. Several pipelined requests in one input are parsed one after another,
// as the server does on a keep-alive connection.
//
// Besides "no crash, no ASan or UBSan report", it checks the router's contract against the
// pattern text: a match is for a route whose method fits and whose pattern matches the path, has a
// parameter for every "{name}" and no other, and no other fitting route has more literal segments;
// a miss is NOT_FOUND (no pattern matches) or METHOD_NOT_ALLOWED (some pattern matches, listed in
// details.allowed), and its error response is valid JSON with status 404 or 405.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/byte_size.h"
#include "common/result.h"
#include "http/errors.h"
#include "http/message.h"
#include "http/router.h"

namespace {

namespace bhttp = boost::beast::http;
using deviceops::ErrorCode;
using deviceops::http::Reply;
using deviceops::http::Request;
using deviceops::http::RouteMatch;
using deviceops::http::Router;

// The server's defaults (src/http/server.h).
constexpr std::uint32_t kMaxHeaderBytes = 16 * 1024;
constexpr std::uint64_t kMaxBodyBytes = 1024 * 1024;
constexpr int kMaxRequestsPerInput = 8;

// The routes of src/api (system_routes.cc, device_routes.cc) plus those of router_test.cc, which
// exercise literal-versus-parameter precedence and several methods on one path, and one pattern
// with two parameters.
const Router& apiRouter() {
  static const Router router = [] {
    Router built;
    const auto echo = [](Request&) -> deviceops::Result<Reply> { return Reply{}; };
    for (const char* pattern : {"/health", "/ready", "/api/version", "/api/config", "/api/device",
                                "/api/device/{deviceId}", "/api/device/{deviceId}/health",
                                "/openapi.json", "/swagger", "/swagger/", "/swagger/{file}", "/",
                                "/api/memory/allocations", "/api/memory/{deviceId}/status"}) {
      built.add("GET", pattern, echo);
    }
    built.add("DELETE", "/api/memory/{allocationId}", echo);
    built.add("POST", "/api/memory/allocate", echo);
    built.add("PUT", "/api/device/{deviceId}/limits/{kind}", echo);
    return built;
  }();
  return router;
}

// Segments after the leading '/', as the router splits them: "/" is one empty segment.
std::vector<std::string_view> segmentsOf(std::string_view path) {
  std::vector<std::string_view> segments;
  path.remove_prefix(1);
  while (true) {
    const std::size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) return segments;
    path.remove_prefix(slash + 1);
  }
}

bool isParameter(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// Literal segments of `pattern` when it matches `path`, else nullopt.
std::optional<int> literalsMatched(std::string_view pattern, std::string_view path) {
  const auto parts = segmentsOf(pattern);
  const auto segments = segmentsOf(path);
  if (parts.size() != segments.size()) return std::nullopt;
  int literals = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (isParameter(parts[i])) {
      if (segments[i].empty()) return std::nullopt;
    } else if (parts[i] == segments[i]) {
      ++literals;
    } else {
      return std::nullopt;
    }
  }
  return literals;
}

bool methodFits(std::string_view routeMethod, std::string_view method) {
  return routeMethod == method || (method == "HEAD" && routeMethod == "GET");
}

void checkMatch(const Router& router, const std::string& method, const std::string& path) {
  const RouteMatch match = router.match(method, path);
  // A matched route lists no other methods; an unmatched path lists them only when it exists.
  if (match.route != nullptr && !match.allowedMethods.empty()) __builtin_trap();

  if (match.route != nullptr) {
    if (!methodFits(match.route->method, method)) __builtin_trap();
    const auto literals = literalsMatched(match.route->pattern, path);
    if (!literals) __builtin_trap();
    const auto parts = segmentsOf(match.route->pattern);
    const auto segments = segmentsOf(path);
    std::size_t parameters = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
      if (!isParameter(parts[i])) continue;
      ++parameters;
      const auto found = match.params.find(std::string(parts[i].substr(1, parts[i].size() - 2)));
      if (found == match.params.end() || found->second != segments[i]) __builtin_trap();
    }
    if (match.params.size() != parameters) __builtin_trap();
    for (const auto& route : router.routes()) {
      const auto other = literalsMatched(route.pattern, path);
      if (other && methodFits(route.method, method) && *other > *literals) __builtin_trap();
    }
    return;
  }

  const bool methodNotAllowed = !match.allowedMethods.empty();
  bool anyPatternMatches = false;
  for (const auto& route : router.routes()) {
    if (!literalsMatched(route.pattern, path)) continue;
    anyPatternMatches = true;
    if (methodFits(route.method, method)) __builtin_trap();  // a fitting route was missed
  }
  if (!methodNotAllowed) {
    if (anyPatternMatches && !path.empty() && path.front() == '/') __builtin_trap();
  } else {
    if (!anyPatternMatches) __builtin_trap();
    for (const auto& listed : match.allowedMethods) {
      if (listed == method) __builtin_trap();
    }
  }
  const Reply response =
      methodNotAllowed ? deviceops::http::methodNotAllowedReply(method, path, match.allowedMethods)
                       : deviceops::http::notFoundReply(method, path);
  if (response.status != (methodNotAllowed ? 405 : 404)) __builtin_trap();
  if (!nlohmann::json::accept(response.body)) __builtin_trap();
}

void checkBody(Request& request) {
  for (const bool requireObject : {true, false}) {
    const auto parsed = deviceops::http::parseJsonBody(request, requireObject);
    if (parsed.ok()) {
      if (requireObject && !parsed->is_object()) __builtin_trap();
      if (parsed->is_object()) {
        for (const auto& [key, value] : parsed->items()) {
          if (value.is_string()) (void)deviceops::parseByteSize(value.get<std::string>());
        }
      }
    } else if (parsed.error().code != ErrorCode::kInvalidArgument &&
               parsed.error().code != ErrorCode::kUnsupportedMediaType) {
      __builtin_trap();
    }
  }
  const auto size = deviceops::parseByteSize(request.body);
  if (size.ok() && *size > deviceops::kMaxByteSize) __builtin_trap();
}

// What the server does with one parsed request (server.cc: toRequest, then dispatch).
void handle(bhttp::request<bhttp::string_body>& message) {
  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  for (const auto& field : message) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    request.headers[name] = std::string(field.value());
  }
  request.body = std::move(message.body());
  if (request.body.size() > kMaxBodyBytes) __builtin_trap();

  const auto target = deviceops::http::parseTarget(request.target);
  if (target) {
    if (target->path.empty() || target->path.front() != '/') __builtin_trap();
    if (target->path.find('\0') != std::string::npos) __builtin_trap();
    if (target->path.size() > request.target.size()) __builtin_trap();
    if (request.target.find('?') == std::string::npos && !target->query.empty()) __builtin_trap();
    checkMatch(apiRouter(), request.method, target->path);
  }
  checkBody(request);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  boost::asio::const_buffer input(data, size);
  for (int requests = 0; requests < kMaxRequestsPerInput && input.size() > 0; ++requests) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(kMaxBodyBytes);
    parser.eager(true);
    boost::beast::error_code error;
    while (input.size() > 0 && !parser.is_done()) {
      const std::size_t used = parser.put(input, error);
      input += used;
      if (error == bhttp::error::need_more) error = {};
      if (error) return 0;
      if (used == 0) break;  // the rest of the input is not enough for the next piece
    }
    if (!parser.is_done()) {
      parser.put_eof(error);  // the peer closed the connection here
      if (error || !parser.is_done()) return 0;
    }
    auto message = parser.release();
    handle(message);
  }
  return 0;
}
