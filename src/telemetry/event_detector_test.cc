#include "telemetry/event_detector.h"

#include <gtest/gtest.h>

#include "telemetry/testing/store_fixture.h"

namespace deviceops::telemetry {
namespace {

using testing::makeSample;

std::vector<std::string> types(const std::vector<Event>& events) {
  std::vector<std::string> names;
  for (const Event& event : events) names.push_back(event.type);
  return names;
}

TEST(EventDetectorTest, FirstTickIsTheBaseline) {
  EventDetector detector;
  EXPECT_TRUE(detector.observe({makeSample("n", "a", 0, 50, 1, "critical", true)}).empty());
}

TEST(EventDetectorTest, HealthTransitionsAndThrottling) {
  EventDetector detector;
  detector.observe({makeSample("n", "a", 0, 50, 1)});
  auto events = detector.observe({makeSample("n", "a", 1000, 50, 1, "degraded", true)});
  EXPECT_EQ(types(events), (std::vector<std::string>{"health.changed", "throttling.started"}));
  EXPECT_EQ(events[0].details["from"], "healthy");
  EXPECT_EQ(events[0].details["to"], "degraded");
  EXPECT_EQ(events[0].severity, "warning");
  EXPECT_EQ(events[0].deviceId, "a");
  EXPECT_EQ(toMillis(events[0].time), 1000);
  EXPECT_TRUE(detector.observe({makeSample("n", "a", 2000, 50, 1, "degraded", true)}).empty());
  events = detector.observe({makeSample("n", "a", 3000, 50, 1, "lost", false)});
  EXPECT_EQ(types(events), (std::vector<std::string>{"health.changed", "throttling.stopped"}));
  EXPECT_EQ(events[0].severity, "error");
}

TEST(EventDetectorTest, EccAndXidCounterChanges) {
  EventDetector detector;
  DeviceSample before = makeSample("n", "a", 0, 50, 1);
  before.eccSingleBitErrors = 3;
  before.eccDoubleBitErrors = 0;
  before.xidErrors = 1;
  detector.observe({before});
  DeviceSample after = before;
  after.time = fromMillis(1000);
  after.eccSingleBitErrors = 5;
  after.xidErrors = 2;
  auto events = detector.observe({after});
  ASSERT_EQ(types(events), (std::vector<std::string>{"ecc.errors", "xid.errors"}));
  EXPECT_EQ(events[0].details["increase"], 2);
  EXPECT_EQ(events[0].severity, "warning");
  EXPECT_EQ(events[1].details["current"], 2);
  DeviceSample reset = after;
  reset.time = fromMillis(2000);
  reset.eccSingleBitErrors = 0;  // driver reload
  events = detector.observe({reset});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].details["reset"], true);
}

TEST(EventDetectorTest, DevicesAppearingAndDisappearing) {
  EventDetector detector;
  detector.observe({makeSample("n", "a", 0, 50, 1)});
  auto events =
      detector.observe({makeSample("n", "a", 1000, 50, 1), makeSample("n", "b", 1000, 50, 1)});
  EXPECT_EQ(types(events), (std::vector<std::string>{"device.appeared"}));
  events = detector.observe({makeSample("n", "b", 2000, 50, 1)});
  ASSERT_EQ(types(events), (std::vector<std::string>{"device.disappeared"}));
  EXPECT_EQ(events[0].deviceId, "a");
}

}  // namespace
}  // namespace deviceops::telemetry
