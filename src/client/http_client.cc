#include "client/http_client.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cerrno>
#include <sstream>

namespace deviceops::client {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kMaxResponseHeaderBytes = 64 * 1024;
constexpr std::string_view kUserAgent = "deviceops-client";

std::string toLower(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower;
}

Error invalidUrl(std::string_view url, std::string_view why) {
  return makeError(ErrorCode::kInvalidArgument, fmt::format("invalid URL '{}': {}", url, why));
}

Result<std::uint16_t> parsePort(std::string_view url, std::string_view text) {
  if (text.empty()) return invalidUrl(url, "missing port number after ':'");
  if (text.size() > 5 || !std::all_of(text.begin(), text.end(),
                                      [](unsigned char c) { return std::isdigit(c) != 0; })) {
    return invalidUrl(url, fmt::format("port '{}' is not a number in 1..65535", text));
  }
  const unsigned long port = std::stoul(std::string(text));
  if (port < 1 || port > 65535) {
    return invalidUrl(url, fmt::format("port '{}' is not a number in 1..65535", text));
  }
  return static_cast<std::uint16_t>(port);
}

// True for characters that can never appear in a header line or request target.
bool hasControlCharacter(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

bool isIdempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS" || method == "TRACE";
}

std::string formatTimeout(std::chrono::milliseconds timeout) {
  if (timeout.count() % 1000 == 0) return fmt::format("{} s", timeout.count() / 1000);
  return fmt::format("{} ms", timeout.count());
}

beast::string_view toBeast(std::string_view text) { return {text.data(), text.size()}; }
std::string_view fromBeast(beast::string_view text) { return {text.data(), text.size()}; }

// Runs the io_context until every operation started on it has completed.
void runUntilDone(asio::io_context& io) {
  io.restart();
  io.run();
}

// Errors meaning the peer went away, as opposed to timeouts or malformed answers.
bool isConnectionDrop(const beast::error_code& error) {
  return error == http::error::end_of_stream || error == asio::error::eof ||
         error == asio::error::connection_reset || error == asio::error::broken_pipe ||
         error == asio::error::connection_aborted;
}

// How one attempt to exchange a request for a response on an open connection ended.
struct Exchange {
  beast::error_code error;
  bool failedWhileSending = false;
  bool nothingReceived = false;  // not a byte of the answer arrived before the failure
  bool keepAlive = false;
  HttpResponse response;
};

}  // namespace

Result<Endpoint> parseUrl(std::string_view url) {
  std::string_view rest = url;
  if (const auto schemeEnd = rest.find("://"); schemeEnd != std::string_view::npos) {
    const std::string scheme = toLower(rest.substr(0, schemeEnd));
    if (scheme == "https") {
      return invalidUrl(url,
                        "https is not supported; use http:// (reach TLS through a local proxy)");
    }
    if (scheme != "http") {
      return invalidUrl(url, fmt::format("scheme '{}' is not supported; expected http://", scheme));
    }
    rest.remove_prefix(schemeEnd + 3);
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return invalidUrl(url, "a query or fragment is not allowed");
  }
  if (hasControlCharacter(rest) || rest.find(' ') != std::string_view::npos) {
    return invalidUrl(url, "spaces and control characters are not allowed");
  }
  const auto pathStart = rest.find('/');
  const std::string_view authority = rest.substr(0, pathStart);
  std::string_view path = pathStart == std::string_view::npos ? "" : rest.substr(pathStart);
  if (authority.find('@') != std::string_view::npos) {
    return invalidUrl(url, "user info (user@host) is not supported; use --token");
  }

  Endpoint endpoint;
  std::string_view portText;
  bool hasPort = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return invalidUrl(url, "missing ']' after IPv6 address");
    endpoint.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return invalidUrl(url, "expected ':' and a port after ']'");
      hasPort = true;
      portText = after.substr(1);
    }
  } else {
    const auto colon = authority.find(':');
    if (colon != std::string_view::npos &&
        authority.find(':', colon + 1) != std::string_view::npos) {
      return invalidUrl(url, "an IPv6 address must be in brackets, e.g. http://[::1]:5000");
    }
    endpoint.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      hasPort = true;
      portText = authority.substr(colon + 1);
    }
  }
  if (endpoint.host.empty()) return invalidUrl(url, "missing host");
  if (hasPort) {
    auto port = parsePort(url, portText);
    if (!port) return port.error();
    endpoint.port = *port;
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  endpoint.basePath = std::string(path);
  return endpoint;
}

std::string formatAuthority(const Endpoint& endpoint) {
  if (endpoint.host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", endpoint.host, endpoint.port);
  }
  return fmt::format("{}:{}", endpoint.host, endpoint.port);
}

std::string percentEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string encoded;
  encoded.reserve(text.size());
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      encoded.push_back(c);
    } else {
      encoded.push_back('%');
      encoded.push_back(kHex[byte >> 4]);
      encoded.push_back(kHex[byte & 0x0f]);
    }
  }
  return encoded;
}

struct HttpClient::Connection {
  asio::io_context io;
  beast::tcp_stream stream{io};
  beast::flat_buffer buffer;  // bytes read past the end of the last response stay here

  ~Connection() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  // True when the server has closed this idle connection (or sent bytes nobody asked for, which
  // leaves it out of step): it must not carry another request.
  bool looksClosed() {
    if (buffer.size() > 0 || !stream.socket().is_open()) return true;
    char byte = 0;
    const ssize_t peeked =
        ::recv(stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (peeked < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
    return true;  // 0: orderly shutdown by the peer; >0: unsolicited data
  }
};

namespace {

// The request message for request() and stream(), after checking what the caller gave.
Result<http::request<http::string_body>> buildRequest(
    const Endpoint& endpoint, const std::string& bearerToken, std::string_view method,
    std::string_view target, std::string_view body, std::string_view contentType,
    std::string_view accept, const std::vector<std::pair<std::string, std::string>>& extraHeaders) {
  if (method.empty() || !std::all_of(method.begin(), method.end(), [](unsigned char c) {
        return std::isupper(c) != 0 || c == '-' || c == '_';
      })) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("invalid HTTP method '{}'; expected e.g. GET or POST", method));
  }
  if (target.empty() || target.front() != '/' || hasControlCharacter(target) ||
      target.find(' ') != std::string_view::npos) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("invalid request target '{}'; expected an encoded path "
                                 "starting with '/'",
                                 target));
  }
  for (const auto& [name, value] : extraHeaders) {
    if (name.empty() || hasControlCharacter(name) || hasControlCharacter(value) ||
        name.find_first_of(": ") != std::string::npos) {
      return makeError(ErrorCode::kInvalidArgument, fmt::format("invalid header '{}'", name));
    }
  }

  http::request<http::string_body> message;
  message.method_string(toBeast(method));
  message.target(endpoint.basePath + std::string(target));
  message.version(11);
  message.set(http::field::host, formatAuthority(endpoint));
  message.set(http::field::user_agent, toBeast(kUserAgent));
  message.set(http::field::accept, toBeast(accept));
  if (!bearerToken.empty()) message.set(http::field::authorization, "Bearer " + bearerToken);
  if (!body.empty()) message.set(http::field::content_type, toBeast(contentType));
  for (const auto& [name, value] : extraHeaders) message.set(name, value);
  message.body() = std::string(body);
  message.prepare_payload();
  return message;
}

void copyHeaders(const http::fields& fields, HttpResponse& response) {
  for (const auto& field : fields) {
    auto [it, inserted] = response.headers.try_emplace(toLower(fromBeast(field.name_string())),
                                                       fromBeast(field.value()));
    if (!inserted) it->second += fmt::format(", {}", fromBeast(field.value()));
  }
}

Result<std::unique_ptr<HttpClient::Connection>> openConnection(const Endpoint& endpoint,
                                                               Clock::time_point deadline,
                                                               std::chrono::milliseconds timeout) {
  const std::string authority = formatAuthority(endpoint);
  std::unique_ptr<HttpClient::Connection> connection;
  try {
    connection = std::make_unique<HttpClient::Connection>();  // may run out of descriptors
  } catch (const std::exception& exception) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("cannot connect to {}: {}", authority, exception.what()));
  }
  beast::error_code error;
  tcp::resolver resolver(connection->io);
  const auto addresses = resolver.resolve(endpoint.host, std::to_string(endpoint.port), error);
  if (error) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("cannot connect to {}: {}", authority, error.message()));
  }
  connection->stream.expires_at(deadline);
  connection->stream.async_connect(addresses, [&error](const beast::error_code& result,
                                                       const tcp::endpoint&) { error = result; });
  runUntilDone(connection->io);
  if (error == beast::error::timeout) {
    return makeError(
        ErrorCode::kDeadlineExceeded,
        fmt::format("cannot connect to {}: timed out after {}", authority, formatTimeout(timeout)));
  }
  if (error) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("cannot connect to {}: {}", authority, error.message()));
  }
  connection->stream.socket().set_option(tcp::no_delay(true), error);
  return connection;
}

using BodySent = std::function<void(std::uint64_t, std::uint64_t)>;

// Writes request, piece by piece when onBodySent wants to hear how far the body got.
beast::error_code writeRequest(HttpClient::Connection& connection,
                               const http::request<http::string_body>& request,
                               const BodySent& onBodySent) {
  beast::error_code error;
  if (!onBodySent) {
    http::async_write(connection.stream, request,
                      [&error](const beast::error_code& result, std::size_t) { error = result; });
    runUntilDone(connection.io);
    return error;
  }
  constexpr std::size_t kPieceBytes = 64 * 1024;
  const std::uint64_t bodyBytes = request.body().size();
  std::ostringstream header;
  header << request.base();
  const std::uint64_t headerBytes = header.str().size();
  http::request_serializer<http::string_body> serializer(request);
  serializer.limit(kPieceBytes);
  std::uint64_t written = 0;
  onBodySent(0, bodyBytes);
  while (!serializer.is_done()) {
    std::size_t piece = 0;
    http::async_write_some(connection.stream, serializer,
                           [&](const beast::error_code& result, std::size_t bytes) {
                             error = result;
                             piece = bytes;
                           });
    runUntilDone(connection.io);
    if (error) return error;
    written += piece;
    onBodySent(std::min(bodyBytes, written > headerBytes ? written - headerBytes : 0), bodyBytes);
  }
  return error;
}

Exchange exchange(HttpClient::Connection& connection,
                  const http::request<http::string_body>& request, Clock::time_point deadline,
                  const BodySent& onBodySent) {
  Exchange result;
  connection.stream.expires_at(deadline);
  result.error = writeRequest(connection, request, onBodySent);
  if (result.error) {
    result.failedWhileSending = true;
    result.nothingReceived = true;
    return result;
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxResponseBodyBytes);
  parser.header_limit(kMaxResponseHeaderBytes);
  if (request.method() == http::verb::head) parser.skip(true);
  connection.stream.expires_at(deadline);
  http::async_read(
      connection.stream, connection.buffer, parser,
      [&result](const beast::error_code& error, std::size_t) { result.error = error; });
  runUntilDone(connection.io);
  if (result.error) {
    result.nothingReceived = !parser.got_some() && connection.buffer.size() == 0;
    return result;
  }

  auto message = parser.release();
  result.keepAlive = message.keep_alive();
  result.response.status = static_cast<int>(message.result_int());
  copyHeaders(message.base(), result.response);
  result.response.body = std::move(message.body());
  return result;
}

Error exchangeError(const Exchange& exchange, std::string_view method, std::string_view target,
                    const std::string& authority, std::chrono::milliseconds timeout) {
  const auto& error = exchange.error;
  if (error == beast::error::timeout) {
    return makeError(ErrorCode::kDeadlineExceeded,
                     fmt::format("{} {} to {} timed out after {}", method, target, authority,
                                 formatTimeout(timeout)));
  }
  if (error == http::error::end_of_stream) {
    return makeError(
        ErrorCode::kUnavailable,
        fmt::format("{} closed the connection without answering {} {}", authority, method, target));
  }
  if (error == http::error::body_limit) {
    return makeError(ErrorCode::kResourceExhausted,
                     fmt::format("the answer to {} {} from {} is larger than {} bytes", method,
                                 target, authority, kMaxResponseBodyBytes));
  }
  if (isConnectionDrop(error) || error == http::error::partial_message ||
      error.category() == asio::error::get_system_category()) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("connection to {} lost during {} {}: {}", authority, method,
                                 target, error.message()));
  }
  return makeError(ErrorCode::kInternal, fmt::format("invalid HTTP answer from {} to {} {}: {}",
                                                     authority, method, target, error.message()));
}

}  // namespace

HttpClient::HttpClient(Endpoint endpoint, std::chrono::milliseconds timeout)
    : endpoint_(std::move(endpoint)), timeout_(timeout) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

void HttpClient::setBearerToken(std::string token) { bearerToken_ = std::move(token); }

Result<HttpResponse> HttpClient::request(
    std::string_view method, std::string_view target, std::string_view body,
    std::string_view contentType,
    const std::vector<std::pair<std::string, std::string>>& extraHeaders,
    const BodySent& onBodySent) {
  ASSIGN_OR_RETURN(const http::request<http::string_body> message,
                   buildRequest(endpoint_, bearerToken_, method, target, body, contentType,
                                "application/json", extraHeaders));
  const std::string authority = formatAuthority(endpoint_);

  const auto deadline = Clock::now() + timeout_;
  bool reused = connection_ != nullptr && !connection_->looksClosed();
  if (!reused) connection_.reset();
  for (int attempt = 0;; ++attempt) {
    if (!connection_) {
      auto opened = openConnection(endpoint_, deadline, timeout_);
      if (!opened) return opened.error();
      connection_ = std::move(*opened);
    }
    Exchange result = exchange(*connection_, message, deadline, onBodySent);
    if (!result.error) {
      if (!result.keepAlive || connection_->buffer.size() > 0) connection_.reset();
      return std::move(result.response);
    }
    connection_.reset();
    const bool retry = attempt == 0 && reused && isConnectionDrop(result.error) &&
                       result.nothingReceived &&
                       (isIdempotent(method) || result.failedWhileSending);
    if (!retry) return exchangeError(result, method, target, authority, timeout_);
  }
}

Result<HttpResponse> HttpClient::stream(
    std::string_view target, const std::function<bool(std::string_view)>& onData,
    const std::vector<std::pair<std::string, std::string>>& extraHeaders,
    std::chrono::milliseconds idleTimeout, const std::function<bool()>& keepWaiting) {
  ASSIGN_OR_RETURN(const http::request<http::string_body> message,
                   buildRequest(endpoint_, bearerToken_, "GET", target, {}, {}, "text/event-stream",
                                extraHeaders));
  const std::string authority = formatAuthority(endpoint_);
  const auto deadline = Clock::now() + timeout_;
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> connection,
                   openConnection(endpoint_, deadline, timeout_));
  Exchange result;
  const auto failed = [&] { return exchangeError(result, "GET", target, authority, timeout_); };
  connection->stream.expires_at(deadline);
  http::async_write(
      connection->stream, message,
      [&result](const beast::error_code& error, std::size_t) { result.error = error; });
  runUntilDone(connection->io);
  if (result.error) return failed();

  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxResponseHeaderBytes);
  parser.body_limit(kMaxResponseBodyBytes);
  connection->stream.expires_at(deadline);
  http::async_read_header(
      connection->stream, connection->buffer, parser,
      [&result](const beast::error_code& error, std::size_t) { result.error = error; });
  runUntilDone(connection->io);
  if (result.error) return failed();

  HttpResponse response;
  response.status = static_cast<int>(parser.get().result_int());
  copyHeaders(parser.get().base(), response);
  const bool streaming = response.status >= 200 && response.status < 300;
  if (streaming) parser.body_limit(boost::none);
  const std::chrono::milliseconds pieceTimeout =
      idleTimeout > std::chrono::milliseconds::zero() ? idleTimeout : timeout_;
  while (!parser.is_done()) {
    connection->stream.expires_after(streaming ? pieceTimeout : deadline - Clock::now());
    bool pieceDone = false;
    http::async_read_some(connection->stream, connection->buffer, parser,
                          [&result, &pieceDone](const beast::error_code& error, std::size_t) {
                            result.error = error;
                            pieceDone = true;
                          });
    if (!keepWaiting || !streaming) {
      runUntilDone(connection->io);
    } else {
      connection->io.restart();
      while (!pieceDone) {
        connection->io.run_for(kStreamTickInterval);
        if (pieceDone) break;
        if (!keepWaiting()) {
          connection->stream.cancel();
          runUntilDone(connection->io);
          return response;
        }
        if (connection->io.stopped()) connection->io.restart();
      }
    }
    if (result.error == beast::error::timeout && streaming) {
      return makeError(ErrorCode::kDeadlineExceeded,
                       fmt::format("GET {} from {}: nothing received for {}", target, authority,
                                   formatTimeout(pieceTimeout)));
    }
    if (result.error) return failed();
    // string_body appends to the body; taking what has arrived leaves it empty for the rest.
    std::string& body = parser.get().body();
    if (streaming && !body.empty()) {
      const std::string piece = std::move(body);
      body.clear();
      if (!onData(piece)) return response;
    }
  }
  if (!streaming) response.body = std::move(parser.get().body());
  return response;
}

}  // namespace deviceops::client
