#include "selftest/run.h"

#include "common/time_format.h"

namespace deviceops::selftest {
namespace {

using Json = nlohmann::json;

Json optionalNumber(const std::optional<double>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json optionalTime(const std::optional<SystemTime>& time) {
  return time ? Json(formatIso8601(*time)) : Json(nullptr);
}

std::optional<double> readOptionalNumber(const Json& json, const char* key) {
  if (!json.contains(key) || !json[key].is_number()) return std::nullopt;
  return json[key].get<double>();
}

Result<std::optional<SystemTime>> readOptionalTime(const Json& json, const char* key) {
  if (!json.contains(key) || json[key].is_null()) return std::optional<SystemTime>{};
  ASSIGN_OR_RETURN(const SystemTime time, parseRfc3339(json[key].get<std::string>()));
  return std::optional<SystemTime>(time);
}

Json requestJson(const RunRequest& request) {
  Json json = {{"devices", request.devices}, {"owner", request.owner}};
  if (request.kind == RunKind::kEndToEnd) {
    json["level"] = levelName(request.level);
    json["force"] = request.force;
    json["memoryBytes"] = request.memoryBytes ? Json(*request.memoryBytes) : Json(nullptr);
    json["suite"] = request.suite.empty() ? Json(nullptr) : Json(request.suite);
    json["loadSeconds"] =
        request.loadDuration ? Json(request.loadDuration->count()) : Json(nullptr);
  } else {
    json["tests"] = request.tests;
    json["durationSeconds"] = request.duration.count();
  }
  return json;
}

}  // namespace

const std::vector<std::string>& benchmarkTestNames() {
  static const std::vector<std::string> kNames = {"hostToDevice", "deviceToHost", "deviceToDevice",
                                                  "matmul",       "allocation",   "inference"};
  return kNames;
}

Json toJson(const Figure& figure) {
  return {{"name", figure.name},
          {"value", figure.value},
          {"unit", figure.unit},
          {"higherIsBetter", figure.higherIsBetter},
          {"peak", optionalNumber(figure.peak)},
          {"ratio", optionalNumber(figure.ratio)},
          {"baselineMedian", optionalNumber(figure.baselineMedian)},
          {"baselineRuns", figure.baselineRuns},
          {"regression", figure.regression}};
}

Json toJson(const TestResult& result) {
  Json figures = Json::array();
  for (const Figure& figure : result.figures) figures.push_back(toJson(figure));
  return {{"deviceId", result.deviceId},
          {"test", result.test},
          {"status", outcomeName(result.status)},
          {"reason", result.reason},
          {"durationMs", result.durationMs},
          {"figures", std::move(figures)},
          {"details", result.details}};
}

Json summarize(const std::vector<TestResult>& results) {
  Json summary = {{"pass", 0}, {"warn", 0}, {"fail", 0}, {"skip", 0}};
  for (const TestResult& result : results) {
    auto& count = summary[std::string(outcomeName(result.status))];
    count = count.get<int>() + 1;
  }
  return summary;
}

Json toJson(const RunRecord& run) {
  Json results = Json::array();
  for (const TestResult& result : run.results) results.push_back(toJson(result));
  return {{"id", run.id},
          {"kind", runKindName(run.request.kind)},
          {"level", run.request.kind == RunKind::kEndToEnd ? Json(levelName(run.request.level))
                                                           : Json(nullptr)},
          {"state", runStateName(run.state)},
          {"status", run.status ? Json(outcomeName(*run.status)) : Json(nullptr)},
          {"devices", run.devices},
          {"request", requestJson(run.request)},
          {"createdAt", formatIso8601(run.createdAt)},
          {"startedAt", optionalTime(run.startedAt)},
          {"finishedAt", optionalTime(run.finishedAt)},
          {"error", run.error.empty() ? Json(nullptr) : Json(run.error)},
          {"progress",
           {{"fraction", run.progress.fraction},
            {"deviceId", run.progress.deviceId},
            {"step", run.progress.step}}},
          {"summary", summarize(run.results)},
          {"results", std::move(results)}};
}

Result<RunRecord> runFromJson(const Json& json) {
  try {
    RunRecord run;
    run.id = json.at("id").get<std::string>();
    const std::optional<RunKind> kind = parseRunKind(json.at("kind").get<std::string>());
    const std::optional<RunState> state = parseRunState(json.at("state").get<std::string>());
    if (!kind || !state)
      return makeError(ErrorCode::kInternal, "stored run " + run.id + " is unreadable");
    run.request.kind = *kind;
    run.state = *state;
    const Json& request = json.at("request");
    run.request.devices = request.value("devices", std::vector<std::string>{});
    run.request.owner = request.value("owner", std::string("anonymous"));
    if (*kind == RunKind::kEndToEnd) {
      run.request.level =
          parseLevel(request.value("level", std::string("quick"))).value_or(Level::kQuick);
      run.request.force = request.value("force", false);
      if (request.contains("memoryBytes") && request["memoryBytes"].is_number_unsigned()) {
        run.request.memoryBytes = request["memoryBytes"].get<std::uint64_t>();
      }
      if (request.contains("loadSeconds") && request["loadSeconds"].is_number_integer()) {
        run.request.loadDuration = std::chrono::seconds(request["loadSeconds"].get<std::int64_t>());
      }
      if (request.contains("suite") && request["suite"].is_string()) {
        run.request.suite = request["suite"].get<std::string>();
      }
    } else {
      run.request.tests = request.value("tests", std::vector<std::string>{});
      run.request.duration = std::chrono::seconds(request.value("durationSeconds", 5));
    }
    if (json.contains("status") && json["status"].is_string()) {
      run.status = parseOutcome(json["status"].get<std::string>());
    }
    run.devices = json.at("devices").get<std::vector<std::string>>();
    ASSIGN_OR_RETURN(run.createdAt, parseRfc3339(json.at("createdAt").get<std::string>()));
    ASSIGN_OR_RETURN(run.startedAt, readOptionalTime(json, "startedAt"));
    ASSIGN_OR_RETURN(run.finishedAt, readOptionalTime(json, "finishedAt"));
    if (json.contains("error") && json["error"].is_string()) run.error = json["error"];
    const Json& progress = json.at("progress");
    run.progress = {progress.value("fraction", 0.0), progress.value("deviceId", std::string()),
                    progress.value("step", std::string())};
    for (const Json& item : json.at("results")) {
      TestResult result;
      result.deviceId = item.at("deviceId").get<std::string>();
      result.test = item.at("test").get<std::string>();
      result.status = parseOutcome(item.at("status").get<std::string>()).value_or(Outcome::kFail);
      result.reason = item.value("reason", std::string());
      result.durationMs = item.value("durationMs", 0.0);
      result.details = item.value("details", Json::object());
      for (const Json& entry : item.at("figures")) {
        Figure figure;
        figure.name = entry.at("name").get<std::string>();
        figure.value = entry.at("value").get<double>();
        figure.unit = entry.value("unit", std::string());
        figure.higherIsBetter = entry.value("higherIsBetter", true);
        figure.peak = readOptionalNumber(entry, "peak");
        figure.ratio = readOptionalNumber(entry, "ratio");
        figure.baselineMedian = readOptionalNumber(entry, "baselineMedian");
        figure.baselineRuns = entry.value("baselineRuns", 0);
        figure.regression = entry.value("regression", false);
        result.figures.push_back(std::move(figure));
      }
      run.results.push_back(std::move(result));
    }
    return run;
  } catch (const Json::exception& e) {
    return makeError(ErrorCode::kInternal,
                     std::string("a stored self-test run is unreadable: ") + e.what());
  }
}

}  // namespace deviceops::selftest
