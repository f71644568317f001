#include "client/http_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "client/testing/fake_http_server.h"

namespace deviceops::client {
namespace {

using fakes::CannedReply;
using fakes::FakeHttpServer;
using fakes::RecordedRequest;
using Action = CannedReply::Action;
using ::testing::HasSubstr;

Endpoint localEndpoint(std::uint16_t port) { return Endpoint{"127.0.0.1", port, ""}; }

// A port on 127.0.0.1 that nothing listens on: bound once to learn a free one, then released.
std::uint16_t closedPort() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

struct GoodUrlCase {
  std::string url;
  std::string host;
  std::uint16_t port;
  std::string basePath;
};

TEST(ParseUrlTest, AcceptsTheForms) {
  const std::vector<GoodUrlCase> cases = {
      {"http://127.0.0.1:5000", "127.0.0.1", 5000, ""},
      {"http://[::1]:8080/", "::1", 8080, ""},
      {"localhost:5000", "localhost", 5000, ""},
      {"localhost", "localhost", 5000, ""},
      {"[::1]", "::1", 5000, ""},
      {"HTTP://Example.com:80/api/", "Example.com", 80, "/api"},
      {"http://node7:65535/a/b//", "node7", 65535, "/a/b"},
      {"http://10.0.0.1:1", "10.0.0.1", 1, ""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.url);
    auto endpoint = parseUrl(c.url);
    ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
    EXPECT_EQ(endpoint->host, c.host);
    EXPECT_EQ(endpoint->port, c.port);
    EXPECT_EQ(endpoint->basePath, c.basePath);
  }
}

TEST(ParseUrlTest, RejectsBadUrlsWithAReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"https://127.0.0.1:5000", "https is not supported"},
      {"ftp://host", "scheme 'ftp'"},
      {"", "missing host"},
      {"http://", "missing host"},
      {"http://:5000", "missing host"},
      {"host:", "missing port"},
      {"host:0", "port '0'"},
      {"host:65536", "port '65536'"},
      {"host:abc", "port 'abc'"},
      {"host:5000x", "port '5000x'"},
      {"host:123456", "port '123456'"},
      {"::1:5000", "brackets"},
      {"http://[::1", "missing ']'"},
      {"http://[::1]x", "expected ':'"},
      {"http://user@host:5000", "user info"},
      {"http://host:5000/?q=1", "query"},
      {"http://host/#top", "fragment"},
      {"http://ho st:5000", "spaces"},
  };
  for (const auto& [url, reason] : cases) {
    SCOPED_TRACE(url);
    auto endpoint = parseUrl(url);
    ASSERT_FALSE(endpoint.ok());
    EXPECT_EQ(endpoint.error().code, ErrorCode::kInvalidArgument);
    EXPECT_THAT(endpoint.error().message, HasSubstr(reason));
  }
}

TEST(FormatAuthorityTest, BracketsIpv6) {
  EXPECT_EQ(formatAuthority({"127.0.0.1", 5000, ""}), "127.0.0.1:5000");
  EXPECT_EQ(formatAuthority({"::1", 8080, ""}), "[::1]:8080");
  EXPECT_EQ(formatAuthority({"localhost", 1, "/x"}), "localhost:1");
}

TEST(PercentEncodeTest, EncodesAllButUnreserved) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", ""},
      {"gpu-3f2a9c1e0b7d", "gpu-3f2a9c1e0b7d"},
      {"A.z_0~", "A.z_0~"},
      {"a/b c", "a%2Fb%20c"},
      {"?&=#%+", "%3F%26%3D%23%25%2B"},
      {"é", "%C3%A9"},
  };
  for (const auto& [text, encoded] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(percentEncode(text), encoded);
  }
}

TEST(HttpClientTest, GetsBodyStatusAndLowercasedHeaders) {
  FakeHttpServer server(
      [](const RecordedRequest&) { return CannedReply::json(200, R"({"devices":[],"count":0})"); });
  HttpClient client(localEndpoint(server.port()));
  auto response = client.get("/api/device?type=gpu");
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, R"({"devices":[],"count":0})");
  EXPECT_EQ(response->headers.at("content-type"), "application/json");
  EXPECT_EQ(response->headers.at("content-length"), "24");

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/api/device?type=gpu");
  EXPECT_EQ(requests[0].headers.at("host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(requests[0].headers.at("accept"), "application/json");
  EXPECT_EQ(requests[0].headers.count("authorization"), 0u);
  EXPECT_EQ(requests[0].headers.count("content-type"), 0u);
}

TEST(HttpClientTest, ErrorStatusIsAnAnswerNotAFailure) {
  const std::string body =
      R"({"error":{"code":"NOT_FOUND","message":"no device with id 'x'","details":{}}})";
  FakeHttpServer server([&](const RecordedRequest&) { return CannedReply::json(404, body); });
  HttpClient client(localEndpoint(server.port()));
  auto response = client.get("/api/device/x");
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->body, body);
}

TEST(HttpClientTest, SendsBodyTokenBasePathAndExtraHeaders) {
  FakeHttpServer server([](const RecordedRequest&) { return CannedReply::json(201, "{}"); });
  HttpClient client(Endpoint{"127.0.0.1", server.port(), "/proxy"});
  client.setBearerToken("secret-token");
  auto response = client.request("POST", "/api/memory", R"({"bytes":1})", "application/json",
                                 {{"Accept", "text/plain"}, {"X-Request-Id", "42"}});
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 201);

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/proxy/api/memory");
  EXPECT_EQ(requests[0].body, R"({"bytes":1})");
  EXPECT_EQ(requests[0].headers.at("authorization"), "Bearer secret-token");
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(requests[0].headers.at("content-length"), "11");
  EXPECT_EQ(requests[0].headers.at("accept"), "text/plain");
  EXPECT_EQ(requests[0].headers.at("x-request-id"), "42");
}

TEST(HttpClientTest, ReportsBodyBytesAsTheyAreSent) {
  FakeHttpServer server([](const RecordedRequest&) { return CannedReply::json(201, "{}"); });
  HttpClient client(localEndpoint(server.port()));
  const std::string body(300 * 1024, 'x');
  std::vector<std::pair<std::uint64_t, std::uint64_t>> reports;
  auto response = client.request(
      "POST", "/upload", body, "application/octet-stream", {},
      [&](std::uint64_t sent, std::uint64_t total) { reports.emplace_back(sent, total); });
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 201);
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_EQ(server.requests()[0].body, body);
  // 0 first, then pieces of at most 64 KiB (the header rides in the first), ending at the size.
  ASSERT_GE(reports.size(), 6u);
  EXPECT_EQ(reports.front(), std::make_pair(std::uint64_t{0}, std::uint64_t{body.size()}));
  EXPECT_EQ(reports.back(), std::make_pair(std::uint64_t{body.size()}, std::uint64_t{body.size()}));
  for (std::size_t i = 1; i < reports.size(); ++i) {
    EXPECT_LE(reports[i - 1].first, reports[i].first);
    EXPECT_LE(reports[i].first - reports[i - 1].first, 64u * 1024);
    EXPECT_EQ(reports[i].second, body.size());
  }
}

TEST(HttpClientTest, KeepsTheConnectionAlive) {
  FakeHttpServer server([](const RecordedRequest&) { return CannedReply::json(200, "{}"); });
  HttpClient client(localEndpoint(server.port()));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(client.get("/api/version").ok());
  EXPECT_EQ(server.connectionCount(), 1);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(HttpClientTest, ReconnectsAfterTheServerClosedAnIdleConnection) {
  FakeHttpServer server([](const RecordedRequest& request) {
    CannedReply reply = CannedReply::json(200, "{}");
    if (request.sequence == 0) reply.action = Action::kRespondThenClose;
    return reply;
  });
  HttpClient client(localEndpoint(server.port()));
  ASSERT_TRUE(client.get("/first").ok());
  auto second = client.get("/second");
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(second->status, 200);
  EXPECT_EQ(server.connectionCount(), 2);
}

// The server drops the second request on a kept-alive connection without answering.
CannedReply dropSecondRequest(const RecordedRequest& request) {
  if (request.sequence == 1) return CannedReply::withAction(Action::kCloseWithoutAnswer);
  return CannedReply::json(200, "{}");
}

TEST(HttpClientTest, ResendsAnIdempotentRequestOnceWhenAReusedConnectionDrops) {
  FakeHttpServer server(dropSecondRequest);
  HttpClient client(localEndpoint(server.port()));
  ASSERT_TRUE(client.get("/a").ok());
  auto response = client.get("/b");
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(server.connectionCount(), 2);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[2].target, "/b");
  EXPECT_EQ(requests[2].connection, 2);
}

TEST(HttpClientTest, DoesNotResendAPostTheServerMayHaveSeen) {
  FakeHttpServer server(dropSecondRequest);
  HttpClient client(localEndpoint(server.port()));
  ASSERT_TRUE(client.get("/a").ok());
  auto response = client.request("POST", "/api/training/jobs", "{}");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().code, ErrorCode::kUnavailable);
  EXPECT_THAT(response.error().message, HasSubstr("closed the connection without answering"));
  EXPECT_EQ(server.requests().size(), 2u);
  // The client recovers on the next call.
  EXPECT_TRUE(client.get("/c").ok());
}

TEST(HttpClientTest, ConnectionClosedWithoutAnswerIsUnavailable) {
  FakeHttpServer server(
      [](const RecordedRequest&) { return CannedReply::withAction(Action::kCloseWithoutAnswer); });
  HttpClient client(localEndpoint(server.port()));
  auto response = client.get("/api/device");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(response.error().message,
            "127.0.0.1:" + std::to_string(server.port()) +
                " closed the connection without answering GET /api/device");
  EXPECT_EQ(server.connectionCount(), 1);  // a fresh connection is not retried
}

TEST(HttpClientTest, ServerThatNeverAnswersTimesOutAndTheClientRecovers) {
  FakeHttpServer server([](const RecordedRequest& request) {
    if (request.sequence == 0) return CannedReply::withAction(Action::kNeverAnswer);
    return CannedReply::json(200, "{}");
  });
  HttpClient client(localEndpoint(server.port()), std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  auto response = client.get("/slow");
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_THAT(response.error().message, HasSubstr("timed out after 200 ms"));
  EXPECT_GE(elapsed, std::chrono::milliseconds(150));
  EXPECT_LT(elapsed, std::chrono::seconds(5));

  auto next = client.get("/fast");
  ASSERT_TRUE(next.ok()) << next.error().message;
  EXPECT_EQ(server.connectionCount(), 2);
}

TEST(HttpClientTest, RefusedConnectionIsUnavailableWithTheAddress) {
  const std::uint16_t port = closedPort();
  HttpClient client(localEndpoint(port));
  auto response = client.get("/api/version");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(response.error().message,
            "cannot connect to 127.0.0.1:" + std::to_string(port) + ": Connection refused");
}

TEST(HttpClientTest, DecodesChunkedAndReadUntilCloseBodies) {
  FakeHttpServer server([](const RecordedRequest& request) {
    CannedReply reply;
    if (request.target == "/chunked") {
      reply.raw =
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
          "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    } else {
      reply.raw = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
    }
    return reply;
  });
  HttpClient client(localEndpoint(server.port()));
  auto chunked = client.get("/chunked");
  ASSERT_TRUE(chunked.ok()) << chunked.error().message;
  EXPECT_EQ(chunked->body, "hello world");
  EXPECT_EQ(chunked->headers.at("x-a"), "1, 2");
  auto untilClose = client.get("/close");
  ASSERT_TRUE(untilClose.ok()) << untilClose.error().message;
  EXPECT_EQ(untilClose->body, "until the end");
}

TEST(HttpClientTest, ReadsALargeBody) {
  const std::string big(5 * 1024 * 1024 + 7, 'x');
  FakeHttpServer server([&](const RecordedRequest&) { return CannedReply::json(200, big); });
  HttpClient client(localEndpoint(server.port()));
  auto response = client.get("/big");
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->body.size(), big.size());
}

TEST(HttpClientTest, GarbageAnswerIsInternal) {
  FakeHttpServer server([](const RecordedRequest&) {
    CannedReply reply;
    reply.raw = "this is not http\r\n\r\n";
    return reply;
  });
  HttpClient client(localEndpoint(server.port()));
  auto response = client.get("/x");
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().code, ErrorCode::kInternal);
  EXPECT_THAT(response.error().message, HasSubstr("invalid HTTP answer"));
}

TEST(HttpClientTest, RejectsMalformedRequestsWithoutSending) {
  HttpClient client(localEndpoint(closedPort()));
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"get", "/x", ""},         {"", "/x", ""},
      {"GET", "x", ""},          {"GET", "", ""},
      {"GET", "/a b", ""},       {"GET", "/x\r\nEvil: 1", ""},
      {"GET", "/x", "Bad:Name"}, {"GET", "/x", "X-Header\n"},
  };
  for (const auto& [method, target, header] : cases) {
    SCOPED_TRACE(method + " " + target + " " + header);
    std::vector<std::pair<std::string, std::string>> headers;
    if (!header.empty()) headers.emplace_back(header, "v");
    auto response = client.request(method, target, {}, "application/json", headers);
    ASSERT_FALSE(response.ok());
    EXPECT_EQ(response.error().code, ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace deviceops::client
