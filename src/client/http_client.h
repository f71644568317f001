// A small synchronous HTTP/1.1 client for the deviceops REST API, used by the CLI and by the
// integration tests. Plain HTTP only: deviceopsd listens on loopback by default, and a TLS
// terminating proxy in front of it can be reached through its plain-HTTP side.
//
// Thread-compatibility: an HttpClient is not thread-safe; use one per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"

namespace deviceops::client {

// Largest response body the client accepts; larger ones fail with kResourceExhausted.
inline constexpr std::uint64_t kMaxResponseBodyBytes = 256ull * 1024 * 1024;

// How often HttpClient::stream asks its keepWaiting callback while no data arrives.
inline constexpr std::chrono::milliseconds kStreamTickInterval{100};

struct HttpResponse {
  int status = 0;
  std::string body;
  // Header names lowercased. A header sent several times holds its values joined by ", ".
  std::map<std::string, std::string> headers;
};

// Where the server is. host is a name or an IP address, IPv6 without brackets ("::1").
// basePath is a prefix for every request target ("" or "/something", never ending in '/').
struct Endpoint {
  std::string host;
  std::uint16_t port = 5000;
  std::string basePath;
};

// Parses "http://127.0.0.1:5000", "http://[::1]:8080/", "localhost:5000", "localhost" (port 5000)
// and "http://host:port/prefix". Fails with kInvalidArgument for https (not supported), other
// schemes, a missing host, a port outside 1..65535, unbracketed IPv6, user info, query or
// fragment.
Result<Endpoint> parseUrl(std::string_view url);

// "host:port", with brackets around an IPv6 host: "[::1]:8080". Used in messages and Host.
std::string formatAuthority(const Endpoint& endpoint);

// Percent-encodes everything except RFC 3986 unreserved characters (A-Z a-z 0-9 - . _ ~), so
// the result is safe as one path segment or one query value.
std::string percentEncode(std::string_view text);

class HttpClient {
 public:
  // timeout bounds each request as a whole: resolving, connecting, sending and receiving.
  explicit HttpClient(Endpoint endpoint,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends "Authorization: Bearer <token>" on every later request; an empty token sends none.
  void setBearerToken(std::string token);

  const Endpoint& endpoint() const { return endpoint_; }

  // Sends one request and reads the whole response. target is the path and query, starting
  // with '/', already percent-encoded; endpoint().basePath is put in front of it. Any HTTP
  // status, 4xx and 5xx included, is a successful Result: only failing to get a response is an
  // error. contentType is sent only with a non-empty body. extraHeaders replace default headers
  // of the same name (Accept, User-Agent...).
  //
  // The connection is kept alive between calls. A kept-alive connection that the server has
  // closed is replaced before sending; if it drops while the request is sent or before any byte
  // of the answer arrives, the request is sent once more on a new connection, but a
  // non-idempotent request (POST, PATCH) only when the failure came while sending it.
  //
  // Errors: kInvalidArgument (bad method, target or header), kUnavailable (cannot resolve or
  // connect, connection lost), kDeadlineExceeded (timeout), kResourceExhausted (body above
  // kMaxResponseBodyBytes), kInternal (the answer is not valid HTTP).
  //
  // onBodySent (may be empty) is called as the body goes out, with the body bytes written so
  // far and the body's size, in pieces of at most 64 KiB, on this thread (for upload progress).
  // A retried request reports from 0 again.
  Result<HttpResponse> request(
      std::string_view method, std::string_view target, std::string_view body = {},
      std::string_view contentType = "application/json",
      const std::vector<std::pair<std::string, std::string>>& extraHeaders = {},
      const std::function<void(std::uint64_t sentBytes, std::uint64_t totalBytes)>& onBodySent =
          {});

  Result<HttpResponse> get(std::string_view target) { return request("GET", target); }

  // Receives the body of a response that lasts (Server-Sent Events): sends a GET on a
  // connection of its own and passes each piece of the body to onData as it arrives; onData
  // returns false to stop reading early, which is not an error. The connection is closed at the
  // end. The client's timeout bounds connecting, sending and the wait for the headers;
  // idleTimeout (the client's timeout when zero) bounds each wait for the next piece, never the
  // stream as a whole.
  //
  // Returns the status and headers with an empty body for a 2xx answer; any other answer is
  // read whole into body (onData is not called), as request() would return it. Errors: as
  // request(); the stream cut before its end is kUnavailable, no piece within idleTimeout is
  // kDeadlineExceeded. A failed stream is not retried: the caller resumes it (Last-Event-ID).
  //
  // keepWaiting (may be empty) is asked about every kStreamTickInterval while the body is
  // awaited; false stops reading as onData's false does (a key press, Ctrl-C, a redraw due).
  Result<HttpResponse> stream(
      std::string_view target, const std::function<bool(std::string_view)>& onData,
      const std::vector<std::pair<std::string, std::string>>& extraHeaders = {},
      std::chrono::milliseconds idleTimeout = std::chrono::milliseconds::zero(),
      const std::function<bool()>& keepWaiting = {});

  std::chrono::milliseconds timeout() const { return timeout_; }

  struct Connection;  // opaque: the Boost.Beast state, defined in http_client.cc

 private:
  Endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  std::string bearerToken_;
  std::unique_ptr<Connection> connection_;  // null when not connected
};

}  // namespace deviceops::client
