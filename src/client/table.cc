#include "client/table.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

namespace deviceops::client {
namespace {

constexpr std::size_t kSeparatorWidth = 2;
constexpr std::size_t kMaxKeyAlignment = 40;
constexpr std::string_view kEllipsis = "…";

bool isContinuationByte(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

std::string cellText(std::string_view text, std::size_t maxWidth) {
  if (text.empty()) return std::string(kAbsent);
  return truncateToWidth(text, maxWidth);
}

void appendPadded(std::string& line, std::string_view text, std::size_t width, Align align,
                  bool last) {
  const std::size_t padding = width - std::min(width, displayWidth(text));
  if (align == Align::kRight) line.append(padding, ' ');
  line.append(text);
  if (align == Align::kLeft && !last) line.append(padding, ' ');
}

void appendLine(std::string& out, std::string line) {
  while (!line.empty() && line.back() == ' ') line.pop_back();
  out += line;
  out += '\n';
}

}  // namespace

Table::Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

void Table::addRow(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::render() const {
  const std::size_t count = columns_.size();
  std::vector<std::string> headers(count);
  std::vector<std::vector<std::string>> rows(rows_.size(), std::vector<std::string>(count));
  std::vector<std::size_t> widths(count, 0);
  for (std::size_t column = 0; column < count; ++column) {
    const std::size_t maxWidth = columns_[column].maxWidth;
    headers[column] = truncateToWidth(columns_[column].header, maxWidth);
    widths[column] = displayWidth(headers[column]);
    for (std::size_t row = 0; row < rows_.size(); ++row) {
      rows[row][column] = cellText(rows_[row][column], maxWidth);
      widths[column] = std::max(widths[column], displayWidth(rows[row][column]));
    }
  }

  std::string out;
  auto renderLine = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (std::size_t column = 0; column < count; ++column) {
      if (column > 0) line.append(kSeparatorWidth, ' ');
      appendPadded(line, cells[column], widths[column], columns_[column].align,
                   column + 1 == count);
    }
    appendLine(out, std::move(line));
  };
  renderLine(headers);
  for (const auto& row : rows) renderLine(row);
  return out;
}

std::string renderKeyValues(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::size_t keyWidth = 0;
  for (const auto& [key, value] : entries) {
    const std::size_t width = displayWidth(key) + 1;  // with the ':'
    if (width <= kMaxKeyAlignment) keyWidth = std::max(keyWidth, width);
  }
  std::string out;
  for (const auto& [key, value] : entries) {
    std::string line = key + ":";
    line.append(keyWidth - std::min(keyWidth, displayWidth(line)) + 1, ' ');
    line += value.empty() ? std::string(kAbsent) : value;
    appendLine(out, std::move(line));
  }
  return out;
}

std::size_t displayWidth(std::string_view utf8) {
  return static_cast<std::size_t>(
      std::count_if(utf8.begin(), utf8.end(), [](char c) { return !isContinuationByte(c); }));
}

std::string truncateToWidth(std::string_view utf8, std::size_t maxWidth) {
  if (maxWidth == 0 || displayWidth(utf8) <= maxWidth) return std::string(utf8);
  // Keep maxWidth - 1 code points: cut before the start byte of code point number maxWidth.
  std::size_t kept = 0;
  std::size_t end = 0;
  for (; end < utf8.size(); ++end) {
    if (!isContinuationByte(utf8[end])) {
      if (kept == maxWidth - 1) break;
      ++kept;
    }
  }
  return std::string(utf8.substr(0, end)) + std::string(kEllipsis);
}

std::string formatBytes(std::uint64_t bytes) {
  static constexpr std::array<std::string_view, 7> kUnits = {"B",   "KiB", "MiB", "GiB",
                                                             "TiB", "PiB", "EiB"};
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes) / 1024.0;
  std::size_t unit = 1;
  while (value >= 1023.5 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  if (value < 99.95) return fmt::format("{:.1f} {}", value, kUnits[unit]);
  return fmt::format("{:.0f} {}", value, kUnits[unit]);
}

std::string formatBytes(std::optional<std::uint64_t> bytes) {
  return bytes ? formatBytes(*bytes) : std::string(kAbsent);
}

std::string formatRatio(std::optional<double> ratio) {
  if (!ratio || !std::isfinite(*ratio)) return std::string(kAbsent);
  return fmt::format("{}%", std::lround(*ratio * 100.0));
}

std::string formatCelsius(std::optional<double> celsius) {
  if (!celsius || !std::isfinite(*celsius)) return std::string(kAbsent);
  return fmt::format("{} °C", std::lround(*celsius));
}

}  // namespace deviceops::client
