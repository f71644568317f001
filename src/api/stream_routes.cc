// GET /api/stream: the daemon's live data as Server-Sent Events (the dashboard's and
// `deviceops top`'s one feed). See api/live_feed.h for the numbering and docs/openapi.yaml for
// the events: hello (not numbered), samples, event, reset; a keep-alive comment after 15 s.
#include <fmt/format.h>

#include "api/app.h"
#include "api/event_stream.h"
#include "api/live_feed.h"
#include "api/route_table.h"
#include "api/routes.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

struct Topics {
  bool samples = true;
  bool events = true;
};

Result<Topics> decodeTopics(const http::Request& request) {
  const auto text = request.queryParam("topics");
  if (!text) return Topics{};
  Topics topics{false, false};
  std::size_t start = 0;
  while (start <= text->size()) {
    std::size_t end = text->find(',', start);
    if (end == std::string::npos) end = text->size();
    const std::string topic = text->substr(start, end - start);
    if (topic == "samples") {
      topics.samples = true;
    } else if (topic == "events") {
      topics.events = true;
    } else {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("unknown topic '{}': topics is a comma-separated list of "
                                   "samples and events",
                                   topic),
                       {{"parameter", "topics"}});
    }
    start = end + 1;
  }
  return topics;
}

class LiveStream final : public http::ResponseStream {
 public:
  LiveStream(LiveFeed& feed, json hello, Topics topics, std::uint64_t after)
      : feed_(feed), hello_(std::move(hello)), topics_(topics), after_(after) {}

  std::optional<std::string> next(std::chrono::milliseconds wait) override {
    std::string out;
    if (!helloSent_) {
      helloSent_ = true;
      hello_["sequence"] = feed_.newest();
      out = "event: hello\ndata: " + hello_.dump() + "\n\n";
      if (after_ == 0) after_ = feed_.newest();
    }
    FeedRead read = feed_.read(after_, out.empty() ? wait : std::chrono::milliseconds(0));
    if (read.closed) return out.empty() ? std::nullopt : std::optional(out);
    after_ = read.cursor;
    if (read.reset) {  // numbered, so that the next reconnect resumes from here
      out += fmt::format("id: {}\nevent: reset\ndata: {}\n\n", read.cursor,
                         json{{"oldest", read.oldest}}.dump());
    }
    for (const FeedItem& item : read.items) {
      if (item.type == "samples" ? !topics_.samples : !topics_.events) continue;
      out += fmt::format("id: {}\nevent: {}\ndata: {}\n\n", item.sequence, item.type,
                         item.data.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    return withKeepAlive(std::move(out), lastWrite_);
  }

 private:
  LiveFeed& feed_;
  json hello_;
  const Topics topics_;
  std::uint64_t after_;
  bool helloSent_ = false;
  std::chrono::steady_clock::time_point lastWrite_ = std::chrono::steady_clock::now();
};

class StreamRoutes {
 public:
  StreamRoutes(LiveFeed& feed, json hello) : feed_(feed), hello_(std::move(hello)) {}

  Result<http::Reply> stream(http::Request& request) {
    ASSIGN_OR_RETURN(const Topics topics, decodeTopics(request));
    std::uint64_t after = lastEventId(request.header("last-event-id"));
    if (auto query = request.queryParam("lastEventId")) after = lastEventId(*query);
    return http::streamReply(std::make_shared<LiveStream>(feed_, hello_, topics, after),
                             "text/event-stream");
  }

 private:
  LiveFeed& feed_;
  const json hello_;
};

constexpr RouteSpec<StreamRoutes> kStreamRoutes[] = {
    {"GET", "/api/stream", &StreamRoutes::stream},
};

}  // namespace

void registerStreamUnavailable(http::Router& router, AppContext& context) {
  addUnavailableRoutes<StreamRoutes>(router, context.config, http::ErrorShape::kApi, kStreamRoutes,
                                     "the live feed is not running");
}

void registerStreamRoutes(http::Router& router, AppContext& context, LiveFeed& feed,
                          nlohmann::json hello) {
  addRoutes<StreamRoutes>(router, context.config, http::ErrorShape::kApi,
                          std::make_shared<StreamRoutes>(feed, std::move(hello)), kStreamRoutes);
}

}  // namespace deviceops::api
