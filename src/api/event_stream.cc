#include "api/event_stream.h"

#include <fmt/format.h>

#include <charconv>

namespace deviceops::api {

std::optional<std::string> JobEventStream::next(std::chrono::milliseconds wait) {
  if (!snapshotSent_) {
    snapshotSent_ = true;
    std::optional<nlohmann::json> snapshot = snapshot_();
    if (!snapshot) return std::nullopt;
    return "event: snapshot\ndata: " + snapshot->dump() + "\n\n";
  }
  if (ended_) return std::nullopt;
  std::optional<StreamedBatch> batch = fetch_(after_, wait);
  if (!batch) return std::nullopt;
  std::string out;
  for (const StreamedEvent& event : batch->events) {
    out += fmt::format("id: {}\nevent: {}\ndata: {}\n\n", event.sequence, event.type,
                       event.data.dump());
    after_ = event.sequence;
  }
  if (batch->ended) {
    ended_ = true;
    out += "event: end\ndata: {}\n\n";
  }
  return withKeepAlive(std::move(out), lastWrite_);
}

std::string withKeepAlive(std::string out, std::chrono::steady_clock::time_point& lastWrite) {
  const auto now = std::chrono::steady_clock::now();
  if (!out.empty()) {
    lastWrite = now;
  } else if (now - lastWrite > std::chrono::seconds(15)) {
    lastWrite = now;
    out = ": keep-alive\n\n";
  }
  return out;
}

std::uint64_t lastEventId(std::string_view header) {
  std::uint64_t after = 0;
  if (!header.empty()) std::from_chars(header.data(), header.data() + header.size(), after);
  return after;
}

}  // namespace deviceops::api
