#include "api/telemetry_codec.h"

#include <gtest/gtest.h>

#include "common/time_format.h"

namespace deviceops::api {
namespace {

TEST(TelemetryCodecTest, ParsesDurationsAndSince) {
  EXPECT_EQ(*parseDurationText("90s"), std::chrono::seconds(90));
  EXPECT_EQ(*parseDurationText("15m"), std::chrono::minutes(15));
  EXPECT_EQ(*parseDurationText("24h"), std::chrono::hours(24));
  EXPECT_EQ(*parseDurationText("30d"), std::chrono::hours(720));
  for (const char* bad : {"", "h", "0h", "-1h", "1y", "1.5h", "1h30m", "401d", "99999999999999d"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parseDurationText(bad).ok());
  }
  const auto now = std::chrono::system_clock::now();
  EXPECT_EQ(*parseSince("1h", now), now - std::chrono::hours(1));
  EXPECT_EQ(formatIso8601(*parseSince("2026-01-01T00:00:00Z", now)), "2026-01-01T00:00:00.000Z");
  EXPECT_FALSE(parseSince("soon", now).ok());
}

TEST(TelemetryCodecTest, StatisticsNameTheirUnits) {
  telemetry::Statistics statistics;
  statistics.from = telemetry::fromMillis(0);
  statistics.to = telemetry::fromMillis(3'600'000);
  statistics.energyJoules = 7200;
  statistics.coveredSeconds = 1800;
  statistics.healthSeconds = {{"healthy", 1800}};
  const auto json = encodeStatistics(statistics);
  EXPECT_EQ(json["energy"]["joules"], 7200.0);
  EXPECT_EQ(json["energy"]["wattHours"], 2.0);
  EXPECT_EQ(json["coverageRatio"], 0.5);
  EXPECT_EQ(json["windowSeconds"], 3600.0);
  EXPECT_TRUE(json["temperatureCelsius"]["avg"].is_null());
}

}  // namespace
}  // namespace deviceops::api
