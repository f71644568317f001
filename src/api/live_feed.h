// LiveFeed: the daemon's live data for GET /api/stream — every event published by any component
// (it is the daemon's EventSink and forwards each event to the sink behind it, the telemetry
// store) and every sampling tick's device samples, numbered and kept in a bounded ring so that a
// client that reconnects with Last-Event-ID gets what it missed.
//
// Sequence numbers start at the daemon's start time in Unix milliseconds and grow by one per
// item, so the numbers of a restarted daemon are above the old ones (a client resuming across a
// restart gets a reset, never a silent gap).
//
// Thread-safety: every method may be called from any thread. publish() never blocks on I/O (the
// forwarded sink queues).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/events.h"
#include "devices/inventory.h"
#include "telemetry/sample.h"

namespace deviceops::api {

struct FeedItem {
  std::uint64_t sequence = 0;
  std::string type;  // "samples" | "event"
  nlohmann::json data;
};

struct FeedRead {
  std::vector<FeedItem> items;  // after the cursor, oldest first
  // Set when the cursor was not in the ring (older than its oldest item, or newer than its
  // newest: another daemon's number). Nothing old is replayed then: the reader reloads its
  // state (REST snapshots) and the items start from now.
  bool reset = false;
  std::uint64_t oldest = 0;  // the oldest kept item's number (0: none yet)
  std::uint64_t cursor = 0;  // the next read's `after`: the last item returned, or the start
  bool closed = false;       // close() was called: the stream should end
};

class LiveFeed final : public EventSink {
 public:
  using EventEncoder = std::function<nlohmann::json(const Event&)>;

  // `encode` turns an event into the JSON of /api/events items. `capacity` items are kept.
  LiveFeed(EventEncoder encode, std::size_t capacity = 2048);

  // The sink events are forwarded to (the telemetry store); null: none. Set before publishing
  // starts or from the same thread; the pointer must outlive the feed's use.
  void setDownstream(EventSink* downstream);

  void publish(Event event) override;
  // Adds an event to the feed only (it reached the store another way: the sampler's batch).
  void record(const Event& event);
  // One sampling tick: `data` is {"time", "devices": [...]}.
  void publishSamples(nlohmann::json data);

  // Items after `after` (0: from now on, nothing old), waiting at most `wait` for one to come.
  FeedRead read(std::uint64_t after, std::chrono::milliseconds wait);
  // The newest item's number (the first number minus one before any item).
  std::uint64_t newest() const;
  // Ends every read (closed = true) and every stream with it: called at shutdown.
  void close();

  std::uint64_t published() const;  // items published since start

 private:
  void append(std::string type, nlohmann::json data);

  const EventEncoder encode_;
  const std::size_t capacity_;
  const std::uint64_t first_;
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  std::deque<FeedItem> items_;
  std::uint64_t next_;
  bool closed_ = false;
  EventSink* downstream_ = nullptr;
};

// The daemon's encoders: an event as an /api/events item of `node`.
LiveFeed::EventEncoder liveEventEncoder(std::string node);
// One sampling tick into the feed: its samples as {"time", "devices": [items of
// /api/integration/health]} and the events it detected (already bound for the store).
void publishTick(LiveFeed& feed, const devices::Inventory& inventory,
                 const std::vector<telemetry::DeviceSample>& samples,
                 const std::vector<telemetry::StoredEvent>& events);

}  // namespace deviceops::api
