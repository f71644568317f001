// Plain-text rendering for the CLI: aligned tables, key/value lists and value formatters.
//
// Widths are counted in Unicode code points of UTF-8 text ("°" and "…" are one column each);
// wide (East Asian) characters are not special-cased.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deviceops::client {

// Shown for a value the server did not report (null or absent).
inline constexpr std::string_view kAbsent = "-";

enum class Align { kLeft, kRight };

struct Column {
  std::string header;
  Align align = Align::kLeft;
  // Widest the column may get, in columns; 0 means no limit. Longer cells (and the header) are
  // cut to this width, their last column replaced by "…".
  std::size_t maxWidth = 0;
};

// A table rendered as a header line and one line per row. Each column is as wide as its widest
// cell (up to Column::maxWidth); columns are separated by two spaces; lines carry no trailing
// spaces. An empty cell renders as kAbsent.
class Table {
 public:
  explicit Table(std::vector<Column> columns);

  // cells[i] belongs to column i. Missing trailing cells render as kAbsent; cells beyond the
  // number of columns are dropped.
  void addRow(std::vector<std::string> cells);

  std::size_t rowCount() const { return rows_.size(); }

  // Every line ends in '\n'.
  std::string render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// Renders "key: value" lines with the values aligned one space after the longest key (keys
// longer than 40 columns do not widen the alignment). An empty value renders as kAbsent.
std::string renderKeyValues(const std::vector<std::pair<std::string, std::string>>& entries);

// Number of columns `utf8` occupies: its code points.
std::size_t displayWidth(std::string_view utf8);

// `utf8` unchanged if it fits in maxWidth columns, else its first maxWidth - 1 code points and
// "…". maxWidth 0 means no limit.
std::string truncateToWidth(std::string_view utf8, std::size_t maxWidth);

// Binary units: "0 B", "1023 B", "1.5 KiB", "16.0 GiB", "512 MiB". One decimal below 100 of a
// unit, none from 100 up; the unit is chosen so that the shown number stays below 1024.
std::string formatBytes(std::uint64_t bytes);
std::string formatBytes(std::optional<std::uint64_t> bytes);  // kAbsent when empty

// A 0..1 ratio as a whole percentage: 0.37 -> "37%". kAbsent when empty or not a number.
std::string formatRatio(std::optional<double> ratio);

// Degrees Celsius, rounded: 62.4 -> "62 °C". kAbsent when empty or not a number.
std::string formatCelsius(std::optional<double> celsius);

}  // namespace deviceops::client
