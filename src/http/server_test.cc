// HttpServer features that need a live socket but no daemon: per-route body limits, bodies
// streamed to files (authenticated before the body is read), cancellation on client disconnect.
#include "http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

namespace deviceops::http {
namespace {

using namespace std::chrono_literals;

// Sends `request` on a fresh connection and returns everything the server wrote until it
// closes the connection or 5 s pass. `closeAfterSend` closes right after sending instead.
std::string exchange(std::uint16_t port, const std::string& request, bool closeAfterSend = false) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return "";
  }
  std::size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  std::string received;
  if (!closeAfterSend) {
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    char chunk[4096];
    while (true) {
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      received.append(chunk, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return received;
}

std::string post(const std::string& path, const std::string& body,
                 const std::string& extraHeaders = "") {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + extraHeaders +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Yields "data: 1\n\n" ... "data: <to>\n\n", with an empty poll between pieces, then ends;
// to < 0: never ends. Sets `destroyed` when the server lets go of it.
class CountingStream final : public ResponseStream {
 public:
  CountingStream(int to, std::shared_ptr<std::atomic<bool>> destroyed)
      : to_(to), destroyed_(std::move(destroyed)) {}
  ~CountingStream() override { destroyed_->store(true); }
  std::optional<std::string> next(std::chrono::milliseconds wait) override {
    if (to_ >= 0 && sent_ >= to_) return std::nullopt;
    if (idle_ = !idle_; idle_) {
      std::this_thread::sleep_for(std::min(wait, std::chrono::milliseconds(20)));
      return std::string();
    }
    return "data: " + std::to_string(++sent_) + "\n\n";
  }

 private:
  int to_;
  int sent_ = 0;
  bool idle_ = false;
  std::shared_ptr<std::atomic<bool>> destroyed_;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    uploads_ = std::filesystem::temp_directory_path() /
               ("deviceops-server-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(uploads_);
    router_.add("POST", "/echo", [](Request& request) -> Result<Reply> {
      return bytesReply(200, "text/plain", std::to_string(request.body.size()));
    });
    Route& upload = router_.add("POST", "/upload", [this](Request& request) -> Result<Reply> {
      seenBodyFile_ = request.bodyFile;
      std::ifstream in(request.bodyFile, std::ios::binary);
      const std::string content((std::istreambuf_iterator<char>(in)), {});
      return bytesReply(200, "text/plain",
                        std::to_string(content.size()) + ":" + content.substr(0, 8) +
                            (request.body.empty() ? ":memory-empty" : ":memory-used"));
    });
    upload.bodyToFile = true;
    upload.maxBodyBytes = 1 << 20;
    // Runs 3 s unless cancelled (the test client waits up to 5 s for a reply).
    router_.add("POST", "/slow", [this](Request& request) -> Result<Reply> {
      const auto until = std::chrono::steady_clock::now() + 3s;
      while (!request.cancelled->load() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(5ms);
      }
      slowCancelled_.set_value(request.cancelled->load());
      return bytesReply(200, "text/plain", "done");
    });
    router_.add("GET", "/count", [this](Request& request) -> Result<Reply> {
      return streamReply(std::make_shared<CountingStream>(
                             std::stoi(request.queryParam("to").value_or("3")), streamDestroyed_),
                         "text/event-stream");
    });
    ServerOptions options;
    options.port = 0;
    options.maxBodyBytes = 1024;
    options.accessLog = false;
    options.uploadDirectory = uploads_.string();
    server_ = std::make_unique<HttpServer>(
        options, router_, [](const Request& request, Scope) -> Result<std::string> {
          if (request.header("authorization") == "Bearer good") return std::string("tester");
          return makeError(ErrorCode::kUnauthenticated, "missing or unknown bearer token");
        });
    ASSERT_TRUE(server_->start().ok());
    thread_ = std::thread([this] { server_->wait(); });
  }

  void TearDown() override {
    server_->shutdown();
    thread_.join();
    std::filesystem::remove_all(uploads_);
  }

  std::filesystem::path uploads_;
  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::filesystem::path seenBodyFile_;
  std::promise<bool> slowCancelled_;
  std::shared_ptr<std::atomic<bool>> streamDestroyed_ = std::make_shared<std::atomic<bool>>(false);
};

constexpr const char* kAuth = "Authorization: Bearer good\r\n";

TEST_F(ServerTest, DefaultBodyLimitStillApplies) {
  EXPECT_NE(exchange(server_->boundPort(), post("/echo", std::string(1000, 'a'), kAuth))
                .find("\r\n\r\n1000"),
            std::string::npos);
  EXPECT_NE(
      exchange(server_->boundPort(), post("/echo", std::string(2000, 'a'), kAuth)).find("413"),
      std::string::npos);
}

TEST_F(ServerTest, RouteBodyLimitOverridesTheDefaultAndBodyGoesToAFile) {
  const std::string body = "ONNXDATA" + std::string(500000, 'x');
  const std::string reply = exchange(server_->boundPort(), post("/upload", body, kAuth));
  EXPECT_NE(reply.find("200 OK"), std::string::npos) << reply;
  EXPECT_NE(reply.find("500008:ONNXDATA:memory-empty"), std::string::npos) << reply;
  EXPECT_EQ(seenBodyFile_.parent_path(), uploads_);
  EXPECT_FALSE(std::filesystem::exists(seenBodyFile_)) << "left behind after the response";
  EXPECT_NE(
      exchange(server_->boundPort(), post("/upload", std::string(2 << 20, 'x'), kAuth)).find("413"),
      std::string::npos);
}

TEST_F(ServerTest, StreamedRouteRefusesUnauthenticatedBeforeReadingTheBody) {
  const std::string reply = exchange(server_->boundPort(), post("/upload", std::string(1000, 'x')));
  EXPECT_NE(reply.find("401"), std::string::npos) << reply;
  EXPECT_TRUE(seenBodyFile_.empty()) << "the handler must not run";
  EXPECT_TRUE(std::filesystem::is_empty(uploads_)) << "nothing may be written";
}

TEST_F(ServerTest, TruncatedStreamedBodyLeavesNoFile) {
  std::string request = post("/upload", std::string(1000, 'x'), kAuth);
  request.resize(request.size() - 500);
  exchange(server_->boundPort(), request, /*closeAfterSend=*/true);
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(seenBodyFile_.empty());
  EXPECT_TRUE(std::filesystem::is_empty(uploads_));
}

TEST_F(ServerTest, ClientDisconnectCancelsTheRequest) {
  std::future<bool> cancelled = slowCancelled_.get_future();
  exchange(server_->boundPort(), post("/slow", "", kAuth), /*closeAfterSend=*/true);
  ASSERT_EQ(cancelled.wait_for(4s), std::future_status::ready);
  EXPECT_TRUE(cancelled.get());
}

TEST_F(ServerTest, ConnectedClientIsNotCancelled) {
  std::future<bool> cancelled = slowCancelled_.get_future();
  std::thread client([this] {
    // Keeps the connection open until the reply arrives (the handler waits 3 s).
    exchange(server_->boundPort(), post("/slow", "", kAuth));
  });
  ASSERT_EQ(cancelled.wait_for(8s), std::future_status::ready);
  EXPECT_FALSE(cancelled.get());
  client.join();
}

TEST_F(ServerTest, StreamedResponseIsSentInChunksAndEnds) {
  const std::string reply =
      exchange(server_->boundPort(),
               "GET /count?to=3 HTTP/1.1\r\nHost: x\r\n" + std::string(kAuth) + "\r\n");
  EXPECT_NE(reply.find("200 OK"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Transfer-Encoding: chunked"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Content-Type: text/event-stream"), std::string::npos) << reply;
  const auto one = reply.find("data: 1"), three = reply.find("data: 3");
  ASSERT_NE(one, std::string::npos) << reply;
  ASSERT_NE(three, std::string::npos) << reply;
  EXPECT_LT(one, three);
  EXPECT_EQ(reply.find("data: 4"), std::string::npos);
  EXPECT_NE(reply.find("\r\n0\r\n\r\n"), std::string::npos) << "no last chunk: " << reply;
  EXPECT_TRUE(streamDestroyed_->load());
}

TEST_F(ServerTest, EndlessStreamEndsWhenTheClientLeaves) {
  exchange(server_->boundPort(),
           "GET /count?to=-1 HTTP/1.1\r\nHost: x\r\n" + std::string(kAuth) + "\r\n",
           /*closeAfterSend=*/true);
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!streamDestroyed_->load() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(streamDestroyed_->load()) << "the server kept streaming to a closed connection";
}

TEST_F(ServerTest, StreamNeedsAuthentication) {
  const std::string reply = exchange(
      server_->boundPort(), "GET /count?to=3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(reply.find("401"), std::string::npos) << reply;
  EXPECT_EQ(reply.find("data: 1"), std::string::npos);
}

}  // namespace
}  // namespace deviceops::http
