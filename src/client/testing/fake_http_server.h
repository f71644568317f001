// A minimal HTTP/1.1 server for client tests: listens on 127.0.0.1 at an ephemeral port, runs on
// its own thread and answers each request with what a test-supplied handler returns, including
// misbehaviour (closing without an answer, never answering). Header-only; tests only.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace deviceops::client::fakes {

struct RecordedRequest {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  int connection = 0;  // 1 for the first accepted connection, 2 for the next...
  int sequence = 0;    // 0 for the first request the server received, 1 for the next...
};

struct CannedReply {
  enum class Action {
    kRespond,             // answer, keep the connection open
    kRespondThenClose,    // answer without "Connection: close", then close (idle timeout)
    kCloseWithoutAnswer,  // close the connection instead of answering
    kNeverAnswer,         // keep the connection open, never answer
    kRawThenHang,         // send `raw`, then keep the connection open without a further byte
  };
  Action action = Action::kRespond;
  int status = 200;
  std::string body;
  std::string contentType = "application/json";
  std::string raw;  // when not empty: sent verbatim instead of status, headers and body, then close

  static CannedReply json(int status, std::string body) {
    CannedReply reply;
    reply.status = status;
    reply.body = std::move(body);
    return reply;
  }
  static CannedReply withAction(Action action) {
    CannedReply reply;
    reply.action = action;
    return reply;
  }
};

class FakeHttpServer {
 public:
  // Called on the server thread, once per request.
  using Handler = std::function<CannedReply(const RecordedRequest&)>;

  explicit FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
    const tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    boost::asio::co_spawn(io_, acceptLoop(), boost::asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~FakeHttpServer() {
    io_.stop();
    thread_.join();
  }

  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connectionCount() const { return connections_.load(); }
  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  using tcp = boost::asio::ip::tcp;

  boost::asio::awaitable<void> acceptLoop() {
    for (;;) {
      boost::system::error_code error;
      tcp::socket socket = co_await acceptor_.async_accept(
          boost::asio::redirect_error(boost::asio::use_awaitable, error));
      if (error) co_return;
      const int connection = ++connections_;
      boost::asio::co_spawn(io_, serve(std::move(socket), connection), boost::asio::detached);
    }
  }

  boost::asio::awaitable<void> serve(tcp::socket socket, int connection) {
    std::string buffer;
    try {
      for (;;) {
        const std::size_t headerEnd = co_await boost::asio::async_read_until(
            socket, boost::asio::dynamic_buffer(buffer), "\r\n\r\n", boost::asio::use_awaitable);
        RecordedRequest request = parseHead(buffer.substr(0, headerEnd));
        request.connection = connection;
        buffer.erase(0, headerEnd);
        const auto length = request.headers.find("content-length");
        const std::size_t bodySize =
            length == request.headers.end() ? 0 : std::stoul(length->second);
        if (buffer.size() < bodySize) {
          co_await boost::asio::async_read(socket, boost::asio::dynamic_buffer(buffer),
                                           boost::asio::transfer_exactly(bodySize - buffer.size()),
                                           boost::asio::use_awaitable);
        }
        request.body = buffer.substr(0, bodySize);
        buffer.erase(0, bodySize);
        {
          std::lock_guard lock(mutex_);
          request.sequence = static_cast<int>(requests_.size());
          requests_.push_back(request);
        }
        const CannedReply reply = handler_(request);
        using Action = CannedReply::Action;
        if (reply.action == Action::kCloseWithoutAnswer) co_return;
        if (reply.action == Action::kNeverAnswer) continue;  // wait for the client to hang up
        const std::string bytes = reply.raw.empty() ? format(reply) : reply.raw;
        co_await boost::asio::async_write(socket, boost::asio::buffer(bytes),
                                          boost::asio::use_awaitable);
        if (reply.action == Action::kRawThenHang) continue;  // until the client hangs up
        if (reply.action == Action::kRespondThenClose || !reply.raw.empty()) co_return;
      }
    } catch (const std::exception&) {
      // The client hung up or sent garbage: drop the connection.
    }
  }

  static RecordedRequest parseHead(const std::string& head) {
    RecordedRequest request;
    std::size_t lineEnd = head.find("\r\n");
    const std::string requestLine = head.substr(0, lineEnd);
    const std::size_t firstSpace = requestLine.find(' ');
    const std::size_t secondSpace = requestLine.find(' ', firstSpace + 1);
    request.method = requestLine.substr(0, firstSpace);
    request.target = requestLine.substr(firstSpace + 1, secondSpace - firstSpace - 1);
    while (lineEnd + 2 < head.size()) {
      const std::size_t start = lineEnd + 2;
      lineEnd = head.find("\r\n", start);
      const std::string line = head.substr(start, lineEnd - start);
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = line.substr(0, colon);
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const std::size_t valueStart = line.find_first_not_of(' ', colon + 1);
      request.headers[name] = valueStart == std::string::npos ? "" : line.substr(valueStart);
    }
    return request;
  }

  static std::string format(const CannedReply& reply) {
    std::string head = "HTTP/1.1 " + std::to_string(reply.status) +
                       (reply.status == 200 ? " OK" : " Status") + "\r\n";
    head += "Content-Type: " + reply.contentType + "\r\n";
    head += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n";
    return head + reply.body;
  }

  Handler handler_;
  boost::asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  std::uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  mutable std::mutex mutex_;
  std::vector<RecordedRequest> requests_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace deviceops::client::fakes
