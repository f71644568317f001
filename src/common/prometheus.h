// Prometheus text exposition format 0.0.4: the one writer of /metrics text, shared by the API's
// device, ledger and telemetry families and the inference registry's families.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace deviceops::prometheus {

using Labels = std::vector<std::pair<std::string, std::string>>;

// Label value escaping: backslash, double quote and newline.
std::string escapeLabelValue(std::string_view value);
// A sample value: "+Inf", "-Inf", "NaN" or the shortest decimal that reads back the same.
std::string formatValue(double value);
// `name="value",...` (escaped), without braces; "" for no labels.
std::string formatLabels(const Labels& labels);

// Appends to a string it does not own (the /metrics body). Not thread-safe: one per request.
class TextWriter {
 public:
  explicit TextWriter(std::string& out) : out_(out) {}
  // Starts a family: its "# HELP" and "# TYPE" lines.
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  // A sample whose labels are already formatted (formatLabels), e.g. histogram buckets.
  void sample(std::string_view name, std::string_view formattedLabels, double value);

 private:
  std::string& out_;
};

}  // namespace deviceops::prometheus
