// followEventStream: the one follower of a daemon job's Server-Sent Events for the CLI commands
// that wait on jobs (generate, test, bench).
#include <fmt/format.h>

#include <algorithm>

#include "client/cli_commands.h"

namespace deviceops::client {
namespace {

// The server sends a keep-alive comment every 15 s while a job is quiet (loading a model).
constexpr std::chrono::seconds kEventIdleTimeout{60};
// Reconnections (with Last-Event-ID) after the event stream broke off before its end.
constexpr int kMaxReconnects = 5;

}  // namespace

Result<bool> followEventStream(CliSession& session, const std::string& target,
                               const std::string& endedEarly,
                               const std::function<void(const ServerSentEvent&)>& onEvent,
                               const std::function<bool()>& stopRequested) {
  const auto stop = [&] { return stopRequested && stopRequested(); };
  std::string lastId;
  const auto idleTimeout =
      std::max<std::chrono::milliseconds>(kEventIdleTimeout, session.client().timeout());
  for (int attempt = 0;; ++attempt) {
    if (stop()) return false;
    EventStreamParser parser;
    bool ended = false;
    bool received = false;
    std::vector<std::pair<std::string, std::string>> headers;
    if (!lastId.empty()) headers.emplace_back("Last-Event-ID", lastId);
    auto response = session.client().stream(
        target,
        [&](std::string_view piece) {
          received = true;
          if (stop()) return false;
          for (const ServerSentEvent& event : parser.feed(piece)) {
            if (event.type == "end") {
              ended = true;
              return false;
            }
            if (!event.id.empty()) lastId = event.id;
            onEvent(event);
          }
          return true;
        },
        headers, idleTimeout,
        stopRequested ? std::function<bool()>([&] { return !stop(); }) : std::function<bool()>());
    if (response && (response->status < 200 || response->status >= 300)) {
      return answerError(*response);
    }
    if (ended) return true;
    if (stop()) return false;
    if (attempt >= kMaxReconnects || (!response && !received)) {
      if (!response) return response.error();
      return makeError(ErrorCode::kUnavailable, endedEarly);
    }
  }
}

}  // namespace deviceops::client
