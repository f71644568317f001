#include "common/prometheus.h"

#include <fmt/format.h>

#include <cmath>
#include <iterator>

namespace deviceops::prometheus {

std::string escapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string formatValue(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  return fmt::format("{}", value);
}

std::string formatLabels(const Labels& labels) {
  std::string out;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{}{}=\"{}\"", i == 0 ? "" : ",", labels[i].first,
                   escapeLabelValue(labels[i].second));
  }
  return out;
}

void TextWriter::family(std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void TextWriter::sample(std::string_view name, const Labels& labels, double value) {
  sample(name, formatLabels(labels), value);
}

void TextWriter::sample(std::string_view name, std::string_view formattedLabels, double value) {
  if (formattedLabels.empty()) {
    fmt::format_to(std::back_inserter(out_), "{} {}\n", name, formatValue(value));
  } else {
    fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, formattedLabels,
                   formatValue(value));
  }
}

}  // namespace deviceops::prometheus
