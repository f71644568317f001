#include "api/telemetry_codec.h"

#include <gtest/gtest.h>

#include "common/time_format.h"

namespace deviceops::api {
namespace {

TEST(TelemetryCodecTest, ParsesRfc3339) {
  struct Case {
    const char* text;
    const char* utc;  // formatIso8601 of the result; nullptr: rejected
  };
  const Case cases[] = {
      {"2026-11-27T10:00:00Z", "2026-11-27T10:00:00.000Z"},
      {"2026-11-27t10:00:00z", "2026-11-27T10:00:00.000Z"},
      {"2026-11-27 10:00:00Z", "2026-11-27T10:00:00.000Z"},
      {"2026-11-27T10:00:00.25Z", "2026-11-27T10:00:00.250Z"},
      {"2026-11-27T10:00:00.123456789Z", "2026-11-27T10:00:00.123Z"},
      {"2026-11-27T11:30:00+01:30", "2026-11-27T10:00:00.000Z"},
      {"2026-11-27T05:00:00-05:00", "2026-11-27T10:00:00.000Z"},
      {"2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z"},
      {"2026-02-29T00:00:00Z", nullptr},
      {"2026-11-27T10:00:00", nullptr},
      {"2026-11-27T10:00Z", nullptr},
      {"2026-11-27T24:00:00Z", nullptr},
      {"2026-11-27T10:00:00.Z", nullptr},
      {"2026-11-27T10:00:00+0100", nullptr},
      {"2999-01-01T00:00:00Z", nullptr},
      {"yesterday", nullptr},
      {"", nullptr},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    auto parsed = parseRfc3339(c.text);
    if (c.utc == nullptr) {
      ASSERT_FALSE(parsed.ok());
      EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    } else {
      ASSERT_TRUE(parsed.ok()) << parsed.error().message;
      EXPECT_EQ(formatIso8601(*parsed), c.utc);
    }
  }
}

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
