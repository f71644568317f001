// Request and Response as handlers see them: plain values, no Boost.Beast types, so that
// handlers and their tests do not depend on the transport.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deviceops::http {

struct Request {
  std::string method;                             // "GET", "POST", ...
  std::string target;                             // raw request target, "/api/device?type=gpu"
  std::string path;                               // percent-decoded path, "/api/device"
  std::map<std::string, std::string> query;       // decoded query parameters
  std::map<std::string, std::string> headers;     // lowercased names
  std::map<std::string, std::string> pathParams;  // filled by the router
  std::string body;
  std::filesystem::path bodyFile;  // set instead of body for routes with bodyToFile
  std::string remoteAddress;
  std::string principal;  // name of the token that authenticated it, or "anonymous"
  // Set by the server when the client disconnects while a worker handles the request; long
  // handlers pass it down so the work is cancelled. Never null.
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);

  std::string_view header(const std::string& lowercaseName) const;
  std::optional<std::string> queryParam(const std::string& name) const;
  const std::string& pathParam(const std::string& name) const;  // precondition: it exists
};

// A response body produced over time, e.g. Server-Sent Events. The server writes the status and
// headers (chunked transfer encoding, connection closed at the end), then calls next() on a
// worker thread and writes each piece as it comes, until next() returns nullopt, the client
// goes away or the server shuts down. next() is called from one thread at a time; the object is
// destroyed when the response ends, which is how it learns that the client left.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  // Waits at most `wait` for more bytes. "" when nothing came in time (the server checks the
  // connection and calls again); nullopt at the end of the stream.
  virtual std::optional<std::string> next(std::chrono::milliseconds wait) = 0;
};

// What a handler returns on success (errors are Result errors, rendered by http/errors.cc in
// the route's error shape): a status, a body with its type, extra headers, or a stream.
struct Reply {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<ResponseStream> stream;  // set instead of body for streamed responses

  // The same reply with one more header: `return jsonReply(201, x).withHeader("Location", url);`
  Reply withHeader(std::string name, std::string value) &&;
};

Reply jsonReply(int status, const nlohmann::json& body);
Reply bytesReply(int status, std::string contentType, std::string body);
// No body at all (Content-Type application/json, as Triton answers its readiness probes).
Reply emptyReply(int status);
// A 200 whose body is produced over time by `stream` (Server-Sent Events: text/event-stream).
Reply streamReply(std::shared_ptr<ResponseStream> stream, std::string contentType);

// Percent-decodes `text`; returns nullopt on a malformed escape. `plusIsSpace` for queries.
std::optional<std::string> percentDecode(std::string_view text, bool plusIsSpace);
// Splits a target into decoded path and query map. nullopt when malformed.
struct ParsedTarget {
  std::string path;
  std::map<std::string, std::string> query;
};
std::optional<ParsedTarget> parseTarget(std::string_view target);

}  // namespace deviceops::http
