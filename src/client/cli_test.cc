#include "client/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/cli_commands.h"
#include "client/testing/cli_run.h"
#include "client/testing/fake_http_server.h"

namespace deviceops::client {
namespace {

using fakes::CannedReply;
using fakes::FakeHttpServer;
using fakes::RecordedRequest;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

const Json kGpu = Json::parse(R"({
  "id": "gpu-3f2a9c1e0b7d", "type": "gpu", "name": "Simulated GPU 16G", "vendor": "deviceops",
  "backends": ["simulated"], "simulated": true, "uuid": null, "pciBusId": "0000:01:00.0",
  "memory": {"totalBytes": 17179869184, "usedBytes": 536870912, "freeBytes": 16642998272},
  "readings": {"temperatureCelsius": 86.0, "utilizationRatio": 0.5, "powerWatts": null,
               "clockMhz": 1410},
  "health": {"status": "degraded", "checkedAt": "2026-11-27T10:00:00.000Z",
             "reasons": [{"code": "temperatureNearSlowdown", "severity": "degraded",
                          "message": "temperature 86 °C is within 5 °C of the slowdown threshold 90 °C"}]},
  "properties": {"vulkan": {"apiVersion": "1.3.255", "queueFamilies": [{"count": 2}]},
                 "simulated": {"seed": 7, "tags": ["a", "b"]}},
  "updatedAt": "2026-11-27T10:00:00.123Z"
})");

const Json kCpu = Json::parse(R"({
  "id": "cpu0", "type": "cpu", "name": "AMD EPYC 7B13", "vendor": "AMD", "backends": ["cpu"],
  "simulated": false, "uuid": null, "pciBusId": null,
  "memory": {"totalBytes": 25000000000, "usedBytes": 1000, "freeBytes": 24000000000},
  "readings": {"temperatureCelsius": 45.0, "utilizationRatio": 0.12},
  "health": {"status": "healthy", "reasons": [], "checkedAt": "2026-11-27T10:00:00.000Z"},
  "properties": {"cpu": {"cores": 8}}, "updatedAt": "2026-11-27T10:00:00.123Z"
})");

const Json kDeviceList = {
    {"devices", {kCpu, kGpu}},
    {"count", 2},
    {"backends",
     {{{"name", "cpu"}, {"available", true}, {"reason", ""}, {"deviceCount", 1}},
      {{"name", "nvidia"},
       {"available", false},
       {"reason", "cannot load libnvidia-ml.so.1: not found"}}}},
    {"updatedAt", "2026-11-27T10:00:00.123Z"}};

const Json kVersion = {{"name", "deviceops"},
                       {"version", "0.1.0"},
                       {"onnxRuntimeVersion", "1.31.1"},
                       {"gitCommit", "abc123"},
                       {"buildType", "Release"}};

// Routes like deviceopsd for the fixtures above; anything else is a NOT_FOUND error.
CannedReply fakeDeviceops(const RecordedRequest& request) {
  const std::string gpuPath = "/api/device/gpu-3f2a9c1e0b7d";
  if (request.target == "/api/version") return CannedReply::json(200, kVersion.dump());
  if (request.target.starts_with("/api/device?") || request.target == "/api/device") {
    return CannedReply::json(200, kDeviceList.dump());
  }
  if (request.target == gpuPath) return CannedReply::json(200, kGpu.dump());
  if (request.target == gpuPath + "/health") {
    Json health = kGpu["health"];
    health["deviceId"] = kGpu["id"];
    health["readings"] = kGpu["readings"];
    return CannedReply::json(200, health.dump());
  }
  if (request.target == "/api/device/bad-gateway") {
    CannedReply reply = CannedReply::json(502, "Bad Gateway\r\n<html>");
    reply.contentType = "text/html";
    return reply;
  }
  const Json error = {{"error",
                       {{"code", "NOT_FOUND"},
                        {"message", "no device with id 'missing'"},
                        {"details", Json::object()}}}};
  return CannedReply::json(404, error.dump());
}

using fakes::CliRun;

CliRun runDeviceops(std::vector<std::string> args) {
  return fakes::runCliInProcess(std::move(args), "9.9.9-test");
}

class CliTest : public ::testing::Test {
 protected:
  CliRun run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--url", server_.url()});
    return runDeviceops(std::move(args));
  }
  FakeHttpServer server_{fakeDeviceops};
};

// Sets an environment variable for one test, restoring the old value after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST_F(CliTest, DevicesPrintsATableAndUnavailableBackends) {
  const CliRun result = run({"devices"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.err, "");
  EXPECT_EQ(result.out,
            "ID                TYPE  NAME               VENDOR     BACKENDS               MEMORY"
            "  UTIL   TEMP  HEALTH\n"
            "cpu0              cpu   AMD EPYC 7B13      AMD        cpu         1000 B / 23.3 GiB"
            "   12%  45 °C  healthy\n"
            "gpu-3f2a9c1e0b7d  gpu   Simulated GPU 16G  deviceops  simulated  512 MiB / 16.0 GiB"
            "   50%  86 °C  degraded (simulated)\n"
            "backend nvidia: unavailable (cannot load libnvidia-ml.so.1: not found)\n");
  ASSERT_EQ(server_.requests().size(), 1u);
  EXPECT_EQ(server_.requests()[0].target, "/api/device");
}

TEST_F(CliTest, DevicesTypeFilterIsSentAsQuery) {
  EXPECT_EQ(run({"devices", "--type", "gpu"}).exitCode, kExitOk);
  ASSERT_EQ(server_.requests().size(), 1u);
  EXPECT_EQ(server_.requests()[0].target, "/api/device?type=gpu");
  EXPECT_EQ(run({"devices", "--type", "tpu"}).exitCode, kExitUsage);
}

TEST_F(CliTest, JsonPrintsTheServersJsonWhereverTheFlagStands) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"devices", "--json"}, {"--json", "devices"}}) {
    SCOPED_TRACE(args[0]);
    const CliRun result = run(args);
    EXPECT_EQ(result.exitCode, kExitOk) << result.err;
    EXPECT_EQ(Json::parse(result.out), kDeviceList);
    EXPECT_THAT(result.out, HasSubstr("\n  \"count\": 2"));  // indented
  }
}

TEST_F(CliTest, DeviceShowsFlattenedKeyValues) {
  const CliRun result = run({"device", "gpu-3f2a9c1e0b7d"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_THAT(result.out, ::testing::ContainsRegex("^id: +gpu-3f2a9c1e0b7d\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nsimulated: +yes\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nuuid: +-\n"));
  EXPECT_THAT(result.out, HasSubstr("memory.totalBytes:            16.0 GiB\n"
                                    "memory.usedBytes:             512 MiB\n"
                                    "memory.freeBytes:             15.5 GiB\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nreadings.temperatureCelsius: +86 °C\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nreadings.powerWatts: +-\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nreadings.clockMhz: +1410 MHz\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nhealth: +degraded\n"));
  EXPECT_THAT(result.out, HasSubstr("[degraded] temperatureNearSlowdown: temperature 86 °C is"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nproperties.vulkan.apiVersion: +1.3.255\n"));
  EXPECT_THAT(result.out,
              ::testing::ContainsRegex("\nproperties.vulkan.queueFamilies\\[0\\].count: +2\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nproperties.simulated.tags: +a, b\n"));
}

TEST_F(CliTest, MissingDeviceExitsOneWithTheServersMessage) {
  const CliRun result = run({"device", "missing"});
  EXPECT_EQ(result.exitCode, kExitServerError);
  EXPECT_EQ(result.err, "error: no device with id 'missing' (NOT_FOUND, HTTP 404)\n");
  EXPECT_EQ(result.out, "");
}

TEST_F(CliTest, ErrorWithoutJsonBodyShowsItsFirstLine) {
  const CliRun result = run({"device", "bad-gateway"});
  EXPECT_EQ(result.exitCode, kExitServerError);
  EXPECT_EQ(result.err, "error: Bad Gateway (HTTP 502)\n");
}

TEST_F(CliTest, DeviceIdIsPercentEncoded) {
  run({"device", "a/b c?"});
  ASSERT_EQ(server_.requests().size(), 1u);
  EXPECT_EQ(server_.requests()[0].target, "/api/device/a%2Fb%20c%3F");
}

TEST_F(CliTest, HealthOfOneDevice) {
  const CliRun result = run({"health", "gpu-3f2a9c1e0b7d"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(server_.requests().at(0).target, "/api/device/gpu-3f2a9c1e0b7d/health");
  EXPECT_THAT(result.out, ::testing::ContainsRegex("^device: +gpu-3f2a9c1e0b7d\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nhealth: +degraded\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex(
                              "\nhealth.reason: +\\[degraded\\] temperatureNearSlowdown: "));
}

TEST_F(CliTest, HealthOfAllDevicesHasARowPerReason) {
  const CliRun result = run({"health"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out,
            "ID                NAME               HEALTH                SEVERITY  REASON"
            "                   MESSAGE\n"
            "cpu0              AMD EPYC 7B13      healthy               -         -"
            "                        -\n"
            "gpu-3f2a9c1e0b7d  Simulated GPU 16G  degraded (simulated)  degraded  "
            "temperatureNearSlowdown  temperature 86 °C is within 5 °C of the slowdown "
            "threshold 90 °C\n");

  const CliRun json = run({"health", "--json"});
  EXPECT_EQ(json.exitCode, kExitOk) << json.err;
  const Json parsed = Json::parse(json.out);
  ASSERT_EQ(parsed.at("devices").size(), 2u);
  EXPECT_EQ(parsed["devices"][1]["deviceId"], "gpu-3f2a9c1e0b7d");
  EXPECT_EQ(parsed["devices"][1]["status"], "degraded");
  EXPECT_EQ(parsed["devices"][1]["reasons"], kGpu["health"]["reasons"]);
}

TEST_F(CliTest, VersionShowsClientAndServer) {
  const CliRun result = run({"version"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_THAT(result.out, ::testing::StartsWith("deviceops 9.9.9-test\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nserver: +deviceops 0.1.0\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\nonnxRuntimeVersion: +1.31.1\n"));
  EXPECT_THAT(result.out, ::testing::ContainsRegex("\ngitCommit: +abc123\n"));
}

TEST_F(CliTest, TokenFromFlagOrEnvironmentIsSent) {
  EXPECT_EQ(run({"--token", "t0k", "devices"}).exitCode, kExitOk);
  {
    ScopedEnv token("DEVICEOPS_TOKEN", "from-env");
    EXPECT_EQ(run({"devices"}).exitCode, kExitOk);
  }
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].headers.at("authorization"), "Bearer t0k");
  EXPECT_EQ(requests[1].headers.at("authorization"), "Bearer from-env");
}

TEST_F(CliTest, UrlComesFromTheEnvironmentWithoutTheFlag) {
  ScopedEnv url("DEVICEOPS_URL", server_.url());
  const CliRun result = runDeviceops({"devices"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(CliTest, UnexpectedShapesDoNotCrash) {
  FakeHttpServer odd([](const RecordedRequest&) {
    return CannedReply::json(200, R"({"devices":"oops","backends":[1,{"available":false}]})");
  });
  const CliRun result = runDeviceops({"--url", odd.url(), "devices"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out, "no devices\nbackend : unavailable\n");

  FakeHttpServer notJson([](const RecordedRequest&) { return CannedReply::json(200, "<html>"); });
  const CliRun bad = runDeviceops({"--url", notJson.url(), "devices"});
  EXPECT_EQ(bad.exitCode, kExitServerError);
  EXPECT_EQ(bad.err, "error: the answer to GET /api/device is not JSON: <html>\n");
}

TEST(CliNoServerTest, UnreachableServerExitsThree) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const std::string port = std::to_string(acceptor.local_endpoint().port());
  acceptor.close();
  const CliRun result = runDeviceops({"--url", "http://127.0.0.1:" + port, "devices"});
  EXPECT_EQ(result.exitCode, kExitUnreachable);
  EXPECT_EQ(result.err, "error: cannot connect to 127.0.0.1:" + port + ": Connection refused\n");
}

TEST(CliNoServerTest, TimeoutExitsThree) {
  FakeHttpServer silent([](const RecordedRequest&) {
    return CannedReply::withAction(CannedReply::Action::kNeverAnswer);
  });
  const CliRun result = runDeviceops({"--url", silent.url(), "--timeout", "0.2", "devices"});
  EXPECT_EQ(result.exitCode, kExitUnreachable);
  EXPECT_THAT(result.err, HasSubstr("timed out after 200 ms"));
}

TEST(CliNoServerTest, UsageErrorsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"devices", "--bogus"},
      {},
      {"nonsense"},
      {"device"},  // id required
      {"--timeout", "0", "devices"},
      {"--timeout", "soon", "devices"},
      {"--url", "https://127.0.0.1:5000", "devices"},
      {"--url", "http://host:99999", "devices"},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(::testing::PrintToString(args));
    const CliRun result = runDeviceops(args);
    EXPECT_EQ(result.exitCode, kExitUsage);
    EXPECT_NE(result.err, "");
    EXPECT_EQ(result.out, "");
  }
}

TEST(CliNoServerTest, HelpExitsZero) {
  const CliRun result = runDeviceops({"--help"});
  EXPECT_EQ(result.exitCode, kExitOk);
  EXPECT_THAT(result.out, HasSubstr("devices"));
  EXPECT_THAT(result.out, HasSubstr("DEVICEOPS_URL"));
  const CliRun sub = runDeviceops({"devices", "--help"});
  EXPECT_EQ(sub.exitCode, kExitOk);
  EXPECT_THAT(sub.out, HasSubstr("--type"));
}

TEST(FlattenJsonTest, DotsObjectsIndexesObjectArraysAndJoinsScalarArrays) {
  const Json value = Json::parse(R"({"a": {"b": 1, "c": [1, 2], "d": [{"e": null}], "f": {}},
                                     "usedBytes": 2048, "g": true})");
  std::vector<std::pair<std::string, std::string>> raw;
  flattenJson("p", value, raw);
  const std::vector<std::pair<std::string, std::string>> expectedRaw = {
      {"p.a.b", "1"},  {"p.a.c", "1, 2"}, {"p.a.d[0].e", ""},
      {"p.a.f", "{}"}, {"p.g", "true"},   {"p.usedBytes", "2048"}};
  EXPECT_EQ(raw, expectedRaw);

  std::vector<std::pair<std::string, std::string>> formatted;
  flattenJson("memory", Json{{"usedBytes", 2048}, {"ratioUnknown", nullptr}}, formatted, true);
  const std::vector<std::pair<std::string, std::string>> expectedFormatted = {
      {"memory.ratioUnknown", ""}, {"memory.usedBytes", "2.0 KiB"}};
  EXPECT_EQ(formatted, expectedFormatted);
}

}  // namespace
}  // namespace deviceops::client
