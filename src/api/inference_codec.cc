#include "api/inference_codec.h"

#include <fmt/format.h>

#include <set>

#include "common/time_format.h"

namespace deviceops::api {
namespace {

using inference::ModelInfo;
using nlohmann::json;

Error fieldError(const std::string& field, const std::string& expected) {
  return makeError(ErrorCode::kInvalidArgument, fmt::format("'{}' must be {}", field, expected),
                   {{"field", field}});
}

Status checkKeys(const json& object, const std::string& prefix,
                 const std::set<std::string>& known) {
  for (const auto& [key, value] : object.items()) {
    if (known.count(key) == 0) {
      std::string list;
      for (const std::string& name : known) list += (list.empty() ? "" : ", ") + name;
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("unknown field '{}{}'; expected {}", prefix, key, list),
                       {{"field", prefix + key}});
    }
  }
  return {};
}

// An integer field within [min, max]; absent leaves `out` unchanged.
Status readInteger(const json& object, const std::string& key, const std::string& field,
                   std::int64_t min, std::int64_t max, std::int64_t& out) {
  const auto it = object.find(key);
  if (it == object.end()) return {};
  if (!it->is_number_integer() || it->get<std::int64_t>() < min || it->get<std::int64_t>() > max ||
      (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(max))) {
    return fieldError(field, fmt::format("an integer from {} to {}", min, max));
  }
  out = it->get<std::int64_t>();
  return {};
}

Status readBool(const json& object, const std::string& key, const std::string& field, bool& out) {
  const auto it = object.find(key);
  if (it == object.end()) return {};
  if (!it->is_boolean()) return fieldError(field, "true or false");
  out = it->get<bool>();
  return {};
}

json timeOrNull(const std::optional<inference::SystemTime>& time) {
  return time ? json(formatIso8601(*time)) : json(nullptr);
}

json encodeSpecs(const std::vector<inference::TensorSpec>& specs) {
  json list = json::array();
  for (const auto& spec : specs) {
    list.push_back({{"name", spec.name},
                    {"datatype", inference::dataTypeName(spec.type)},
                    {"shape", spec.shape}});
  }
  return list;
}

json encodeHistogram(const inference::Histogram& histogram) {
  return {{"bounds", histogram.bounds},
          {"counts", histogram.counts},
          {"sum", histogram.sum},
          {"count", histogram.count}};
}

double milliseconds(std::chrono::nanoseconds duration) {
  return std::chrono::duration<double, std::milli>(duration).count();
}

json encodeStatistics(const inference::ModelStatistics& statistics) {
  json batchSizes = json::object();
  for (const auto& [size, count] : statistics.batchSizes) batchSizes[std::to_string(size)] = count;
  return {{"successCount", statistics.successCount},
          {"failureCount", statistics.failureCount},
          {"inferenceCount", statistics.inferenceCount},
          {"executionCount", statistics.executionCount},
          {"queueMsTotal", milliseconds(statistics.queueTotal)},
          {"computeMsTotal", milliseconds(statistics.computeTotal)},
          {"requestMsTotal", milliseconds(statistics.requestTotal)},
          {"lastInferenceAt", timeOrNull(statistics.lastInference)}};
}

json durationStat(std::uint64_t count, std::chrono::nanoseconds total) {
  return {{"count", count},
          {"ns", static_cast<std::uint64_t>(std::max<std::int64_t>(0, total.count()))}};
}

}  // namespace

Result<inference::LoadRequest> decodeLoadRequest(const json& body, bool requirePath) {
  static const std::set<std::string> kKnown = {
      "path",     "name",      "version",         "devices",  "replicas",
      "provider", "instances", "maxQueue",        "batching", "sessionOptions",
      "persist",  "pinned",    "keepAliveSeconds"};
  if (Status keys = checkKeys(body, "", kKnown); !keys.ok()) return keys.error();
  inference::LoadRequest request;
  request.runner.instances = 0;  // unset: RegistryOptions::defaultInstances
  request.runner.maxQueue = 0;   // unset: RegistryOptions::maxQueue
  if (requirePath) {
    if (!body.contains("path") || !body["path"].is_string() ||
        body["path"].get_ref<const std::string&>().empty()) {
      return fieldError("path", "the model file's path, inside one of the configured model roots");
    }
    request.path = body["path"].get<std::string>();
  } else if (body.contains("path")) {
    return fieldError("path", "absent for an upload (the body is the model)");
  }
  if (body.contains("name")) {
    const json& name = body["name"];
    if (!name.is_string() || name.get_ref<const std::string&>().empty() ||
        name.get_ref<const std::string&>().size() > 128 ||
        name.get_ref<const std::string&>().find('/') != std::string::npos) {
      return fieldError("name", "a non-empty string of at most 128 bytes without '/'");
    }
    request.name = name.get<std::string>();
  }
  if (body.contains("version")) {
    const json& version = body["version"];
    if (version.is_number_unsigned()) {
      request.version = std::to_string(version.get<std::uint64_t>());
    } else if (version.is_string() && !version.get_ref<const std::string&>().empty() &&
               version.get_ref<const std::string&>().size() <= 64 &&
               version.get_ref<const std::string&>().find('/') == std::string::npos) {
      request.version = version.get<std::string>();
    } else {
      return fieldError("version", "a non-empty string (or a non-negative integer) without '/'");
    }
  }
  if (body.contains("devices")) {
    const json& devices = body["devices"];
    if (!devices.is_array()) return fieldError("devices", "an array of device ids");
    for (const json& device : devices) {
      if (!device.is_string() || device.get_ref<const std::string&>().empty()) {
        return fieldError("devices", "an array of device ids from GET /api/device");
      }
      request.devices.push_back(device.get<std::string>());
    }
  }
  std::int64_t replicas = request.replicas;
  std::int64_t instances = request.runner.instances;
  std::int64_t maxQueue = static_cast<std::int64_t>(request.runner.maxQueue);
  for (const Status& status : {readInteger(body, "replicas", "replicas", 1, 64, replicas),
                               readInteger(body, "instances", "instances", 1, 64, instances),
                               readInteger(body, "maxQueue", "maxQueue", 1, 1'000'000, maxQueue)}) {
    if (!status.ok()) return status.error();
  }
  request.replicas = static_cast<int>(replicas);
  request.runner.instances = static_cast<int>(instances);
  request.runner.maxQueue = static_cast<std::size_t>(maxQueue);
  if (body.contains("provider")) {
    const json& provider = body["provider"];
    std::optional<inference::Provider> parsed;
    if (provider.is_string()) parsed = inference::parseProvider(provider.get<std::string>());
    if (!parsed) return fieldError("provider", "one of cpu, cuda, rocm, migraphx, openvino");
    request.runner.session.provider = *parsed;
  }
  if (body.contains("batching")) {
    const json& batching = body["batching"];
    if (!batching.is_object()) {
      return fieldError("batching", "an object {enabled, maxBatchSize, maxQueueDelayMicros}");
    }
    if (Status keys =
            checkKeys(batching, "batching.", {"enabled", "maxBatchSize", "maxQueueDelayMicros"});
        !keys.ok()) {
      return keys.error();
    }
    request.runner.batching.enabled = true;
    std::int64_t maxBatch = request.runner.batching.maxBatchSize;
    std::int64_t delay = request.runner.batching.maxQueueDelay.count();
    for (const Status& status :
         {readBool(batching, "enabled", "batching.enabled", request.runner.batching.enabled),
          readInteger(batching, "maxBatchSize", "batching.maxBatchSize", 1, 4096, maxBatch),
          readInteger(batching, "maxQueueDelayMicros", "batching.maxQueueDelayMicros", 0,
                      10'000'000, delay)}) {
      if (!status.ok()) return status.error();
    }
    request.runner.batching.maxBatchSize = static_cast<int>(maxBatch);
    request.runner.batching.maxQueueDelay = std::chrono::microseconds(delay);
  }
  if (body.contains("sessionOptions")) {
    const json& options = body["sessionOptions"];
    if (!options.is_object()) return fieldError("sessionOptions", "an object");
    if (Status keys = checkKeys(options, "sessionOptions.",
                                {"graphOptimizationLevel", "intraOpThreads", "interOpThreads",
                                 "cpuArena", "memoryPattern"});
        !keys.ok()) {
      return keys.error();
    }
    inference::SessionOptions& session = request.runner.session;
    std::int64_t level = session.graphOptimizationLevel;
    std::int64_t intra = session.intraOpThreads;
    std::int64_t inter = session.interOpThreads;
    for (const Status& status :
         {readInteger(options, "graphOptimizationLevel", "sessionOptions.graphOptimizationLevel", 0,
                      99, level),
          readInteger(options, "intraOpThreads", "sessionOptions.intraOpThreads", 0, 1024, intra),
          readInteger(options, "interOpThreads", "sessionOptions.interOpThreads", 0, 1024, inter),
          readBool(options, "cpuArena", "sessionOptions.cpuArena", session.cpuArena),
          readBool(options, "memoryPattern", "sessionOptions.memoryPattern",
                   session.memoryPattern)}) {
      if (!status.ok()) return status.error();
    }
    if (level != 0 && level != 1 && level != 2 && level != 99) {
      return fieldError("sessionOptions.graphOptimizationLevel",
                        "0 (disabled), 1 (basic), 2 (extended) or 99 (all)");
    }
    session.graphOptimizationLevel = static_cast<int>(level);
    session.intraOpThreads = static_cast<int>(intra);
    session.interOpThreads = static_cast<int>(inter);
  }
  for (const Status& status : {readBool(body, "persist", "persist", request.persist),
                               readBool(body, "pinned", "pinned", request.pinned)}) {
    if (!status.ok()) return status.error();
  }
  if (body.contains("keepAliveSeconds")) {
    std::int64_t seconds = 0;
    if (Status status = readInteger(body, "keepAliveSeconds", "keepAliveSeconds", 0,
                                    100ll * 365 * 24 * 3600, seconds);
        !status.ok()) {
      return status.error();
    }
    request.keepAlive = std::chrono::seconds(seconds);
  }
  return request;
}

Result<inference::LoadRequest> decodeLoadQuery(const std::map<std::string, std::string>& query) {
  static const std::set<std::string> kIntegers = {
      "replicas",       "instances",           "maxQueue",
      "maxBatchSize",   "maxQueueDelayMicros", "graphOptimizationLevel",
      "intraOpThreads", "interOpThreads",      "keepAliveSeconds"};
  static const std::set<std::string> kBooleans = {"cpuArena", "memoryPattern", "persist", "pinned"};
  json body = json::object();
  for (const auto& [key, text] : query) {
    json value;
    if (kIntegers.count(key) != 0) {
      if (text.empty() || text.size() > 18 || text.find_first_not_of("0123456789") != text.npos) {
        return fieldError(key, "a non-negative integer");
      }
      value = std::stoll(text);
    } else if (kBooleans.count(key) != 0) {
      if (text != "true" && text != "false" && text != "1" && text != "0") {
        return fieldError(key, "true or false");
      }
      value = text == "true" || text == "1";
    } else if (key == "devices" || key == "device") {
      json& devices = body["devices"];
      if (devices.is_null()) devices = json::array();
      std::size_t start = 0;
      while (start <= text.size()) {
        const std::size_t comma = std::min(text.find(',', start), text.size());
        devices.push_back(text.substr(start, comma - start));
        start = comma + 1;
      }
      continue;
    } else {
      value = text;
    }
    if (key == "maxBatchSize" || key == "maxQueueDelayMicros") {
      body["batching"][key] = value;
    } else if (key == "graphOptimizationLevel" || key == "intraOpThreads" ||
               key == "interOpThreads" || key == "cpuArena" || key == "memoryPattern") {
      body["sessionOptions"][key] = value;
    } else {
      body[key] = value;
    }
  }
  return decodeLoadRequest(body, /*requirePath=*/false);
}

json encodeModelInfo(const ModelInfo& model) {
  json placements = json::array();
  std::uint64_t charged = 0;
  for (const auto& placement : model.placements) {
    placements.push_back({{"deviceId", placement.deviceId},
                          {"provider", placement.provider},
                          {"instances", placement.instances},
                          {"chargedBytes", placement.chargedBytes},
                          {"allocationId", placement.allocationId}});
    charged += placement.chargedBytes;
  }
  const inference::RunnerOptions& runner = model.runner;
  return {{"id", model.id},
          {"name", model.name},
          {"version", model.version},
          {"path", model.path},
          {"sha256", model.sha256},
          {"sizeBytes", model.sizeBytes},
          {"opset", model.metadata.opset},
          {"producer", model.metadata.producer},
          {"inputs", encodeSpecs(model.metadata.inputs)},
          {"outputs", encodeSpecs(model.metadata.outputs)},
          {"state", inference::modelStateName(model.state)},
          {"stateReason", model.stateReason.empty() ? json(nullptr) : json(model.stateReason)},
          {"evicted", model.evicted},
          {"pinned", model.pinned},
          {"persist", model.persist},
          {"keepAliveSeconds", model.keepAlive ? json(model.keepAlive->count()) : json(nullptr)},
          {"provider", inference::providerName(runner.session.provider)},
          {"instances", runner.instances},
          {"maxQueue", runner.maxQueue},
          {"batching",
           {{"enabled", runner.batching.enabled},
            {"maxBatchSize", runner.batching.maxBatchSize},
            {"maxQueueDelayMicros", runner.batching.maxQueueDelay.count()}}},
          {"sessionOptions",
           {{"graphOptimizationLevel", runner.session.graphOptimizationLevel},
            {"intraOpThreads", runner.session.intraOpThreads},
            {"interOpThreads", runner.session.interOpThreads},
            {"cpuArena", runner.session.cpuArena},
            {"memoryPattern", runner.session.memoryPattern}}},
          {"placements", placements},
          {"chargedBytes", charged},
          {"loadedAt", formatIso8601(model.loadedAt)},
          {"lastUsedAt", timeOrNull(model.lastUsed)},
          {"inFlight", model.inFlight},
          {"holds", model.holds},
          {"statistics", encodeStatistics(model.statistics)}};
}

json encodeUnloadResult(const inference::UnloadResult& result) {
  json body = encodeModelInfo(result.model);
  body["releasedBytes"] = result.releasedBytes;
  body["chargedBytes"] = result.chargedBytes;
  return body;
}

json encodeSessions(const std::vector<ModelInfo>& models) {
  json sessions = json::array();
  for (const ModelInfo& model : models) {
    json placements = json::array();
    for (const auto& placement : model.placements) {
      placements.push_back({{"deviceId", placement.deviceId},
                            {"provider", placement.provider},
                            {"instances", placement.instances},
                            {"chargedBytes", placement.chargedBytes}});
    }
    const inference::ModelStatistics& statistics = model.statistics;
    json batchSizes = json::object();
    for (const auto& [size, count] : statistics.batchSizes) {
      batchSizes[std::to_string(size)] = count;
    }
    json stats = encodeStatistics(statistics);
    stats["queueSeconds"] = encodeHistogram(statistics.queueSeconds);
    stats["computeSeconds"] = encodeHistogram(statistics.computeSeconds);
    stats["totalSeconds"] = encodeHistogram(statistics.totalSeconds);
    stats["batchSizes"] = batchSizes;
    sessions.push_back({{"modelId", model.id},
                        {"name", model.name},
                        {"version", model.version},
                        {"state", inference::modelStateName(model.state)},
                        {"evicted", model.evicted},
                        {"instances", model.runner.instances},
                        {"batching", model.runner.batching.enabled},
                        {"maxQueue", model.runner.maxQueue},
                        {"inFlight", model.inFlight},
                        {"placements", placements},
                        {"statistics", stats}});
  }
  return {{"sessions", sessions}, {"count", sessions.size()}};
}

std::string_view tritonState(const ModelInfo& model, bool autoReload) {
  switch (model.state) {
    case inference::ModelState::kLoading:
      return "LOADING";
    case inference::ModelState::kUnloading:
      return "UNLOADING";
    case inference::ModelState::kFailed:
      return "UNAVAILABLE";
    case inference::ModelState::kReady:
      return model.evicted && !autoReload ? "UNAVAILABLE" : "READY";
  }
  return "UNAVAILABLE";
}

json encodeV2ModelMetadata(const ModelInfo& model, const std::vector<std::string>& versions) {
  return {{"name", model.name},
          {"versions", versions},
          {"platform", "onnxruntime_onnx"},
          {"inputs", encodeSpecs(model.metadata.inputs)},
          {"outputs", encodeSpecs(model.metadata.outputs)}};
}

json encodeV2ModelStatistics(const ModelInfo& model) {
  const inference::ModelStatistics& statistics = model.statistics;
  json batchStats = json::array();
  for (const auto& [size, count] : statistics.batchSizes) {
    // Per-batch-size durations are not measured: ns is 0.
    batchStats.push_back({{"batch_size", size},
                          {"compute_input", durationStat(count, {})},
                          {"compute_infer", durationStat(count, {})},
                          {"compute_output", durationStat(count, {})}});
  }
  const std::uint64_t lastInference =
      statistics.lastInference
          ? static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           statistics.lastInference->time_since_epoch())
                                           .count())
          : 0;
  return {{"name", model.name},
          {"version", model.version},
          {"last_inference", lastInference},
          {"inference_count", statistics.inferenceCount},
          {"execution_count", statistics.executionCount},
          {"inference_stats",
           {{"success", durationStat(statistics.successCount, statistics.requestTotal)},
            {"fail", durationStat(statistics.failureCount, statistics.failTotal)},
            {"queue", durationStat(statistics.successCount, statistics.queueTotal)},
            {"compute_input", durationStat(statistics.executionCount, {})},
            {"compute_infer", durationStat(statistics.executionCount, statistics.computeTotal)},
            {"compute_output", durationStat(statistics.executionCount, {})},
            {"cache_hit", durationStat(0, {})},
            {"cache_miss", durationStat(0, {})}}},
          {"batch_stats", batchStats}};
}

}  // namespace deviceops::api
