// Server-Sent Events of one job (training and generation jobs share the shape): an
// "event: snapshot" with the job first, then every event after `after` as
// "id: N\nevent: TYPE\ndata: JSON", "event: end" once the job has ended and every event was sent,
// and a ": keep-alive" comment after 15 s of silence. Resuming with Last-Event-ID passes `after`.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace deviceops::api {

struct StreamedEvent {
  std::uint64_t sequence = 0;
  std::string type;
  nlohmann::json data;
};

struct StreamedBatch {
  std::vector<StreamedEvent> events;
  bool ended = false;
};

// A job's batch of events ({sequence, type, data} each, and `ended`) in the stream's form.
template <class Batch>
StreamedBatch toStreamedBatch(const Batch& batch) {
  StreamedBatch out;
  for (const auto& event : batch.events)
    out.events.push_back({event.sequence, event.type, event.data});
  out.ended = batch.ended;
  return out;
}

class JobEventStream final : public http::ResponseStream {
 public:
  // nullopt from either function ends the stream (the job is gone).
  using Snapshot = std::function<std::optional<nlohmann::json>()>;
  using Fetch =
      std::function<std::optional<StreamedBatch>(std::uint64_t after, std::chrono::milliseconds)>;

  JobEventStream(Snapshot snapshot, Fetch fetch, std::uint64_t after)
      : snapshot_(std::move(snapshot)), fetch_(std::move(fetch)), after_(after) {}

  std::optional<std::string> next(std::chrono::milliseconds wait) override;

 private:
  Snapshot snapshot_;
  Fetch fetch_;
  std::uint64_t after_;
  bool snapshotSent_ = false;
  bool ended_ = false;
  std::chrono::steady_clock::time_point lastWrite_ = std::chrono::steady_clock::now();
};

// The SSE keep-alive rule of every stream: a stream that wrote nothing for 15 s sends a comment
// (so proxies and clients see the connection alive). Returns `out`, or the comment when `out` is
// empty and the silence is long enough; `lastWrite` is when the stream last wrote.
std::string withKeepAlive(std::string out, std::chrono::steady_clock::time_point& lastWrite);

// The Last-Event-ID header as a sequence number (0 when absent or not a number).
std::uint64_t lastEventId(std::string_view header);

}  // namespace deviceops::api
