#include "http/server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <condition_variable>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "http/errors.h"

namespace deviceops::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using SteadyClock = std::chrono::steady_clock;

// One client connection. The socket and its deadline timer live on one strand, shared by the
// session coroutine and its watchdog, which closes the socket when the deadline passes.
// (Plain socket + own timer instead of beast::tcp_stream: Beast 1.74's stream timeouts showed a
// use-after-free under load on a multi-threaded io_context with strands.)
struct Connection : std::enable_shared_from_this<Connection> {
  explicit Connection(tcp::socket s) : socket(std::move(s)), deadline(socket.get_executor()) {}
  void expiresAfter(std::chrono::milliseconds timeout) { deadline.expires_after(timeout); }
  tcp::socket socket;
  asio::steady_timer deadline;
  bool finished = false;
  bool timedOut = false;
};

awaitable<void> watchdog(std::shared_ptr<Connection> connection) {
  while (!connection->finished) {
    boost::system::error_code ec;
    co_await connection->deadline.async_wait(asio::redirect_error(use_awaitable, ec));
    if (connection->finished) break;
    if (connection->deadline.expiry() <= asio::steady_timer::clock_type::now()) {
      connection->timedOut = true;
      boost::system::error_code ignored;
      connection->socket.close(ignored);
      break;
    }
  }
}

class HttpServer::Impl {
 public:
  Impl(ServerOptions options, const Router& router, Authorizer authorizer)
      : options_(std::move(options)),
        router_(router),
        authorizer_(std::move(authorizer)),
        io_(options_.ioThreads),
        workers_(static_cast<std::size_t>(options_.workerThreads)),
        acceptor_(io_),
        work_(asio::make_work_guard(io_)) {}

  ~Impl() {
    shutdown();
    joinThreads();
  }

  Status start() {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(options_.host, ec);
    if (ec) {
      return makeError(ErrorCode::kInvalidArgument,
                       "listen host '" + options_.host + "' is not an IP address");
    }
    const tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      return makeError(
          ErrorCode::kUnavailable,
          fmt::format("cannot listen on {}:{}: {}", options_.host, options_.port, ec.message()));
    }
    bound_ = acceptor_.local_endpoint();
    asio::co_spawn(io_, acceptLoop(), asio::detached);
    for (int i = 0; i < options_.ioThreads; ++i) {
      threads_.emplace_back([this] { io_.run(); });
    }
    return Status::success();
  }

  std::uint16_t boundPort() const { return bound_.port(); }

  std::string boundAddress() const {
    const auto address = bound_.address();
    if (address.is_v6()) return fmt::format("[{}]:{}", address.to_string(), bound_.port());
    return fmt::format("{}:{}", address.to_string(), bound_.port());
  }

  void wait() { joinThreads(); }

  void shutdown() {
    if (stopping_.exchange(true)) return;
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      cancelIdleSessions();
      shutdownStarted_ = SteadyClock::now();
      pollShutdown();
    });
  }

 private:
  struct Session {
    asio::any_io_executor executor;
    std::weak_ptr<Connection> connection;
    bool busy = false;
  };

  void joinThreads() {
    std::lock_guard lock(joinMutex_);
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
    threads_.clear();
    workers_.join();
  }

  // Runs on io_: closes sessions that wait for a request; in-flight ones close after replying.
  void cancelIdleSessions() {
    std::lock_guard lock(mutex_);
    for (auto& [id, session] : sessions_) {
      asio::post(session.executor, [this, sessionId = id] {
        std::lock_guard inner(mutex_);
        auto it = sessions_.find(sessionId);
        if (it == sessions_.end() || it->second.busy) return;
        if (auto connection = it->second.connection.lock()) {
          boost::system::error_code ignored;
          connection->socket.cancel(ignored);
        }
      });
    }
  }

  // Stops the I/O threads once every session has closed or the grace period is over.
  void pollShutdown() {
    std::size_t open = 0;
    {
      std::lock_guard lock(mutex_);
      open = sessions_.size();
    }
    if (open == 0 || SteadyClock::now() - shutdownStarted_ > options_.shutdownGrace) {
      if (open > 0) spdlog::warn("shutdown grace period over; {} connections dropped", open);
      work_.reset();
      io_.stop();
      return;
    }
    if (open > 0) cancelIdleSessions();
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(20));
    timer->async_wait([this, timer](const boost::system::error_code&) { pollShutdown(); });
  }

  awaitable<void> acceptLoop() {
    while (!stopping_) {
      auto strand = asio::make_strand(io_);
      tcp::socket socket(strand);
      boost::system::error_code ec;
      co_await acceptor_.async_accept(socket, asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (stopping_ || ec == asio::error::operation_aborted) break;
        spdlog::warn("accept failed: {}", ec.message());
        // Out of file descriptors and the like: back off briefly instead of spinning.
        asio::steady_timer pause(io_, std::chrono::milliseconds(50));
        co_await pause.async_wait(asio::redirect_error(use_awaitable, ec));
        continue;
      }
      std::uint64_t id = 0;
      {
        std::lock_guard lock(mutex_);
        if (sessions_.size() >= options_.maxConnections) {
          boost::system::error_code ignored;
          socket.close(ignored);
          continue;
        }
        id = ++nextSessionId_;
      }
      auto connection = std::make_shared<Connection>(std::move(socket));
      connection->expiresAfter(options_.idleTimeout);
      asio::co_spawn(strand, watchdog(connection), asio::detached);
      asio::co_spawn(strand, runSession(connection, id), asio::detached);
    }
  }

  void setBusy(std::uint64_t id, bool busy) {
    std::lock_guard lock(mutex_);
    auto it = sessions_.find(id);
    if (it != sessions_.end()) it->second.busy = busy;
  }

  awaitable<void> runSession(std::shared_ptr<Connection> connection, std::uint64_t id) {
    const asio::any_io_executor executor = co_await asio::this_coro::executor;
    {
      std::lock_guard lock(mutex_);
      sessions_[id] = Session{executor, connection, false};
    }
    boost::system::error_code ec;
    const auto remoteEndpoint = connection->socket.remote_endpoint(ec);
    const std::string remote =
        ec ? std::string("unknown")
           : fmt::format("{}:{}", remoteEndpoint.address().to_string(), remoteEndpoint.port());
    beast::flat_buffer buffer;
    try {
      while (!stopping_) {
        if (!co_await serveOne(*connection, buffer, id, remote)) break;
      }
    } catch (const std::exception& error) {
      spdlog::error("connection {}: {}", remote, error.what());
    }
    connection->socket.shutdown(tcp::socket::shutdown_send, ec);
    connection->socket.close(ec);
    connection->finished = true;
    connection->deadline.cancel();
    std::lock_guard lock(mutex_);
    sessions_.erase(id);
  }

  // Reads and answers one request. Returns whether the connection stays open.
  awaitable<bool> serveOne(Connection& connection, beast::flat_buffer& buffer, std::uint64_t id,
                           const std::string& remote) {
    tcp::socket& stream = connection.socket;
    boost::system::error_code ec;
    if (buffer.size() == 0) {
      connection.expiresAfter(options_.idleTimeout);
      const std::size_t received = co_await stream.async_read_some(
          buffer.prepare(8192), asio::redirect_error(use_awaitable, ec));
      if (ec) co_return false;
      buffer.commit(received);
    }
    setBusy(id, true);
    const auto started = SteadyClock::now();
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(options_.maxHeaderBytes);
    // Beast checks Content-Length against the body limit when the header completes; the limit
    // depends on the route, so it is enforced below, after routing.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    connection.expiresAfter(options_.headerTimeout);
    co_await bhttp::async_read_header(stream, buffer, parser,
                                      asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (connection.timedOut) ec = beast::error::timeout;
      co_await rejectUnreadable(connection, ec, "header", remote, started, options_.maxBodyBytes);
      co_return false;
    }
    const auto& header = parser.get();
    // The route decides the body limit and whether the body goes to a file.
    const Route* route = nullptr;
    const auto rawTarget = header.target();
    const auto rawMethod = header.method_string();
    if (auto target = parseTarget(std::string_view(rawTarget.data(), rawTarget.size()))) {
      route =
          router_.match(std::string_view(rawMethod.data(), rawMethod.size()), target->path).route;
    }
    const std::uint64_t bodyLimit =
        route != nullptr && route->maxBodyBytes ? *route->maxBodyBytes : options_.maxBodyBytes;
    const ErrorShape shape = route != nullptr ? route->errorShape : ErrorShape::kApi;
    if (const auto length = parser.content_length(); length && *length > bodyLimit) {
      co_await writeError(
          connection, shape, ErrorCode::kPayloadTooLarge,
          fmt::format("request body of {} bytes exceeds the limit of {} bytes", *length, bodyLimit),
          header.version(), remote, started, std::string(header.method_string()),
          std::string(header.target()));
      co_return false;
    }
    parser.body_limit(bodyLimit);
    const bool toFile = route != nullptr && route->bodyToFile && !parser.is_done();
    if (toFile) {
      Request probe = toRequest(parser.get(), remote);
      if (route->authenticate && authorizer_) {
        if (Result<std::string> principal = authorizer_(probe, route->scope); !principal.ok()) {
          co_await writeResponse(connection, errorReply(principal.error(), shape), header.version(),
                                 false, false, remote, started, probe);
          co_return false;
        }
      }
    }
    if (!parser.is_done() && beast::iequals(header[bhttp::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(stream, asio::buffer(kContinue.data(), kContinue.size()),
                                 asio::redirect_error(use_awaitable, ec));
      if (ec) co_return false;
    }
    Request request;
    unsigned version = header.version();
    bool keepAliveRequested = header.keep_alive();
    if (toFile) {
      request = toRequest(parser.get(), remote);
      std::optional<TemporaryBodyFile> file =
          co_await readBodyToFile(connection, buffer, parser, remote, started, bodyLimit);
      if (!file) co_return false;
      request.bodyFile = file->release();
    } else {
      if (!parser.is_done()) {
        connection.expiresAfter(options_.bodyTimeout);
        co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
        if (ec) {
          if (connection.timedOut) ec = beast::error::timeout;
          co_await rejectUnreadable(connection, ec, "body", remote, started, bodyLimit);
          co_return false;
        }
      }
      bhttp::request<bhttp::string_body> message = parser.release();
      request = toRequest(message, remote);
      request.body = std::move(message.body());
    }
    Reply response = co_await dispatch(request, connection);
    if (!request.bodyFile.empty()) {
      std::error_code ignored;
      std::filesystem::remove(request.bodyFile, ignored);  // unless the handler moved it away
    }
    const bool keepAlive = keepAliveRequested && !stopping_;
    const bool ok = co_await writeResponse(connection, std::move(response), version, keepAlive,
                                           request.method == "HEAD", remote, started, request);
    setBusy(id, false);
    co_return ok&& keepAlive;
  }

  // A temporary file that removes itself unless released.
  class TemporaryBodyFile {
   public:
    explicit TemporaryBodyFile(std::filesystem::path path) : path_(std::move(path)) {}
    TemporaryBodyFile(TemporaryBodyFile&& other) noexcept : path_(std::exchange(other.path_, {})) {}
    TemporaryBodyFile& operator=(TemporaryBodyFile&&) = delete;
    ~TemporaryBodyFile() {
      std::error_code ignored;
      if (!path_.empty()) std::filesystem::remove(path_, ignored);
    }
    std::filesystem::path release() { return std::exchange(path_, {}); }
    const std::filesystem::path& path() const { return path_; }

   private:
    std::filesystem::path path_;
  };

  // Streams the rest of the body into a new file in the upload directory.
  awaitable<std::optional<TemporaryBodyFile>> readBodyToFile(
      Connection& connection, beast::flat_buffer& buffer,
      bhttp::request_parser<bhttp::string_body>& headerParser, const std::string& remote,
      SteadyClock::time_point started, std::uint64_t bodyLimit) {
    const std::filesystem::path directory = options_.uploadDirectory.empty()
                                                ? std::filesystem::temp_directory_path()
                                                : std::filesystem::path(options_.uploadDirectory);
    std::error_code fsError;
    std::filesystem::create_directories(directory, fsError);
    TemporaryBodyFile file(directory /
                           fmt::format("body-{}-{}.part", ::getpid(), nextBodyFile_.fetch_add(1)));
    bhttp::request_parser<bhttp::file_body> parser(std::move(headerParser));
    parser.body_limit(bodyLimit);
    beast::error_code ec;
    parser.get().body().open(file.path().c_str(), beast::file_mode::write, ec);
    if (ec) {
      spdlog::error("cannot create {}: {}", file.path().string(), ec.message());
      co_await writeError(connection, ErrorShape::kApi, ErrorCode::kInternal,
                          "cannot store the request body", 11, remote, started, "-", "-");
      co_return std::nullopt;
    }
    connection.expiresAfter(options_.bodyTimeout);
    co_await bhttp::async_read(connection.socket, buffer, parser,
                               asio::redirect_error(use_awaitable, ec));
    parser.get().body().close();
    if (ec) {
      if (connection.timedOut) ec = beast::error::timeout;
      co_await rejectUnreadable(connection, ec, "body", remote, started, bodyLimit);
      co_return std::nullopt;
    }
    co_return std::optional<TemporaryBodyFile>(std::move(file));
  }

  // The header part of a request; the body is attached by the caller.
  static Request toRequest(const bhttp::request<bhttp::string_body>& message,
                           const std::string& remote) {
    Request request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    for (const auto& field : message) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers[name] = std::string(field.value());
    }
    request.remoteAddress = remote;
    request.principal = "anonymous";
    return request;
  }

  static Reply invoke(const Route& route, Request& request) {
    try {
      Result<Reply> reply = route.handler(request);
      if (!reply.ok()) return errorReply(reply.error(), route.errorShape);
      return std::move(reply).value();
    } catch (const std::exception& error) {
      spdlog::error("handler {} {} threw: {}", route.method, route.pattern, error.what());
      return errorReply(makeError(ErrorCode::kInternal, "internal error; see the daemon log"),
                        route.errorShape);
    }
  }

  awaitable<Reply> dispatch(Request& request, Connection& connection) {
    auto target = parseTarget(request.target);
    if (!target) {
      co_return errorReply(makeError(ErrorCode::kInvalidArgument,
                                     "malformed request target (bad percent-encoding?)"));
    }
    request.path = std::move(target->path);
    request.query = std::move(target->query);
    RouteMatch match = router_.match(request.method, request.path);
    if (match.route == nullptr) {
      if (!match.allowedMethods.empty()) {
        co_return methodNotAllowedReply(request.method, request.path, match.allowedMethods);
      }
      co_return notFoundReply(request.method, request.path);
    }
    const Route& route = *match.route;
    if (route.authenticate && authorizer_) {
      Result<std::string> principal = authorizer_(request, route.scope);
      if (!principal.ok()) co_return errorReply(principal.error(), route.errorShape);
      request.principal = std::move(principal.value());
    }
    request.pathParams = std::move(match.params);
    if (route.execution == Execution::kInline) co_return invoke(route, request);
    auto watching = std::make_shared<bool>(true);
    asio::co_spawn(connection.socket.get_executor(),
                   watchDisconnect(connection.shared_from_this(), request.cancelled, watching),
                   asio::detached);
    Reply response = co_await asio::co_spawn(
        workers_.get_executor(),
        [&route, &request]() -> awaitable<Reply> { co_return invoke(route, request); },
        use_awaitable);
    *watching = false;
    boost::system::error_code ignored;
    connection.socket.cancel(ignored);  // ends the watch; nothing else is pending on the socket
    co_return response;
  }

  // While a worker handles the request: if the client closes the connection (readable with
  // nothing to read), mark the request cancelled. Pipelined bytes end the watch unharmed.
  static awaitable<void> watchDisconnect(std::shared_ptr<Connection> connection,
                                         std::shared_ptr<std::atomic<bool>> cancelled,
                                         std::shared_ptr<bool> watching) {
    boost::system::error_code ec;
    co_await connection->socket.async_wait(tcp::socket::wait_read,
                                           asio::redirect_error(use_awaitable, ec));
    if (ec || !*watching || !connection->socket.is_open()) co_return;
    char byte = 0;
    const ssize_t peeked =
        ::recv(connection->socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (peeked == 0 || (peeked < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      cancelled->store(true);
    }
  }

  awaitable<bool> writeResponse(Connection& connection, Reply response, unsigned version,
                                bool keepAlive, bool head, const std::string& remote,
                                SteadyClock::time_point started, const Request& request) {
    if (response.stream && !head) {
      co_await writeStream(connection, std::move(response), version, remote, started, request);
      co_return false;  // a streamed response ends the connection
    }
    bhttp::response<bhttp::string_body> message{static_cast<bhttp::status>(response.status),
                                                version};
    message.set(bhttp::field::server, "deviceops");
    message.set(bhttp::field::content_type, response.contentType);
    for (const auto& [name, value] : response.headers) message.set(name, value);
    message.keep_alive(keepAlive);
    const std::size_t bytes = response.body.size();
    message.body() = std::move(response.body);
    message.prepare_payload();
    if (head) message.body().clear();
    boost::system::error_code ec;
    connection.expiresAfter(options_.writeTimeout);
    co_await bhttp::async_write(connection.socket, message,
                                asio::redirect_error(use_awaitable, ec));
    logAccess(remote, request.method, request.target, response.status, bytes, started,
              request.principal);
    co_return !ec;
  }

  // Chunked transfer of a ResponseStream; returns when it ends, the client leaves or the server
  // stops. Each next() runs on a worker so that waiting never blocks an I/O thread.
  // GCC 12 at -O1 (the sanitizer build) reports Asio's coroutine-frame operator delete as
  // mismatched with its operator new in this function; both are Asio's own pair.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
  awaitable<void> writeStream(Connection& connection, Reply response, unsigned version,
                              const std::string& remote, SteadyClock::time_point started,
                              const Request& request) {
    static constexpr std::chrono::milliseconds kPoll{500};
    bhttp::response<bhttp::empty_body> message{static_cast<bhttp::status>(response.status),
                                               version};
    message.set(bhttp::field::server, "deviceops");
    message.set(bhttp::field::content_type, response.contentType);
    message.set(bhttp::field::cache_control, "no-cache");
    for (const auto& [name, value] : response.headers) message.set(name, value);
    message.keep_alive(false);
    message.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> serializer(message);
    boost::system::error_code ec;
    connection.expiresAfter(options_.writeTimeout);
    co_await bhttp::async_write_header(connection.socket, serializer,
                                       asio::redirect_error(use_awaitable, ec));
    std::size_t bytes = 0;
    std::shared_ptr<ResponseStream> stream = std::move(response.stream);
    while (!ec && !stopping_) {
      connection.expiresAfter(options_.writeTimeout + kPoll);
      std::optional<std::string> piece = co_await asio::co_spawn(
          workers_.get_executor(), pollStream(stream, kPoll), use_awaitable);
      if (!piece) break;
      if (piece->empty()) {
        if (clientGone(connection)) break;
        continue;
      }
      bytes += piece->size();
      connection.expiresAfter(options_.writeTimeout);
      co_await asio::async_write(connection.socket, bhttp::make_chunk(asio::buffer(*piece)),
                                 asio::redirect_error(use_awaitable, ec));
    }
    if (!ec) {
      connection.expiresAfter(options_.writeTimeout);
      co_await asio::async_write(connection.socket, bhttp::make_chunk_last(),
                                 asio::redirect_error(use_awaitable, ec));
    }
    logAccess(remote, request.method, request.target, response.status, bytes, started,
              request.principal);
  }
#pragma GCC diagnostic pop

  static awaitable<std::optional<std::string>> pollStream(std::shared_ptr<ResponseStream> stream,
                                                          std::chrono::milliseconds wait) {
    co_return stream->next(wait);
  }

  // Whether the peer closed its side (readable with nothing to read) or the socket failed.
  static bool clientGone(Connection& connection) {
    if (!connection.socket.is_open()) return true;
    char byte = 0;
    const ssize_t peeked =
        ::recv(connection.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return peeked == 0 || (peeked < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
  }

  awaitable<void> writeError(Connection& connection, ErrorShape shape, ErrorCode code,
                             std::string message, unsigned version, const std::string& remote,
                             SteadyClock::time_point started, std::string method,
                             std::string target) {
    Request request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.principal = "-";
    co_await writeResponse(connection, errorReply(makeError(code, std::move(message)), shape),
                           version, false, false, remote, started, request);
  }

  // The header or body could not be read: answer what can be answered, then close.
  awaitable<void> rejectUnreadable(Connection& connection, boost::system::error_code ec,
                                   std::string_view part, const std::string& remote,
                                   SteadyClock::time_point started, std::uint64_t bodyLimit) {
    if (ec == bhttp::error::body_limit) {
      co_await writeError(connection, ErrorShape::kApi, ErrorCode::kPayloadTooLarge,
                          fmt::format("request body exceeds the limit of {} bytes", bodyLimit), 11,
                          remote, started, "-", "-");
    } else if (ec == bhttp::error::header_limit) {
      co_await writeError(
          connection, ErrorShape::kApi, ErrorCode::kPayloadTooLarge,
          fmt::format("request header exceeds the limit of {} bytes", options_.maxHeaderBytes), 11,
          remote, started, "-", "-");
    } else if (ec.category() == make_error_code(bhttp::error::bad_target).category() &&
               ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message) {
      co_await writeError(connection, ErrorShape::kApi, ErrorCode::kInvalidArgument,
                          fmt::format("malformed HTTP request {}: {}", part, ec.message()), 11,
                          remote, started, "-", "-");
    } else if (ec == beast::error::timeout) {
      spdlog::info("{}: closed: request {} not received within the timeout", remote, part);
    }
  }

  void logAccess(const std::string& remote, const std::string& method, const std::string& target,
                 int status, std::size_t bytes, SteadyClock::time_point started,
                 const std::string& principal) {
    if (!options_.accessLog) return;
    const double milliseconds =
        std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
    spdlog::info("access {} \"{} {}\" {} {} {:.3f}ms principal={}", remote, method, target, status,
                 bytes, milliseconds, principal);
  }

  ServerOptions options_;
  const Router& router_;
  Authorizer authorizer_;
  asio::io_context io_;
  asio::thread_pool workers_;
  tcp::acceptor acceptor_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  tcp::endpoint bound_;
  std::vector<std::thread> threads_;
  std::mutex joinMutex_;
  std::atomic<bool> stopping_{false};
  SteadyClock::time_point shutdownStarted_;
  std::mutex mutex_;  // guards sessions_, nextSessionId_
  std::map<std::uint64_t, Session> sessions_;
  std::uint64_t nextSessionId_ = 0;
  std::atomic<std::uint64_t> nextBodyFile_{0};
};

HttpServer::HttpServer(ServerOptions options, const Router& router, Authorizer authorizer)
    : impl_(std::make_unique<Impl>(std::move(options), router, std::move(authorizer))) {}
HttpServer::~HttpServer() = default;
Status HttpServer::start() { return impl_->start(); }
std::uint16_t HttpServer::boundPort() const { return impl_->boundPort(); }
std::string HttpServer::boundAddress() const { return impl_->boundAddress(); }
void HttpServer::wait() { impl_->wait(); }
void HttpServer::shutdown() { impl_->shutdown(); }

}  // namespace deviceops::http
