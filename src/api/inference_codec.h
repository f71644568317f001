// JSON for /api/inference and the KServe v2 metadata, statistics and repository endpoints
// (shapes in docs/openapi.yaml). Tensor data itself is encoded by tensor/kserve_codec.h.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"
#include "inference/registry.h"

namespace deviceops::api {

// POST /api/inference/model/load as JSON: {path, name?, version?, devices?, replicas?, provider?,
// instances?, maxQueue?, batching?{enabled?, maxBatchSize?, maxQueueDelayMicros?},
// sessionOptions?{graphOptimizationLevel, intraOpThreads, interOpThreads, cpuArena,
// memoryPattern}, persist?, pinned?, keepAliveSeconds?}. Unknown keys, wrong types and
// out-of-range values are kInvalidArgument naming the field. `requirePath` is false for uploads.
// instances and maxQueue not given stay 0: the registry applies its defaults (RegistryOptions).
Result<inference::LoadRequest> decodeLoadRequest(const nlohmann::json& body,
                                                 bool requirePath = true);
// The same options as query parameters of a raw upload (Content-Type application/octet-stream):
// name, version, devices (comma-separated; `device` too), replicas, provider, instances,
// maxQueue, maxBatchSize and maxQueueDelayMicros (enable batching), graphOptimizationLevel,
// intraOpThreads, interOpThreads, cpuArena, memoryPattern, persist, pinned, keepAliveSeconds.
Result<inference::LoadRequest> decodeLoadQuery(const std::map<std::string, std::string>& query);

nlohmann::json encodeModelInfo(const inference::ModelInfo& model);
nlohmann::json encodeUnloadResult(const inference::UnloadResult& result);
// GET /api/inference/sessions: per model and placement, with latency histograms.
nlohmann::json encodeSessions(const std::vector<inference::ModelInfo>& models);

// ---- KServe v2 / Triton shapes ----

// Triton's state names: READY, LOADING, UNLOADING, UNAVAILABLE.
std::string_view tritonState(const inference::ModelInfo& model, bool autoReload);
// GET /v2/models/{m}[/versions/{v}]: {name, versions, platform, inputs, outputs}.
nlohmann::json encodeV2ModelMetadata(const inference::ModelInfo& model,
                                     const std::vector<std::string>& versions);
// One entry of model_stats[] (Triton's statistics extension).
nlohmann::json encodeV2ModelStatistics(const inference::ModelInfo& model);

}  // namespace deviceops::api
