// Prometheus text for the model registry (internal to the registry): per-model request counts,
// latency and batch-size histograms, memory and loaded state. Pure functions over snapshots.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/prometheus.h"
#include "inference/registry.h"

namespace deviceops::inference {

// Upper bounds in seconds for the latency histograms: 100 us .. 10 s.
const std::vector<double>& latencyBucketBounds();
// A Histogram with latencyBucketBounds() and zeroed counts.
Histogram makeLatencyHistogram();

using prometheus::escapeLabelValue;

// Appends every deviceops_inference_* / deviceops_model_* family, with HELP and TYPE lines even
// when `models` is empty.
void writeRegistryMetrics(const std::vector<ModelInfo>& models, std::string& out);

}  // namespace deviceops::inference
