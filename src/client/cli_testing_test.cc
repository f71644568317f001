// deviceops test ... and deviceops bench against a fake /api/testing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/cli.h"
#include "client/testing/cli_run.h"
#include "client/testing/fake_http_server.h"

namespace deviceops::client {
namespace {

using fakes::CannedReply;
using fakes::FakeHttpServer;
using fakes::RecordedRequest;
using ::testing::HasSubstr;
using Json = nlohmann::json;

// The exit statuses the test and bench commands document in their --help.
constexpr int kExitRunFailed = 1;
constexpr int kExitAnswerError = 4;
constexpr int kExitNoVerdict = 5;
constexpr int kExitInterrupted = 130;

constexpr std::string_view kRunId = "run-0123456789abcdef";

// An end-to-end run over cpu0 and gpu0 with one result of each outcome.
Json endToEndRun(const std::string& state, const Json& status) {
  Json run = Json::parse(R"({
    "id": "run-0123456789abcdef", "kind": "end-to-end", "level": "quick",
    "devices": ["cpu0", "gpu0"], "createdAt": "2026-12-01T10:00:00.000Z",
    "startedAt": "2026-12-01T10:00:01.000Z", "finishedAt": "2026-12-01T10:00:09.000Z",
    "error": null,
    "progress": {"fraction": 1.0, "deviceId": "gpu0", "step": "generation.smoke"},
    "summary": {"pass": 1, "warn": 1, "fail": 1, "skip": 1},
    "results": [
      {"deviceId": "cpu0", "test": "memory.movingInversions", "status": "pass", "reason": "ok",
       "durationMs": 1500, "details": {},
       "figures": [{"name": "bandwidth", "value": 1.23e10, "unit": "B/s", "peak": 1.5e10,
                    "ratio": 0.81, "baselineMedian": null, "baselineRuns": 0,
                    "regression": false}]},
      {"deviceId": "cpu0", "test": "transfer.hostToDevice", "status": "warn",
       "reason": "below the baseline", "durationMs": 250, "details": {},
       "figures": [{"name": "bandwidth", "value": 8.6e9, "unit": "B/s", "peak": null,
                    "ratio": null, "baselineMedian": 1.0e10, "baselineRuns": 4,
                    "regression": true}]},
      {"deviceId": "gpu0", "test": "memory.movingInversions", "status": "fail",
       "reason": "bit errors at 3 addresses", "durationMs": 3200, "figures": [], "details": {}},
      {"deviceId": "gpu0", "test": "generation.smoke", "status": "skip",
       "reason": "no suite given", "durationMs": 0, "figures": [], "details": {}}]
  })");
  run["state"] = state;
  run["status"] = status;
  return run;
}

const std::string kEndToEndTable =
    "DEVICE  TEST                     STATUS    TIME  DETAIL\n"
    "cpu0    memory.movingInversions  pass     1.5 s  12.3 GB/s (81% of peak)\n"
    "cpu0    transfer.hostToDevice    WARN    250 ms  8.6 GB/s, REGRESSED -14%; below the "
    "baseline\n"
    "gpu0    memory.movingInversions  FAIL     3.2 s  bit errors at 3 addresses\n"
    "gpu0    generation.smoke         skip      0 ms  no suite given\n"
    "pass 1, warn 1, fail 1, skip 1\n";

Json benchmarkRun() {
  return Json::parse(R"({
    "id": "run-0123456789abcdef", "kind": "performance-benchmark", "level": null,
    "state": "completed", "status": "warn", "devices": ["cpu0"], "error": null,
    "createdAt": "2026-12-01T10:00:00.000Z", "startedAt": null, "finishedAt": null,
    "progress": {"fraction": 1.0, "deviceId": "cpu0", "step": "matmul"},
    "summary": {"pass": 1, "warn": 1, "fail": 0, "skip": 1},
    "results": [
      {"deviceId": "cpu0", "test": "hostToDevice", "status": "pass", "reason": "",
       "durationMs": 2000,
       "figures": [{"name": "bandwidth", "value": 2.5e10, "unit": "B/s", "peak": 5.0e10,
                    "ratio": 0.5, "baselineMedian": 2.4e10, "baselineRuns": 3,
                    "regression": false}]},
      {"deviceId": "cpu0", "test": "matmul", "status": "warn", "reason": "regressed",
       "durationMs": 2000,
       "figures": [{"name": "throughput", "value": 8.6e11, "unit": "FLOP/s", "peak": null,
                    "ratio": null, "baselineMedian": 1.0e12, "baselineRuns": 5,
                    "regression": true}]},
      {"deviceId": "cpu0", "test": "deviceToDevice", "status": "skip",
       "reason": "a CPU has no device-to-device path", "durationMs": 0, "figures": []}]
  })");
}

Json healthAnswer(const std::string& status) {
  Json health = Json::parse(R"({
    "checkedAt": "2026-12-01T10:00:00.000Z", "durationMs": 120,
    "backends": [
      {"name": "cpu", "available": true, "status": "pass", "reason": "", "lastPollAgeMs": 400},
      {"name": "nvidia", "available": false, "status": "skip",
       "reason": "cannot load libnvidia-ml.so.1", "lastPollAgeMs": null}],
    "devices": [
      {"deviceId": "cpu0", "name": "AMD EPYC", "simulated": false, "status": "pass",
       "checks": [
         {"name": "backendResponding", "status": "pass", "reason": "polled 0.4 s ago",
          "values": {}},
         {"name": "telemetry", "status": "warn", "reason": "last sample 95 s old",
          "values": {"ageSeconds": 95}}]},
      {"deviceId": "gpu0", "name": "sim", "simulated": true, "status": "fail",
       "checks": [{"name": "readings", "status": "fail", "reason": "temperature 104 °C",
                   "values": {}}]}]
  })");
  health["status"] = status;
  return health;
}

std::string event(int id, const std::string& type, const Json& data) {
  return (id > 0 ? "id: " + std::to_string(id) + "\n" : std::string()) + "event: " + type +
         "\ndata: " + data.dump() + "\n\n";
}

// The events of the run of endToEndRun: snapshot, progress, each result, the state, the end.
std::vector<std::string> runEvents(const std::string& finalState) {
  const Json run = endToEndRun("completed", "fail");
  Json snapshot = run;
  snapshot["state"] = "queued";
  snapshot["status"] = nullptr;
  snapshot["results"] = Json::array();
  snapshot["progress"] = {{"fraction", 0.0}, {"deviceId", nullptr}, {"step", nullptr}};
  return {
      event(0, "snapshot", snapshot),
      event(1, "state", {{"state", "running"}}),
      event(2, "progress",
            {{"fraction", 0.1}, {"deviceId", "cpu0"}, {"step", "memory.movingInversions"}}),
      event(3, "progress",
            {{"fraction", 0.2}, {"deviceId", "cpu0"}, {"step", "memory.movingInversions"}}),
      event(4, "result", run["results"][0]),
      event(5, "progress",
            {{"fraction", 0.45}, {"deviceId", "cpu0"}, {"step", "transfer.hostToDevice"}}),
      event(6, "result", run["results"][1]),
      event(7, "progress",
            {{"fraction", 0.5}, {"deviceId", "gpu0"}, {"step", "memory.movingInversions"}}),
      event(8, "result", run["results"][2]),
      event(9, "progress",
            {{"fraction", 0.99}, {"deviceId", "gpu0"}, {"step", "generation.smoke"}}),
      event(10, "result", run["results"][3]),
      event(11, "state", {{"state", finalState}}),
      "event: end\ndata: {}\n\n",
  };
}

const std::string kProgressLines =
    "10% cpu0 memory.movingInversions\n"
    "45% cpu0 transfer.hostToDevice\n"
    "WARN cpu0 transfer.hostToDevice: below the baseline\n"
    "50% gpu0 memory.movingInversions\n"
    "FAIL gpu0 memory.movingInversions: bit errors at 3 addresses\n"
    "99% gpu0 generation.smoke\n";

std::string joined(const std::vector<std::string>& parts, std::size_t from, std::size_t to) {
  std::string out;
  for (std::size_t i = from; i < to && i < parts.size(); ++i) out += parts[i];
  return out;
}

CannedReply eventStream(std::string body) {
  CannedReply reply = CannedReply::json(200, std::move(body));
  reply.contentType = "text/event-stream";
  return reply;
}

CannedReply errorReply(int status, const std::string& code, const std::string& message,
                       const Json& details = Json::object()) {
  return CannedReply::json(
      status, Json{{"error", {{"code", code}, {"message", message}, {"details", details}}}}.dump());
}

// /api/testing with canned answers. The run ends as `finalRun` says; `splitAt` > 0 breaks the
// first event stream off after that many events; `interruptOnEvents` raises SIGINT (as Ctrl-C
// would) when the events are asked for.
class FakeTestingServer {
 public:
  Json finalRun = endToEndRun("completed", "fail");
  std::size_t splitAt = 0;
  bool interruptOnEvents = false;
  std::string healthStatus = "fail";

  std::string url() const { return server_.url(); }
  std::vector<RecordedRequest> requests() const { return server_.requests(); }
  std::vector<std::string> targets() const {
    std::vector<std::string> out;
    for (const RecordedRequest& request : server_.requests()) {
      out.push_back(request.method + " " + request.target);
    }
    return out;
  }
  // The JSON body of the first request to target ("POST /api/...").
  Json bodyOf(const std::string& target) const {
    for (const RecordedRequest& request : server_.requests()) {
      if (request.method + " " + request.target == target) return Json::parse(request.body);
    }
    return nullptr;
  }

 private:
  CannedReply answer(const RecordedRequest& request) {
    const std::string key = request.method + " " + request.target;
    const std::string run = "/api/testing/runs/" + std::string(kRunId);
    Json queued = finalRun;
    queued["state"] = "queued";
    queued["status"] = nullptr;
    queued["results"] = Json::array();
    if (key == "POST /api/testing/end-to-end" || key == "POST /api/testing/performance-benchmark") {
      const Json body = Json::parse(request.body);
      if (body.contains("devices") && body["devices"] == Json::array({"busy0"})) {
        return errorReply(409, "CONFLICT", "device busy0 already has a run",
                          {{"runId", "run-00000000000000aa"}});
      }
      return CannedReply::json(202, queued.dump());
    }
    if (key == "GET " + run + "/events") {
      if (interruptOnEvents) std::raise(SIGINT);
      const auto events = runEvents(finalRun.value("state", ""));
      std::lock_guard lock(mutex_);
      ++eventRequests_;
      if (interruptOnEvents) return eventStream(joined(events, 0, 3));
      if (splitAt > 0 && eventRequests_ == 1) return eventStream(joined(events, 0, splitAt));
      if (splitAt > 0) {
        // A reconnection: the snapshot, then what came after Last-Event-ID.
        const auto lastId = request.headers.find("last-event-id");
        const std::size_t from =
            lastId == request.headers.end() ? 1 : std::stoul(lastId->second) + 1;
        return eventStream(joined(events, 0, 1) + joined(events, from, 99));
      }
      return eventStream(joined(events, 0, 99));
    }
    if (key == "GET " + run) return CannedReply::json(200, finalRun.dump());
    if (key == "POST " + run + "/cancel") {
      if (finalRun.value("state", "") == "completed" && !interruptOnEvents) {
        return errorReply(409, "CONFLICT", "run " + std::string(kRunId) + " already finished");
      }
      Json cancelled = queued;
      cancelled["state"] = "cancelled";
      return CannedReply::json(202, cancelled.dump());
    }
    if (request.method == "GET" && request.target.starts_with("/api/testing/runs?")) {
      return CannedReply::json(200, Json{{"runs", {finalRun, benchmarkRun()}}}.dump());
    }
    if (key == "GET /api/testing/runs") return CannedReply::json(200, R"({"runs": []})");
    if (key == "GET /api/testing/device-health") {
      return CannedReply::json(200, healthAnswer(healthStatus).dump());
    }
    return errorReply(404, "NOT_FOUND", "no run " + request.target);
  }

  std::mutex mutex_;
  int eventRequests_ = 0;  // guarded by mutex_
  FakeHttpServer server_{[this](const RecordedRequest& request) { return answer(request); }};
};

using fakes::CliRun;

class TestingCliTest : public ::testing::Test {
 protected:
  CliRun run(std::vector<std::string> args) {
    return fakes::runCliAgainst(server_.url(), std::move(args));
  }

  std::string runTarget(std::string_view suffix = "") const {
    return "/api/testing/runs/" + std::string(kRunId) + std::string(suffix);
  }

  FakeTestingServer server_;
};

TEST_F(TestingCliTest, QuickSendsEveryOptionFollowsToTheEndAndFailsOnFail) {
  const CliRun result = run({"test", "quick", "--device", "cpu0", "--device", "gpu0", "--force",
                             "--memory", "512MiB", "--suite", "tiny"});
  EXPECT_EQ(result.exitCode, kExitRunFailed) << result.err;
  EXPECT_EQ(server_.targets(),
            (std::vector<std::string>{"POST /api/testing/end-to-end", "GET " + runTarget("/events"),
                                      "GET " + runTarget()}));
  EXPECT_EQ(server_.bodyOf("POST /api/testing/end-to-end"),
            Json::parse(R"({"level": "quick", "devices": ["cpu0", "gpu0"], "force": true,
                            "memoryBytes": 536870912, "suite": "tiny"})"));
  EXPECT_EQ(result.out, kEndToEndTable);
  EXPECT_EQ(result.err, kProgressLines);
}

TEST_F(TestingCliTest, LevelsSendOnlyWhatWasGivenAndPassOrWarnExitZero) {
  struct Case {
    std::vector<std::string> args;
    Json status;
    std::string expectedBody;
  };
  const std::vector<Case> cases = {
      {{"test", "standard"}, "pass", R"({"level": "standard", "force": false})"},
      {{"test", "long", "--device", "cpu0,gpu0", "--memory", "2GB"},
       "warn",
       R"({"level": "long", "force": false, "devices": ["cpu0", "gpu0"],
           "memoryBytes": 2000000000})"},
  };
  for (const Case& testCase : cases) {
    SCOPED_TRACE(testCase.args[1]);
    server_.finalRun = endToEndRun("completed", testCase.status);
    const CliRun result = run(testCase.args);
    EXPECT_EQ(result.exitCode, kExitOk) << result.err;
    const auto requests = server_.requests();
    ASSERT_FALSE(requests.empty());
    EXPECT_EQ(Json::parse(requests[requests.size() - 3].body), Json::parse(testCase.expectedBody));
  }
}

TEST_F(TestingCliTest, RunWithoutVerdictExitsFiveAndSaysWhy) {
  server_.finalRun = endToEndRun("failed", nullptr);
  server_.finalRun["error"] = "the runner lost device gpu0";
  CliRun result = run({"test", "quick"});
  EXPECT_EQ(result.exitCode, kExitNoVerdict);
  EXPECT_THAT(result.err, HasSubstr("error: run run-0123456789abcdef failed: the runner lost "
                                    "device gpu0\n"));

  server_.finalRun = endToEndRun("cancelled", nullptr);
  result = run({"test", "quick"});
  EXPECT_EQ(result.exitCode, kExitNoVerdict);
  EXPECT_THAT(result.err,
              HasSubstr("error: run run-0123456789abcdef cancelled without a verdict\n"));
}

TEST_F(TestingCliTest, BusyDeviceIsAConflictWithItsOwnExitStatus) {
  const CliRun result = run({"test", "long", "--device", "busy0"});
  EXPECT_EQ(result.exitCode, kExitAnswerError);
  EXPECT_EQ(result.err,
            "error: device busy0 already has a run (CONFLICT, HTTP 409)\n"
            "see: deviceops test show run-00000000000000aa\n");
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(server_.targets(), std::vector<std::string>{"POST /api/testing/end-to-end"});
}

TEST_F(TestingCliTest, UnknownRunIsNotFound) {
  for (const char* command : {"show", "cancel"}) {
    SCOPED_TRACE(command);
    const CliRun result = run({"test", command, "run-ffffffffffffffff"});
    EXPECT_EQ(result.exitCode, kExitAnswerError);
    EXPECT_THAT(result.err, HasSubstr("(NOT_FOUND, HTTP 404)\n"));
  }
}

TEST_F(TestingCliTest, BadCommandLinesAreRejectedBeforeAnythingIsSent) {
  const std::vector<std::vector<std::string>> cases = {
      {"test", "extreme"},
      {"test"},
      {"test", "quick", "--memory", "lots"},
      {"test", "quick", "--memory", "-1"},
      {"bench", "--duration", "0"},
      {"bench", "--duration", "601"},
      {"test", "runs", "--kind", "nightly"},
      {"test", "runs", "--limit", "0"},
      {"test", "show"},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(::testing::PrintToString(args));
    const CliRun result = run(args);
    EXPECT_EQ(result.exitCode, kExitUsage);
    EXPECT_FALSE(result.err.empty());
  }
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(TestingCliTest, BrokenEventStreamResumesFromTheLastEventId) {
  server_.splitAt = 5;  // snapshot and events 1..4
  const CliRun result = run({"test", "quick"});
  EXPECT_EQ(result.exitCode, kExitRunFailed) << result.err;
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 4u);
  EXPECT_EQ(requests[1].headers.count("last-event-id"), 0u);
  EXPECT_EQ(requests[2].target, runTarget("/events"));
  EXPECT_EQ(requests[2].headers.at("last-event-id"), "4");
  // Every step and result shown once, as without the break.
  EXPECT_EQ(result.err, kProgressLines);
  EXPECT_EQ(result.out, kEndToEndTable);
}

TEST_F(TestingCliTest, NoFollowOnlySubmits) {
  CliRun result = run({"test", "quick", "--no-follow"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out, "run-0123456789abcdef queued\n");
  EXPECT_EQ(server_.targets(), std::vector<std::string>{"POST /api/testing/end-to-end"});

  result = run({"bench", "--no-follow", "--json"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(Json::parse(result.out).value("state", ""), "queued");
}

TEST_F(TestingCliTest, JsonPrintsTheFinalRunAndKeepsTheVerdict) {
  const CliRun result = run({"test", "quick", "--json"});
  EXPECT_EQ(result.exitCode, kExitRunFailed);
  EXPECT_EQ(Json::parse(result.out), server_.finalRun);
}

TEST_F(TestingCliTest, InterruptCancelsTheRun) {
  server_.interruptOnEvents = true;
  server_.finalRun = endToEndRun("running", nullptr);
  const CliRun result = run({"test", "standard"});
  EXPECT_EQ(result.exitCode, kExitInterrupted);
  EXPECT_EQ(server_.targets(),
            (std::vector<std::string>{"POST /api/testing/end-to-end", "GET " + runTarget("/events"),
                                      "POST " + runTarget("/cancel")}));
  EXPECT_THAT(result.err, HasSubstr("run-0123456789abcdef cancelled\n"));
  // The handler is gone again: SIGINT is back to what it was before (the default).
  struct sigaction now {};
  ASSERT_EQ(::sigaction(SIGINT, nullptr, &now), 0);
  EXPECT_EQ(now.sa_handler, SIG_DFL);
}

TEST_F(TestingCliTest, BenchSendsTestsDevicesAndDurationAndPrintsFigures) {
  server_.finalRun = benchmarkRun();
  const CliRun result = run({"bench", "--test", "hostToDevice", "--test", "matmul,deviceToDevice",
                             "--device", "cpu0", "--duration", "2"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(server_.bodyOf("POST /api/testing/performance-benchmark"),
            Json::parse(R"({"tests": ["hostToDevice", "matmul", "deviceToDevice"],
                            "devices": ["cpu0"], "durationSeconds": 2})"));
  EXPECT_EQ(result.out,
            "DEVICE  TEST            RESULT                                         PEAK  RATIO  "
            "            BASELINE  REGRESSION\n"
            "cpu0    hostToDevice    25.0 GB/s                                 50.0 GB/s    50%  "
            "  24.0 GB/s (3 runs)  no (+4%)\n"
            "cpu0    matmul          860 GFLOP/s (WARN)                                -      -  "
            "1.0 TFLOP/s (5 runs)  REGRESSED -14%\n"
            "cpu0    deviceToDevice  skip: a CPU has no device-to-device path          -      -  "
            "                   -  -\n"
            "pass 1, warn 1, fail 0, skip 1\n");

  // Defaults: an empty body, the server picks tests, devices and duration.
  const CliRun defaults = run({"bench"});
  EXPECT_EQ(defaults.exitCode, kExitOk) << defaults.err;
  EXPECT_EQ(Json::parse(server_.requests()[3].body), Json::object());
}

TEST_F(TestingCliTest, FiguresKeepTheirUnitsAndNameThemselvesWhenSeveral) {
  server_.finalRun = endToEndRun("completed", "pass");
  server_.finalRun["summary"] = {{"pass", 1}, {"warn", 0}, {"fail", 0}, {"skip", 0}};
  server_.finalRun["results"] = Json::parse(R"([
    {"deviceId": "cpu0", "test": "inference.mlp", "status": "pass", "reason": "ok",
     "durationMs": 61000, "figures": [
       {"name": "latency", "value": 0.00085, "unit": "s", "peak": null, "ratio": null},
       {"name": "throughput", "value": 1234.5, "unit": "images/s", "peak": null, "ratio": null},
       {"name": "resident", "value": 1572864, "unit": "B", "peak": null, "ratio": null},
       {"name": "copy", "value": 999, "unit": "B/s", "peak": 1998, "ratio": 0.5},
       {"name": "load", "value": 2.5, "unit": "s", "peak": null, "ratio": null}]}])");
  const CliRun result = run({"test", "show", std::string(kRunId)});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_THAT(result.out,
              HasSubstr("\ncpu0    inference.mlp  pass    61.0 s  latency 0.85 ms, throughput "
                        "1234 images/s, resident 1.5 MiB, copy 999 B/s (50% of peak), load 2.5 "
                        "s\npass 1, warn 0, fail 0, skip 0\n"));
}

TEST_F(TestingCliTest, HealthIsATableAndFailsOnFail) {
  CliRun result = run({"test", "health"});
  EXPECT_EQ(result.exitCode, kExitRunFailed) << result.err;
  EXPECT_EQ(result.out,
            "DEVICE  CHECK              STATUS  REASON\n"
            "cpu0    backendResponding  pass    polled 0.4 s ago\n"
            "cpu0    telemetry          WARN    last sample 95 s old\n"
            "gpu0    readings           FAIL    temperature 104 °C\n"
            "backend nvidia: unavailable (cannot load libnvidia-ml.so.1)\n"
            "status: FAIL (checked in 120 ms)\n");
  EXPECT_EQ(server_.targets(), std::vector<std::string>{"GET /api/testing/device-health"});

  server_.healthStatus = "warn";
  result = run({"test", "health", "--json"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(Json::parse(result.out), healthAnswer("warn"));
}

TEST_F(TestingCliTest, RunsListFiltersAndShowsCounts) {
  CliRun result =
      run({"test", "runs", "--kind", "end-to-end", "--device", "cpu 0", "--limit", "5"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(
      server_.targets(),
      std::vector<std::string>{"GET /api/testing/runs?kind=end-to-end&deviceId=cpu%200&limit=5"});
  EXPECT_EQ(result.out,
            "ID                    KIND                   LEVEL  STATE      STATUS  DEVICES     "
            "PASS  WARN  FAIL  SKIP  CREATED\n"
            "run-0123456789abcdef  end-to-end             quick  completed  FAIL    cpu0, gpu0     "
            "1     1     1     1  2026-12-01T10:00:00.000Z\n"
            "run-0123456789abcdef  performance-benchmark  -      completed  WARN    cpu0           "
            "1     1     0     1  2026-12-01T10:00:00.000Z\n");

  result = run({"test", "runs"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out, "no runs\n");
}

TEST_F(TestingCliTest, ShowPrintsTheRunAndItsResults) {
  const CliRun result = run({"test", "show", std::string(kRunId)});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out,
            "id:       run-0123456789abcdef\n"
            "kind:     end-to-end\n"
            "level:    quick\n"
            "state:    completed\n"
            "status:   FAIL\n"
            "devices:  cpu0, gpu0\n"
            "progress: 100% gpu0 generation.smoke\n"
            "created:  2026-12-01T10:00:00.000Z\n"
            "started:  2026-12-01T10:00:01.000Z\n"
            "finished: 2026-12-01T10:00:09.000Z\n"
            "error:    -\n"
            "\n" +
                kEndToEndTable);
}

TEST_F(TestingCliTest, CancelPostsAndFinishedRunIsAConflict) {
  CliRun result = run({"test", "cancel", std::string(kRunId)});
  EXPECT_EQ(result.exitCode, kExitAnswerError);
  EXPECT_EQ(result.err, "error: run run-0123456789abcdef already finished (CONFLICT, HTTP 409)\n");
  EXPECT_EQ(server_.targets(), std::vector<std::string>{"POST " + runTarget("/cancel")});

  server_.finalRun = endToEndRun("running", nullptr);
  result = run({"test", "cancel", std::string(kRunId)});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out, "run-0123456789abcdef cancelled\n");
}

TEST_F(TestingCliTest, UnreachableServerIsExitThree) {
  std::string url;
  {
    FakeHttpServer closed([](const RecordedRequest&) { return CannedReply::json(200, "{}"); });
    url = closed.url();
  }
  std::vector<std::string> args = {"deviceops", "--url", url, "test", "quick"};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  std::ostringstream out, err;
  EXPECT_EQ(runCli(static_cast<int>(args.size()), argv.data(), out, err), kExitUnreachable);
}

}  // namespace
}  // namespace deviceops::client
