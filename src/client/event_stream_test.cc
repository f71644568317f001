#include "client/event_stream.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "client/http_client.h"
#include "client/testing/fake_http_server.h"

namespace deviceops::client {

// Found by argument-dependent lookup, so it lives in the type's namespace.
void PrintTo(const ServerSentEvent& event, std::ostream* out) {
  *out << "{id '" << event.id << "' type '" << event.type << "' data '" << event.data << "'}";
}

namespace {

using fakes::CannedReply;
using fakes::FakeHttpServer;
using fakes::RecordedRequest;

constexpr std::string_view kStream =
    ": keep-alive\r\n\r\n"
    "event: snapshot\r\ndata: {\"id\":\"gen-1\"}\r\n\r\n"
    "id: 7\nevent: step\ndata: {\"step\":1}\n\n"
    "data:first\rdata:  second\r\r"        // no event name, CR line ends, one space stripped
    "id: 9\nevent: stage\nretry: 100\n\n"  // no data: not dispatched, but the id carries over
    "event: end\ndata: {}\n\n"
    "event: partial\ndata: never finished";

const std::vector<ServerSentEvent> kExpected = {
    {"", "snapshot", "{\"id\":\"gen-1\"}"},
    {"7", "step", "{\"step\":1}"},
    {"7", "message", "first\n second"},
    {"9", "end", "{}"},
};

TEST(EventStreamParserTest, WholeStream) {
  EventStreamParser parser;
  EXPECT_EQ(parser.feed(kStream), kExpected);
}

TEST(EventStreamParserTest, EverySplitGivesTheSameEvents) {
  for (std::size_t split = 0; split <= kStream.size(); ++split) {
    SCOPED_TRACE(split);
    EventStreamParser parser;
    std::vector<ServerSentEvent> events = parser.feed(kStream.substr(0, split));
    for (ServerSentEvent& event : parser.feed(kStream.substr(split))) events.push_back(event);
    EXPECT_EQ(events, kExpected);
  }
}

TEST(EventStreamParserTest, ByteByByte) {
  EventStreamParser parser;
  std::vector<ServerSentEvent> events;
  for (const char c : kStream) {
    for (ServerSentEvent& event : parser.feed(std::string_view(&c, 1))) events.push_back(event);
  }
  EXPECT_EQ(events, kExpected);
}

HttpClient clientFor(const FakeHttpServer& server) {
  auto endpoint = parseUrl(server.url());
  return HttpClient(*endpoint, std::chrono::seconds(5));
}

// A chunked response, sent verbatim, as the daemon streams events.
CannedReply chunked(std::vector<std::string> chunks) {
  CannedReply reply;
  reply.raw =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (const std::string& chunk : chunks) {
    reply.raw += fmt::format("{:x}\r\n{}\r\n", chunk.size(), chunk);
  }
  reply.raw += "0\r\n\r\n";
  return reply;
}

TEST(HttpClientStreamTest, PassesTheDecodedBodyOnAndSendsHeaders) {
  FakeHttpServer server([](const RecordedRequest&) {
    return chunked({"event: a\ndata: 1\n\n", "event: b\n", "data: 2\n\n"});
  });
  HttpClient client = clientFor(server);
  client.setBearerToken("t0k");
  std::string received;
  auto response = client.stream("/api/generation/gen-1/events",
                                [&](std::string_view piece) {
                                  received += piece;
                                  return true;
                                },
                                {{"Last-Event-ID", "4"}});
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->headers.at("content-type"), "text/event-stream");
  EXPECT_EQ(response->body, "");
  EXPECT_EQ(received, "event: a\ndata: 1\n\nevent: b\ndata: 2\n\n");
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].target, "/api/generation/gen-1/events");
  EXPECT_EQ(requests[0].headers.at("last-event-id"), "4");
  EXPECT_EQ(requests[0].headers.at("accept"), "text/event-stream");
  EXPECT_EQ(requests[0].headers.at("authorization"), "Bearer t0k");
}

TEST(HttpClientStreamTest, StopsWhenTheCallbackSaysSo) {
  FakeHttpServer server([](const RecordedRequest&) { return chunked({"one", "two", "three"}); });
  HttpClient client = clientFor(server);
  int calls = 0;
  auto response = client.stream("/events", [&](std::string_view) { return ++calls < 1; });
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(calls, 1);
}

TEST(HttpClientStreamTest, AnErrorAnswerIsReturnedWhole) {
  FakeHttpServer server([](const RecordedRequest&) {
    return CannedReply::json(404, R"({"error":{"code":"NOT_FOUND","message":"no job"}})");
  });
  HttpClient client = clientFor(server);
  bool called = false;
  auto response = client.stream("/events", [&](std::string_view) { return called = true; });
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->body, R"({"error":{"code":"NOT_FOUND","message":"no job"}})");
  EXPECT_FALSE(called);
}

TEST(HttpClientStreamTest, ACutStreamAndASilentOneAreErrors) {
  FakeHttpServer cut([](const RecordedRequest&) {
    CannedReply reply;
    reply.raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    return reply;  // closed before the last chunk
  });
  HttpClient cutClient = clientFor(cut);
  std::string received;
  auto broken = cutClient.stream("/events", [&](std::string_view piece) {
    received += piece;
    return true;
  });
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().code, ErrorCode::kUnavailable) << broken.error().message;
  EXPECT_EQ(received, "hello");

  FakeHttpServer silent([](const RecordedRequest&) {
    return CannedReply::withAction(CannedReply::Action::kNeverAnswer);
  });
  HttpClient silentClient(*parseUrl(silent.url()), std::chrono::milliseconds(200));
  auto timedOut = silentClient.stream("/events", [](std::string_view) { return true; });
  ASSERT_FALSE(timedOut.ok());
  EXPECT_EQ(timedOut.error().code, ErrorCode::kDeadlineExceeded);
}

TEST(HttpClientStreamTest, KeepWaitingStopsAQuietStreamWithoutAnError) {
  FakeHttpServer quiet([](const RecordedRequest&) {
    CannedReply reply;
    reply.action = CannedReply::Action::kRawThenHang;
    reply.raw =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
    return reply;
  });
  HttpClient client(*parseUrl(quiet.url()), std::chrono::seconds(10));
  std::string received;
  int asked = 0;
  const auto start = std::chrono::steady_clock::now();
  auto response = client.stream(
      "/events",
      [&](std::string_view piece) {
        received += piece;
        return true;
      },
      {}, std::chrono::seconds(10), [&] { return ++asked < 3; });
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(response.ok()) << response.error().message;
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(received, "hello");
  EXPECT_EQ(asked, 3);
  // Asked every kStreamTickInterval (100 ms): stopped after about 300 ms, not the 10 s idle
  // timeout.
  EXPECT_GE(elapsed, 2 * kStreamTickInterval);
  EXPECT_LT(elapsed, std::chrono::seconds(3));
}

TEST(HttpClientStreamTest, RejectsABadTarget) {
  HttpClient client(Endpoint{"127.0.0.1", 1, ""});
  auto response = client.stream("no-slash", [](std::string_view) { return true; });
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(response.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace deviceops::client
