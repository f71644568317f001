#include "devices/text_parsing.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace deviceops::devices::text {
namespace {

// The one table for the millidegree parser the cpu (thermal zones, hwmon) and amd (hwmon)
// backends share.
TEST(TextParsingTest, MillidegreesCelsius) {
  const struct {
    std::string text;
    std::optional<double> celsius;
  } cases[] = {
      {"52000\n", 52.0},
      {"61500", 61.5},
      {"45500", 45.5},
      {"-5000\n", -5.0},
      {"0\n", 0.0},
      {"-273150\n", -273.15},
      {"-273151", std::nullopt},  // below absolute zero: a broken sensor
      {"-274000", std::nullopt},
      {"1000001", std::nullopt},  // above 1000 °C: a broken sensor
      {"2100000\n", std::nullopt},
      {"", std::nullopt},
      {"\n", std::nullopt},
      {"hot", std::nullopt},
      {"12ab\n", std::nullopt},
      {"1 2\n", std::nullopt},
      {"99999999999999999999", std::nullopt},
  };
  for (const auto& testCase : cases) {
    SCOPED_TRACE("\"" + testCase.text + "\"");
    EXPECT_EQ(parseMillidegreesCelsius(testCase.text), testCase.celsius);
  }
}

}  // namespace
}  // namespace deviceops::devices::text
