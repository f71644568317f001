#include "inference/registry_metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/prometheus.h"

namespace deviceops::inference {
namespace {

constexpr int kBatchBounds[] = {1, 2, 4, 8, 16, 32, 64, 128};

std::string modelLabels(const ModelInfo& model) {
  return prometheus::formatLabels({{"model", model.name}, {"version", model.version}});
}

// `labels` already formatted; one family's samples: buckets (cumulative), sum and count.
void writeHistogram(prometheus::TextWriter& out, std::string_view name, const std::string& labels,
                    const Histogram& histogram) {
  const std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < histogram.bounds.size(); ++i) {
    if (i < histogram.counts.size()) cumulative += histogram.counts[i];
    out.sample(bucket, labels + ",le=\"" + prometheus::formatValue(histogram.bounds[i]) + "\"",
               static_cast<double>(cumulative));
  }
  out.sample(bucket, labels + ",le=\"+Inf\"", static_cast<double>(histogram.count));
  out.sample(std::string(name) + "_sum", labels, histogram.sum);
  out.sample(std::string(name) + "_count", labels, static_cast<double>(histogram.count));
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

void writeRegistryMetrics(const std::vector<ModelInfo>& models, std::string& text) {
  prometheus::TextWriter out(text);
  out.family("deviceops_inference_requests_total", "counter",
             "Inference requests by model, version and outcome (success or failure).");
  for (const ModelInfo& model : models) {
    const std::string labels = modelLabels(model);
    out.sample("deviceops_inference_requests_total", labels + ",outcome=\"success\"",
               static_cast<double>(model.statistics.successCount));
    out.sample("deviceops_inference_requests_total", labels + ",outcome=\"failure\"",
               static_cast<double>(model.statistics.failureCount));
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
       "Time the model ran for the request's batch, in seconds.", &ModelStatistics::computeSeconds},
      {"deviceops_inference_request_seconds",
       "Time from the registry receiving the request to its result, in seconds.",
       &ModelStatistics::totalSeconds},
  };
  for (const auto& family : latencies) {
    out.family(family.name, "histogram", family.help);
    for (const ModelInfo& model : models) {
      writeHistogram(out, family.name, modelLabels(model), model.statistics.*family.member);
    }
  }
  out.family("deviceops_inference_batch_size", "histogram",
             "Requests that shared one model execution, per execution.");
  for (const ModelInfo& model : models) {
    writeHistogram(out, "deviceops_inference_batch_size", modelLabels(model),
                   batchHistogram(model.statistics.batchSizes));
  }
  out.family("deviceops_model_memory_bytes", "gauge",
             "Bytes charged to the memory ledger for the model, per device.");
  for (const ModelInfo& model : models) {
    for (const Placement& placement : model.placements) {
      out.sample(
          "deviceops_model_memory_bytes",
          {{"model", model.name}, {"version", model.version}, {"device", placement.deviceId}},
          static_cast<double>(placement.chargedBytes));
    }
  }
  out.family("deviceops_model_loaded", "gauge",
             "1 when the model is ready to serve on its devices, 0 when loading, unloading, "
             "failed or evicted.");
  for (const ModelInfo& model : models) {
    const bool loaded = model.state == ModelState::kReady && !model.evicted;
    out.sample("deviceops_model_loaded",
               {{"model", model.name},
                {"version", model.version},
                {"state", std::string(modelStateName(model.state))}},
               loaded ? 1.0 : 0.0);
  }
}

}  // namespace deviceops::inference
