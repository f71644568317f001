// /api/testing: self-tests and benchmarks (src/selftest). Device health answers at once; the
// end-to-end self-test and the performance benchmark start background runs (202) followed with
// GET /api/testing/runs/{runId} or its Server-Sent Events.
#include <fmt/format.h>

#include <charconv>
#include <set>

#include "api/app.h"
#include "api/event_stream.h"
#include "api/route_table.h"
#include "api/routes.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

Status checkKeys(const json& body, const std::set<std::string>& allowed) {
  if (!body.is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "the body must be a JSON object");
  }
  for (const auto& [key, value] : body.items()) {
    if (allowed.count(key) == 0) {
      return makeError(
          ErrorCode::kInvalidArgument,
          fmt::format("unknown field '{}'; expected one of {}", key, fmt::join(allowed, ", ")),
          {{"field", key}});
    }
  }
  return Status::success();
}

Status wrongType(const std::string& field, const char* expected) {
  return makeError(ErrorCode::kInvalidArgument, fmt::format("{} must be {}", field, expected),
                   {{"field", field}});
}

Result<std::vector<std::string>> stringList(const json& body, const std::string& field) {
  std::vector<std::string> values;
  if (!body.contains(field) || body[field].is_null()) return values;
  if (!body[field].is_array()) return wrongType(field, "an array of strings").error();
  for (const json& item : body[field]) {
    if (!item.is_string() || item.get<std::string>().empty()) {
      return wrongType(field, "an array of non-empty strings").error();
    }
    values.push_back(item.get<std::string>());
  }
  return values;
}

Result<selftest::RunRequest> decodeEndToEnd(const json& body) {
  RETURN_IF_ERROR(
      checkKeys(body, {"level", "devices", "force", "memoryBytes", "suite", "loadSeconds"}));
  selftest::RunRequest request;
  request.kind = selftest::RunKind::kEndToEnd;
  if (body.contains("level")) {
    if (!body["level"].is_string()) return wrongType("level", "a string").error();
    const std::optional<selftest::Level> level =
        selftest::parseLevel(body["level"].get<std::string>());
    if (!level) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("unknown level '{}'; expected quick, standard or long",
                                   body["level"].get<std::string>()),
                       {{"field", "level"}});
    }
    request.level = *level;
  }
  ASSIGN_OR_RETURN(request.devices, stringList(body, "devices"));
  if (body.contains("force")) {
    if (!body["force"].is_boolean()) return wrongType("force", "true or false").error();
    request.force = body["force"].get<bool>();
  }
  if (body.contains("memoryBytes") && !body["memoryBytes"].is_null()) {
    if (!body["memoryBytes"].is_number_unsigned()) {
      return wrongType("memoryBytes", "a positive integer (bytes)").error();
    }
    request.memoryBytes = body["memoryBytes"].get<std::uint64_t>();
  }
  if (body.contains("loadSeconds") && !body["loadSeconds"].is_null()) {
    const json& load = body["loadSeconds"];
    if (!load.is_number_integer() || load.get<std::int64_t>() < 1 ||
        load.get<std::int64_t>() > 900) {
      return wrongType("loadSeconds", "an integer from 1 to 900").error();
    }
    request.loadDuration = std::chrono::seconds(load.get<std::int64_t>());
  }
  if (body.contains("suite") && !body["suite"].is_null()) {
    if (!body["suite"].is_string()) return wrongType("suite", "a string").error();
    request.suite = body["suite"].get<std::string>();
  }
  return request;
}

Result<selftest::RunRequest> decodeBenchmark(const json& body) {
  RETURN_IF_ERROR(checkKeys(body, {"tests", "devices", "durationSeconds", "memoryBytes"}));
  selftest::RunRequest request;
  request.kind = selftest::RunKind::kBenchmark;
  ASSIGN_OR_RETURN(request.tests, stringList(body, "tests"));
  ASSIGN_OR_RETURN(request.devices, stringList(body, "devices"));
  if (body.contains("durationSeconds")) {
    const json& duration = body["durationSeconds"];
    if (!duration.is_number_integer()) {
      return wrongType("durationSeconds", "an integer number of seconds").error();
    }
    const std::int64_t seconds = duration.get<std::int64_t>();
    // The range is checked by the service (it knows the limit); keep the value intact for it.
    request.duration =
        std::chrono::seconds(std::clamp<std::int64_t>(seconds, -1, std::int64_t{1} << 40));
  }
  if (body.contains("memoryBytes") && !body["memoryBytes"].is_null()) {
    if (!body["memoryBytes"].is_number_unsigned()) {
      return wrongType("memoryBytes", "a positive integer (bytes)").error();
    }
    request.memoryBytes = body["memoryBytes"].get<std::uint64_t>();
  }
  return request;
}

Result<selftest::RunFilter> decodeRunFilter(const http::Request& request) {
  selftest::RunFilter filter;
  if (auto kind = request.queryParam("kind")) {
    filter.kind = selftest::parseRunKind(*kind);
    if (!filter.kind) {
      return makeError(ErrorCode::kInvalidArgument,
                       "kind '" + *kind + "' is not end-to-end or performance-benchmark",
                       {{"parameter", "kind"}});
    }
  }
  filter.deviceId = request.queryParam("deviceId").value_or("");
  if (auto limit = request.queryParam("limit")) {
    std::size_t value = 0;
    const auto [end, error] = std::from_chars(limit->data(), limit->data() + limit->size(), value);
    if (error != std::errc() || end != limit->data() + limit->size() || value < 1 || value > 1000) {
      return makeError(ErrorCode::kInvalidArgument, "limit must be an integer from 1 to 1000",
                       {{"parameter", "limit"}});
    }
    filter.limit = value;
  }
  return filter;
}

json encodeRuns(const std::vector<selftest::RunRecord>& runs) {
  json list = json::array();
  for (const selftest::RunRecord& run : runs) list.push_back(selftest::toJson(run));
  return {{"runs", std::move(list)}, {"count", runs.size()}};
}

json encodeRun(const selftest::RunRecord& run) { return selftest::toJson(run); }

class TestingRoutes {
 public:
  explicit TestingRoutes(selftest::SelfTestService& service) : service_(service) {}

  Result<http::Reply> deviceHealth(http::Request&) {
    return http::jsonReply(200, selftest::toJson(service_.deviceHealth()));
  }

  Result<http::Reply> endToEnd(http::Request& request) {
    ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
    ASSIGN_OR_RETURN(selftest::RunRequest decoded, decodeEndToEnd(body));
    return started(std::move(decoded), request);
  }

  Result<http::Reply> benchmark(http::Request& request) {
    ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
    ASSIGN_OR_RETURN(selftest::RunRequest decoded, decodeBenchmark(body));
    return started(std::move(decoded), request);
  }

  Result<http::Reply> list(http::Request& request) {
    ASSIGN_OR_RETURN(const selftest::RunFilter filter, decodeRunFilter(request));
    return encoded(service_.list(filter), encodeRuns);
  }

  Result<http::Reply> show(http::Request& request) {
    return encoded(service_.find(request.pathParam("runId")), encodeRun);
  }

  Result<http::Reply> cancel(http::Request& request) {
    return encoded(service_.cancel(request.pathParam("runId")), encodeRun, 202);
  }

  Result<http::Reply> events(http::Request& request) {
    const std::string runId = request.pathParam("runId");
    RETURN_IF_ERROR(service_.find(runId));
    selftest::SelfTestService& service = service_;
    auto snapshot = [&service, runId]() -> std::optional<json> {
      Result<selftest::RunRecord> run = service.find(runId);
      if (!run.ok()) return std::nullopt;
      return selftest::toJson(*run);
    };
    auto fetch = [&service, runId](std::uint64_t after,
                                   std::chrono::milliseconds wait) -> std::optional<StreamedBatch> {
      std::optional<selftest::RunEventBatch> batch = service.events(runId, after, wait);
      if (!batch) return std::nullopt;
      return toStreamedBatch(*batch);
    };
    return http::streamReply(
        std::make_shared<JobEventStream>(std::move(snapshot), std::move(fetch),
                                         lastEventId(request.header("last-event-id"))),
        "text/event-stream");
  }

 private:
  Result<http::Reply> started(selftest::RunRequest decoded, const http::Request& request) {
    decoded.owner = request.principal;
    ASSIGN_OR_RETURN(const selftest::RunRecord run, service_.submit(std::move(decoded)));
    return http::jsonReply(202, selftest::toJson(run))
        .withHeader("Location", "/api/testing/runs/" + run.id);
  }

  selftest::SelfTestService& service_;
};

constexpr RouteSpec<TestingRoutes> kTestingRoutes[] = {
    {"GET", "/api/testing/device-health", &TestingRoutes::deviceHealth},
    {"POST", "/api/testing/end-to-end", &TestingRoutes::endToEnd},
    {"POST", "/api/testing/performance-benchmark", &TestingRoutes::benchmark},
    {"GET", "/api/testing/runs", &TestingRoutes::list},
    {"GET", "/api/testing/runs/{runId}", &TestingRoutes::show},
    {"POST", "/api/testing/runs/{runId}/cancel", &TestingRoutes::cancel},
    {"GET", "/api/testing/runs/{runId}/events", &TestingRoutes::events},
};

}  // namespace

void registerTestingRoutes(http::Router& router, AppContext& context,
                           selftest::SelfTestService& service) {
  addRoutes<TestingRoutes>(router, context.config, http::ErrorShape::kApi,
                           std::make_shared<TestingRoutes>(service), kTestingRoutes);
  context.metricsWriters.push_back([&service](std::string& out) { service.writeMetrics(out); });
}

void registerTestingUnavailable(http::Router& router, AppContext& context,
                                const std::string& reason) {
  addUnavailableRoutes<TestingRoutes>(router, context.config, http::ErrorShape::kApi,
                                      kTestingRoutes, reason);
}

}  // namespace deviceops::api
