#include "api/live_feed.h"

#include <gtest/gtest.h>

#include <thread>

namespace deviceops::api {
namespace {

using namespace std::chrono_literals;

// A sink that keeps what it is given (a test double of the telemetry store).
class RecordingSink final : public EventSink {
 public:
  void publish(Event event) override { types.push_back(event.type); }
  std::vector<std::string> types;
};

LiveFeed::EventEncoder byType() {
  return [](const Event& event) { return nlohmann::json{{"type", event.type}}; };
}

Event named(std::string type) {
  Event event;
  event.type = std::move(type);
  return event;
}

TEST(LiveFeedTest, NumbersItemsFromTheStartTimeAndForwardsEventsDownstream) {
  RecordingSink store;
  LiveFeed feed(byType());
  feed.setDownstream(&store);
  const std::uint64_t start = feed.newest();
  const auto nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
  EXPECT_NEAR(static_cast<double>(start), static_cast<double>(nowMs), 60'000.0);
  feed.publish(named("model.loaded"));
  feed.publishSamples({{"devices", nlohmann::json::array()}});
  feed.record(named("health.changed"));  // already bound for the store: not forwarded
  EXPECT_EQ(store.types, std::vector<std::string>{"model.loaded"});
  EXPECT_EQ(feed.newest(), start + 3);
  EXPECT_EQ(feed.published(), 3u);

  const FeedRead read = feed.read(start, 0ms);
  ASSERT_EQ(read.items.size(), 3u);
  EXPECT_FALSE(read.reset);
  EXPECT_EQ(read.items[0].sequence, start + 1);
  EXPECT_EQ(read.items[0].type, "event");
  EXPECT_EQ(read.items[0].data["type"], "model.loaded");
  EXPECT_EQ(read.items[1].type, "samples");
  EXPECT_EQ(read.items[2].data["type"], "health.changed");
  EXPECT_EQ(read.cursor, start + 3);
  // Resuming from the middle gets only what came after.
  const FeedRead resumed = feed.read(start + 2, 0ms);
  ASSERT_EQ(resumed.items.size(), 1u);
  EXPECT_EQ(resumed.items[0].sequence, start + 3);
}

TEST(LiveFeedTest, UnknownCursorsResetToNowWithoutReplaying) {
  LiveFeed feed(byType(), /*capacity=*/4);
  const std::uint64_t start = feed.newest();
  for (int i = 0; i < 10; ++i) feed.publish(named("e" + std::to_string(i)));
  // Older than the ring (it keeps the last 4 of 10).
  FeedRead old = feed.read(start + 2, 0ms);
  EXPECT_TRUE(old.reset);
  EXPECT_TRUE(old.items.empty());
  EXPECT_EQ(old.oldest, start + 7);
  EXPECT_EQ(old.cursor, start + 10);
  // The oldest kept item's predecessor is still a known cursor: no gap.
  FeedRead edge = feed.read(start + 6, 0ms);
  EXPECT_FALSE(edge.reset);
  EXPECT_EQ(edge.items.size(), 4u);
  // A number from the future (another daemon's) resets too.
  FeedRead future = feed.read(start + 1000, 0ms);
  EXPECT_TRUE(future.reset);
  EXPECT_TRUE(future.items.empty());
  EXPECT_EQ(future.cursor, start + 10);
}

TEST(LiveFeedTest, ReadWaitsForTheNextItemAndCloseEndsIt) {
  LiveFeed feed(byType());
  const std::uint64_t start = feed.newest();
  std::thread publisher([&] {
    std::this_thread::sleep_for(50ms);
    feed.publish(named("late"));
  });
  const FeedRead read = feed.read(start, 5s);
  publisher.join();
  ASSERT_EQ(read.items.size(), 1u);
  EXPECT_EQ(read.items[0].data["type"], "late");

  // Nothing new: the wait times out empty.
  const auto before = std::chrono::steady_clock::now();
  EXPECT_TRUE(feed.read(start + 1, 30ms).items.empty());
  EXPECT_GE(std::chrono::steady_clock::now() - before, 25ms);

  std::thread closer([&] {
    std::this_thread::sleep_for(50ms);
    feed.close();
  });
  const FeedRead closed = feed.read(start + 1, 10s);
  closer.join();
  EXPECT_TRUE(closed.closed);
}

}  // namespace
}  // namespace deviceops::api
