#include "api/live_feed.h"

#include "api/telemetry_codec.h"
#include "common/time_format.h"

namespace deviceops::api {
namespace {

std::uint64_t startNumber() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

}  // namespace

LiveFeed::LiveFeed(EventEncoder encode, std::size_t capacity)
    : encode_(std::move(encode)),
      capacity_(std::max<std::size_t>(1, capacity)),
      first_(startNumber()),
      next_(first_) {}

void LiveFeed::setDownstream(EventSink* downstream) {
  std::lock_guard lock(mutex_);
  downstream_ = downstream;
}

void LiveFeed::publish(Event event) {
  nlohmann::json data = encode_(event);
  EventSink* downstream = nullptr;
  {
    std::lock_guard lock(mutex_);
    downstream = downstream_;
  }
  if (downstream) downstream->publish(std::move(event));
  append("event", std::move(data));
}

void LiveFeed::record(const Event& event) { append("event", encode_(event)); }

void LiveFeed::publishSamples(nlohmann::json data) { append("samples", std::move(data)); }

void LiveFeed::append(std::string type, nlohmann::json data) {
  {
    std::lock_guard lock(mutex_);
    items_.push_back({next_++, std::move(type), std::move(data)});
    while (items_.size() > capacity_) items_.pop_front();
  }
  changed_.notify_all();
}

FeedRead LiveFeed::read(std::uint64_t after, std::chrono::milliseconds wait) {
  std::unique_lock lock(mutex_);
  const auto hasNew = [&] {
    return closed_ || (!items_.empty() && items_.back().sequence > after);
  };
  FeedRead out;
  // A cursor that this feed never gave out (too old, or another daemon's, above ours).
  const bool unknown =
      after != 0 && (after >= next_ || (!items_.empty() && after + 1 < items_.front().sequence) ||
                     (items_.empty() && after + 1 < first_));
  if (unknown) {
    out.reset = true;
    after = next_ - 1;
  } else if (after == 0) {
    after = next_ - 1;
  }
  if (!out.reset) changed_.wait_for(lock, wait, hasNew);
  out.closed = closed_;
  out.oldest = items_.empty() ? 0 : items_.front().sequence;
  out.cursor = after;
  for (const FeedItem& item : items_) {
    if (item.sequence > after) {
      out.items.push_back(item);
      out.cursor = item.sequence;
    }
  }
  return out;
}

std::uint64_t LiveFeed::newest() const {
  std::lock_guard lock(mutex_);
  return next_ - 1;
}

std::uint64_t LiveFeed::published() const {
  std::lock_guard lock(mutex_);
  return next_ - first_;
}

void LiveFeed::close() {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  changed_.notify_all();
}

LiveFeed::EventEncoder liveEventEncoder(std::string node) {
  return [node = std::move(node)](const Event& event) {
    nlohmann::json item = encodeStoredEvent(telemetry::StoredEvent{0, node, event});
    item.erase("id");  // the store's row id is not known here; the feed numbers it
    return item;
  };
}

void publishTick(LiveFeed& feed, const devices::Inventory& inventory,
                 const std::vector<telemetry::DeviceSample>& samples,
                 const std::vector<telemetry::StoredEvent>& events) {
  const auto now = std::chrono::system_clock::now();
  auto snapshot = inventory.snapshot();
  nlohmann::json devices = nlohmann::json::array();
  for (const telemetry::DeviceSample& sample : samples) {
    std::string name, vendor;
    if (const devices::DeviceView* view = snapshot->find(sample.deviceId)) {
      name = view->record.name;
      vendor = view->record.vendor;
    }
    devices.push_back(encodeLatestSample(sample, name, vendor, now, sample.stale));
  }
  feed.publishSamples({{"time", formatIso8601(now)}, {"devices", std::move(devices)}});
  for (const telemetry::StoredEvent& event : events) feed.record(event.event);
}

}  // namespace deviceops::api
