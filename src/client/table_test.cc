#include "client/table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace deviceops::client {
namespace {

constexpr std::uint64_t kKiB = 1024;
constexpr std::uint64_t kMiB = 1024 * kKiB;
constexpr std::uint64_t kGiB = 1024 * kMiB;

TEST(FormatBytesTest, PicksBinaryUnitsAndPrecision) {
  const std::vector<std::pair<std::uint64_t, std::string>> cases = {
      {0, "0 B"},
      {1, "1 B"},
      {1023, "1023 B"},
      {1024, "1.0 KiB"},
      {1536, "1.5 KiB"},
      {512 * kMiB, "512 MiB"},
      {100 * kMiB, "100 MiB"},
      {99 * kMiB, "99.0 MiB"},
      {16 * kGiB, "16.0 GiB"},
      {25'000'000'000, "23.3 GiB"},
      {kGiB - 1, "1.0 GiB"},  // would round to "1024 MiB"
      {1023 * kMiB, "1023 MiB"},
      {std::numeric_limits<std::uint64_t>::max(), "16.0 EiB"},
  };
  for (const auto& [bytes, text] : cases) {
    SCOPED_TRACE(bytes);
    EXPECT_EQ(formatBytes(bytes), text);
  }
  EXPECT_EQ(formatBytes(std::optional<std::uint64_t>()), "-");
  EXPECT_EQ(formatBytes(std::optional<std::uint64_t>(2048)), "2.0 KiB");
}

TEST(FormatRatioTest, RoundsToWholePercent) {
  const std::vector<std::pair<std::optional<double>, std::string>> cases = {
      {0.37, "37%"},  {0.0, "0%"},         {1.0, "100%"},       {0.996, "100%"},
      {0.123, "12%"}, {std::nullopt, "-"}, {std::nan(""), "-"},
  };
  for (const auto& [ratio, text] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(formatRatio(ratio), text);
  }
}

TEST(FormatCelsiusTest, RoundsToWholeDegrees) {
  const std::vector<std::pair<std::optional<double>, std::string>> cases = {
      {62.0, "62 °C"}, {62.4, "62 °C"},     {62.5, "63 °C"},
      {-5.2, "-5 °C"}, {std::nullopt, "-"}, {std::numeric_limits<double>::infinity(), "-"},
  };
  for (const auto& [celsius, text] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(formatCelsius(celsius), text);
  }
}

TEST(DisplayWidthTest, CountsCodePoints) {
  EXPECT_EQ(displayWidth(""), 0u);
  EXPECT_EQ(displayWidth("abc"), 3u);
  EXPECT_EQ(displayWidth("62 °C"), 5u);
  EXPECT_EQ(displayWidth("…"), 1u);
}

TEST(TruncateToWidthTest, CutsOnCodePointsAndAddsEllipsis) {
  const std::vector<std::tuple<std::string, std::size_t, std::string>> cases = {
      {"abcdef", 0, "abcdef"},  // no limit
      {"abcdef", 6, "abcdef"},
      {"abcdef", 5, "abcd…"},
      {"abcdef", 1, "…"},
      {"°°°°", 3, "°°…"},
      {"", 3, ""},
  };
  for (const auto& [text, width, expected] : cases) {
    SCOPED_TRACE(text + " " + std::to_string(width));
    EXPECT_EQ(truncateToWidth(text, width), expected);
  }
}

TEST(TableTest, AlignsColumnsWithoutTrailingSpaces) {
  Table table({{"ID"}, {"MEMORY", Align::kRight}, {"HEALTH"}});
  table.addRow({"cpu0", "1.0 GiB / 16.0 GiB", "healthy"});
  table.addRow({"gpu-3f2a9c1e0b7d", "512 MiB", "degraded"});
  EXPECT_EQ(table.render(),
            "ID                            MEMORY  HEALTH\n"
            "cpu0              1.0 GiB / 16.0 GiB  healthy\n"
            "gpu-3f2a9c1e0b7d             512 MiB  degraded\n");
  EXPECT_EQ(table.rowCount(), 2u);
}

TEST(TableTest, TruncatesToMaxWidthAndCountsMultibyteCharacters) {
  Table table({{"NAME", Align::kLeft, 8}, {"TEMP", Align::kRight}});
  table.addRow({"NVIDIA GeForce RTX 4090", "62 °C"});
  table.addRow({"short", "9 °C"});
  EXPECT_EQ(table.render(),
            "NAME       TEMP\n"
            "NVIDIA …  62 °C\n"
            "short      9 °C\n");
}

TEST(TableTest, RendersAbsentCellsAsDash) {
  Table table({{"A"}, {"B"}, {"C"}});
  table.addRow({"x", ""});                 // B empty, C missing
  table.addRow({"y", "z", "w", "extra"});  // extra cell dropped
  EXPECT_EQ(table.render(),
            "A  B  C\n"
            "x  -  -\n"
            "y  z  w\n");
}

TEST(TableTest, HeaderOnlyWhenEmpty) {
  Table table({{"ID"}, {"NAME"}});
  EXPECT_EQ(table.render(), "ID  NAME\n");
}

TEST(RenderKeyValuesTest, AlignsValuesAfterTheLongestKey) {
  EXPECT_EQ(renderKeyValues({{"id", "cpu0"}, {"memory.totalBytes", "16.0 GiB"}, {"uuid", ""}}),
            "id:                cpu0\n"
            "memory.totalBytes: 16.0 GiB\n"
            "uuid:              -\n");
}

TEST(RenderKeyValuesTest, VeryLongKeysDoNotWidenTheAlignment) {
  const std::string longKey(50, 'k');
  EXPECT_EQ(renderKeyValues({{"id", "x"}, {longKey, "y"}}), "id: x\n" + longKey + ": y\n");
}

}  // namespace
}  // namespace deviceops::client
