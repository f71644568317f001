#include "common/time_format.h"

#include <gtest/gtest.h>

namespace deviceops {
namespace {

TEST(TimeFormatTest, ParsesRfc3339AndFormatsBack) {
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

}  // namespace
}  // namespace deviceops
