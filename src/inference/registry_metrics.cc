#include "inference/registry_metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace deviceops::inference {
namespace {

constexpr int kBatchBounds[] = {1, 2, 4, 8, 16, 32, 64, 128};

std::string formatDouble(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  return fmt::format("{}", value);
}

std::string modelLabels(const ModelInfo& model) {
  return fmt::format("model=\"{}\",version=\"{}\"", escapeLabelValue(model.name),
                     escapeLabelValue(model.version));
}

void writeHeader(std::string& out, std::string_view name, std::string_view type,
                 std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void writeHistogram(std::string& out, std::string_view name, const std::string& labels,
                    const Histogram& histogram) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < histogram.bounds.size(); ++i) {
    if (i < histogram.counts.size()) cumulative += histogram.counts[i];
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"{}\"}} {}\n", name, labels,
                   formatDouble(histogram.bounds[i]), cumulative);
  }
  fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"+Inf\"}} {}\n", name, labels,
                 histogram.count);
  fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n", name, labels,
                 formatDouble(histogram.sum));
  fmt::format_to(std::back_inserter(out), "{}_count{{{}}} {}\n", name, labels, histogram.count);
}

Histogram batchHistogram(const std::map<int, std::uint64_t>& batchSizes) {
  Histogram histogram;
  histogram.bounds.assign(std::begin(kBatchBounds), std::end(kBatchBounds));
  histogram.counts.assign(histogram.bounds.size() + 1, 0);
  for (const auto& [size, executions] : batchSizes) {
    const auto bucket = std::lower_bound(histogram.bounds.begin(), histogram.bounds.end(),
                                         static_cast<double>(size));
    histogram.counts[static_cast<std::size_t>(bucket - histogram.bounds.begin())] += executions;
    histogram.sum += static_cast<double>(size) * static_cast<double>(executions);
    histogram.count += executions;
  }
  return histogram;
}

}  // namespace

void Histogram::observe(double value) {
  if (counts.size() != bounds.size() + 1) counts.assign(bounds.size() + 1, 0);
  const auto bucket = std::lower_bound(bounds.begin(), bounds.end(), value);
  ++counts[static_cast<std::size_t>(bucket - bounds.begin())];
  sum += value;
  ++count;
}

const std::vector<double>& latencyBucketBounds() {
  static const std::vector<double> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                              0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                              1,      2.5,     5,      10};
  return kBounds;
}

Histogram makeLatencyHistogram() {
  Histogram histogram;
  histogram.bounds = latencyBucketBounds();
  histogram.counts.assign(histogram.bounds.size() + 1, 0);
  return histogram;
}

std::string escapeLabelValue(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': escaped += "\\\\"; break;
      case '"': escaped += "\\\""; break;
      case '\n': escaped += "\\n"; break;
      default: escaped += c;
    }
  }
  return escaped;
}

void writeRegistryMetrics(const std::vector<ModelInfo>& models, std::string& out) {
  auto it = std::back_inserter(out);
  writeHeader(out, "deviceops_inference_requests_total", "counter",
              "Inference requests by model, version and outcome (success or failure).");
  for (const ModelInfo& model : models) {
    const std::string labels = modelLabels(model);
    fmt::format_to(it, "deviceops_inference_requests_total{{{},outcome=\"success\"}} {}\n",
                   labels, model.statistics.successCount);
    fmt::format_to(it, "deviceops_inference_requests_total{{{},outcome=\"failure\"}} {}\n",
                   labels, model.statistics.failureCount);
  }
  const struct {
    const char* name;
    const char* help;
    Histogram ModelStatistics::*member;
  } latencies[] = {
      {"deviceops_inference_queue_seconds",
       "Time from enqueue until an instance starts the request, in seconds.",
       &ModelStatistics::queueSeconds},
      {"deviceops_inference_compute_seconds",
       "Time the model ran for the request's batch, in seconds.",
       &ModelStatistics::computeSeconds},
      {"deviceops_inference_request_seconds",
       "Time from the registry receiving the request to its result, in seconds.",
       &ModelStatistics::totalSeconds},
  };
  for (const auto& family : latencies) {
    writeHeader(out, family.name, "histogram", family.help);
    for (const ModelInfo& model : models) {
      writeHistogram(out, family.name, modelLabels(model), model.statistics.*family.member);
    }
  }
  writeHeader(out, "deviceops_inference_batch_size", "histogram",
              "Requests that shared one model execution, per execution.");
  for (const ModelInfo& model : models) {
    writeHistogram(out, "deviceops_inference_batch_size", modelLabels(model),
                   batchHistogram(model.statistics.batchSizes));
  }
  writeHeader(out, "deviceops_model_memory_bytes", "gauge",
              "Bytes charged to the memory ledger for the model, per device.");
  for (const ModelInfo& model : models) {
    for (const Placement& placement : model.placements) {
      fmt::format_to(it, "deviceops_model_memory_bytes{{{},device=\"{}\"}} {}\n",
                     modelLabels(model), escapeLabelValue(placement.deviceId),
                     placement.chargedBytes);
    }
  }
  writeHeader(out, "deviceops_model_loaded", "gauge",
              "1 when the model is ready to serve on its devices, 0 when loading, unloading, "
              "failed or evicted.");
  for (const ModelInfo& model : models) {
    const bool loaded = model.state == ModelState::kReady && !model.evicted;
    fmt::format_to(it, "deviceops_model_loaded{{{},state=\"{}\"}} {}\n", modelLabels(model),
                   modelStateName(model.state), loaded ? 1 : 0);
  }
}

}  // namespace deviceops::inference
