// Telemetry through the real daemon: sampling at 1 s with simulated devices, the integration
// endpoints (and their bad input), /api/events, /metrics parsed line by line, /ready, the CLI,
// and the PostgreSQL store going away and coming back under a running daemon.
#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "store/testing/postgres_server.h"
#include "test_daemon.h"

namespace deviceops::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

const char* kConfig = R"(
[devices]
backends = ["cpu"]
[[devices.simulated]]
count = 1
name = "Cool GPU"
memory = "16GiB"
temperatureCelsius = 41.0
utilizationRatio = 0.25
[[devices.simulated]]
count = 1
name = "Hot GPU"
temperatureCelsius = 93.0
slowdownTemperatureCelsius = 90.0
utilizationRatio = 0.75
[telemetry]
intervalSeconds = 1
nodeName = "test-node"
)";

template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 15s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (predicate()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return predicate();
}

json deviceIn(const json& health, const std::string& id) {
  for (const json& device : health["devices"]) {
    if (device["deviceId"] == id) return device;
  }
  return nullptr;
}

class TelemetryDaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon_ = new TestDaemon(kConfig);
    ASSERT_TRUE(daemon_->started()) << daemon_->log();
    // Three ticks: enough samples for statistics.
    ASSERT_TRUE(eventually([] {
      const json health = daemon_->get("/api/integration/health").json();
      const json cool = deviceIn(health, "sim-0");
      if (cool.is_null()) return false;
      const json stats = daemon_->get("/api/integration/statistics/sim-0?window=1h").json();
      return stats.value("sampleCount", 0) >= 3;
    })) << daemon_->log();
  }
  static void TearDownTestSuite() {
    delete daemon_;
    daemon_ = nullptr;
  }
  static TestDaemon* daemon_;
};
TestDaemon* TelemetryDaemonTest::daemon_ = nullptr;

TEST_F(TelemetryDaemonTest, HealthReportsTheLatestSampleOfEveryDevice) {
  const RawResponse response = daemon_->get("/api/integration/health");
  ASSERT_EQ(response.status, 200) << response.body;
  const json health = response.json();
  EXPECT_EQ(health["node"], "test-node");
  EXPECT_EQ(health["source"], "store");
  EXPECT_EQ(health["intervalSeconds"], 1.0);
  const json cool = deviceIn(health, "sim-0");
  ASSERT_FALSE(cool.is_null()) << health.dump();
  EXPECT_EQ(cool["name"], "Cool GPU");
  EXPECT_EQ(cool["temperatureCelsius"], 41.0);
  EXPECT_EQ(cool["health"]["status"], "healthy");
  EXPECT_FALSE(cool["stale"]);
  EXPECT_LT(cool["ageSeconds"].get<double>(), 5.0);
  EXPECT_GE(cool["ageSeconds"].get<double>(), 0.0);
  const json hot = deviceIn(health, "sim-1");
  ASSERT_FALSE(hot.is_null());
  EXPECT_EQ(hot["health"]["status"], "critical");
  EXPECT_EQ(hot["health"]["reasons"][0]["code"], "temperatureAtSlowdown");
  EXPECT_FALSE(deviceIn(health, "cpu0").is_null());

  const RawResponse one = daemon_->get("/api/integration/health/sim-1");
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(one.json()["deviceId"], "sim-1");
  EXPECT_EQ(one.json()["source"], "store");
  const RawResponse unknown = daemon_->get("/api/integration/health/gpu-nope");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.json()["error"]["code"], "NOT_FOUND");
}

TEST_F(TelemetryDaemonTest, StatisticsOverWindowsAndBadInput) {
  const RawResponse response = daemon_->get("/api/integration/statistics/sim-0?window=1h");
  ASSERT_EQ(response.status, 200) << response.body;
  const json s = response.json();
  EXPECT_EQ(s["deviceId"], "sim-0");
  EXPECT_EQ(s["resolution"], "raw");
  EXPECT_EQ(s["p95Method"], "exact");
  EXPECT_GE(s["sampleCount"].get<int>(), 3);
  EXPECT_EQ(s["temperatureCelsius"]["min"], 41.0);
  EXPECT_EQ(s["temperatureCelsius"]["max"], 41.0);
  EXPECT_EQ(s["temperatureCelsius"]["p95"], 41.0);
  EXPECT_DOUBLE_EQ(s["utilizationRatio"]["avg"].get<double>(), 0.25);
  EXPECT_TRUE(s["energy"].is_null());  // simulated devices report no power
  EXPECT_DOUBLE_EQ(s["windowSeconds"].get<double>(), 3600);
  EXPECT_GT(s["coverageRatio"].get<double>(), 0);
  EXPECT_LE(s["coverageRatio"].get<double>(), 1);
  EXPECT_GE(s["healthSeconds"]["healthy"].get<double>(), 2.0);
  EXPECT_EQ(s["healthSeconds"]["critical"], 0.0);

  const json day = daemon_->get("/api/integration/statistics/sim-1?window=24h").json();
  EXPECT_EQ(day["resolution"], "1m");
  EXPECT_EQ(day["p95Method"], "bucketAverages");
  EXPECT_GE(day["healthSeconds"]["critical"].get<double>(), 2.0);
  EXPECT_EQ(daemon_->get("/api/integration/statistics/sim-1?window=30d").json()["resolution"],
            "1h");
  EXPECT_EQ(daemon_->get("/api/integration/statistics/sim-0?window=7d").json()["resolution"], "1h");
  const RawResponse range = daemon_->get(
      "/api/integration/statistics/"
      "sim-0?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00.5%2B01:00");
  ASSERT_EQ(range.status, 200) << range.body;
  EXPECT_EQ(range.json()["sampleCount"], 0);
  EXPECT_EQ(range.json()["from"], "2020-01-01T00:00:00.000Z");

  for (const char* bad :
       {"window=1y", "window=abc", "window=-1h", "window=0h", "window=500d", "from=yesterday",
        "from=2026-13-01T00:00:00Z", "from=2026-01-01T00:00:00Z&to=2025-01-01T00:00:00Z",
        "window=1h&from=2026-01-01T00:00:00Z", "to=2026-01-01T00:00:00Z", "resolution=5m"}) {
    SCOPED_TRACE(bad);
    const RawResponse refused =
        daemon_->get(std::string("/api/integration/statistics/sim-0?") + bad);
    EXPECT_EQ(refused.status, 400) << refused.body;
    EXPECT_EQ(refused.json()["error"]["code"], "INVALID_ARGUMENT");
  }
  EXPECT_EQ(daemon_->get("/api/integration/statistics/nope?window=1h").status, 404);
}

TEST_F(TelemetryDaemonTest, AvailabilityWithRequirements) {
  const json all = daemon_->get("/api/integration/availability").json();
  ASSERT_EQ(all["devices"].size(), 3u) << all.dump();
  const json cool = deviceIn(all, "sim-0");
  EXPECT_TRUE(cool["available"]);
  EXPECT_TRUE(cool["reasons"].empty());
  EXPECT_GT(cool["ledgerAvailableBytes"].get<std::uint64_t>(), 0u);
  const json hot = deviceIn(all, "sim-1");
  EXPECT_FALSE(hot["available"]);
  EXPECT_EQ(hot["reasons"][0]["code"], "healthCritical");

  const json gpus =
      daemon_->get("/api/integration/availability?type=gpu&minFreeBytes=4GiB&maxUtilization=0.5")
          .json();
  EXPECT_EQ(gpus["requirements"]["minFreeBytes"], 4ull << 30);
  EXPECT_EQ(gpus["availableCount"], 1);
  EXPECT_EQ(deviceIn(gpus, "cpu0")["reasons"][0]["code"], "typeMismatch");
  const json big = daemon_->get("/api/integration/availability?minFreeBytes=1TiB").json();
  EXPECT_EQ(deviceIn(big, "sim-0")["reasons"][0]["code"], "insufficientMemory");
  for (const char* bad :
       {"minFreeBytes=lots", "maxUtilization=2", "maxUtilization=x", "type=tpu"}) {
    SCOPED_TRACE(bad);
    EXPECT_EQ(daemon_->get(std::string("/api/integration/availability?") + bad).status, 400);
  }
}

TEST_F(TelemetryDaemonTest, EventsFromTheLedgerAndBadInput) {
  // A refused allocation is an event (MemoryService publishes to the telemetry sink).
  const RawResponse refused =
      daemon_->post("/api/memory/allocate", {{"deviceId", "sim-0"}, {"size", "15GiB"}});
  EXPECT_EQ(refused.status, 409) << refused.body;
  ASSERT_TRUE(eventually([] {
    const json events = daemon_->get("/api/events?type=memory&deviceId=sim-0").json();
    return events.value("count", 0) >= 1;
  }));
  const json events = daemon_->get("/api/events?type=memory.refused&since=1h&limit=5").json();
  ASSERT_GE(events["events"].size(), 1u);
  const json& event = events["events"][0];
  EXPECT_EQ(event["type"], "memory.refused");
  EXPECT_EQ(event["deviceId"], "sim-0");
  EXPECT_EQ(event["node"], "test-node");
  EXPECT_FALSE(event["message"].get<std::string>().empty());
  EXPECT_EQ(daemon_->get("/api/events?since=2100-01-01T00:00:00Z").json()["count"], 0);
  for (const char* bad : {"since=yesterday", "since=2026-02-30T00:00:00Z", "limit=0",
                          "since=2999-01-01T00:00:00Z", "since=1h30m", "limit=abc", "type="}) {
    SCOPED_TRACE(bad);
    const RawResponse response = daemon_->get(std::string("/api/events?") + bad);
    EXPECT_EQ(response.status, 400) << response.body;
  }
}

TEST_F(TelemetryDaemonTest, MetricsIsPrometheusTextFormat) {
  const RawResponse response = daemon_->get("/metrics");
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.at("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::regex sampleLine(
      R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$)re");
  const std::regex typeLine(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter|histogram|summary|untyped)$)");
  std::set<std::string> typed;
  std::map<std::string, double> values;  // "name{labels}" -> value
  std::istringstream lines(response.body);
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    SCOPED_TRACE(line);
    ASSERT_FALSE(line.empty());
    std::smatch match;
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (std::regex_match(line, match, typeLine)) {
      EXPECT_TRUE(typed.insert(match[1]).second) << "TYPE given twice";
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, match, sampleLine));
    std::string family = match[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (!typed.count(family) && family.ends_with(suffix)) {
        family = family.substr(0, family.size() - std::string(suffix).size());
      }
    }
    EXPECT_TRUE(typed.count(family)) << "sample before its # TYPE";
    const std::size_t space = line.rfind(' ');
    values[line.substr(0, space)] = std::stod(line.substr(space + 1));
    ++samples;
  }
  EXPECT_GT(samples, 10);
  EXPECT_EQ(
      values.at(
          R"(deviceops_device_temperature_celsius{device="sim-0",vendor="Simulated",name="Cool GPU",node="test-node"})"),
      41.0);
  EXPECT_EQ(
      values.at(
          R"(deviceops_device_health_status{device="sim-1",vendor="Simulated",name="Hot GPU",node="test-node"})"),
      2.0);
  EXPECT_EQ(
      values.at(
          R"(deviceops_device_memory_total_bytes{device="sim-0",vendor="Simulated",name="Cool GPU",node="test-node"})"),
      static_cast<double>(16ull << 30));
  EXPECT_EQ(
      values.at(
          R"(deviceops_device_utilization_ratio{device="sim-1",vendor="Simulated",name="Hot GPU",node="test-node"})"),
      0.75);
  for (const char* family :
       {"deviceops_device_memory_used_bytes", "deviceops_device_power_watts",
        "deviceops_memory_held_bytes", "deviceops_telemetry_samples_written_total",
        "deviceops_telemetry_samples_lost_total", "deviceops_telemetry_buffered_items",
        "deviceops_telemetry_store_up"}) {
    EXPECT_TRUE(typed.count(family)) << family;
  }
  EXPECT_GE(
      values.at(R"(deviceops_telemetry_samples_written_total{node="test-node",store="sqlite"})"),
      3.0);
  EXPECT_EQ(values.at(R"(deviceops_telemetry_store_up{node="test-node",store="sqlite"})"), 1.0);
  EXPECT_EQ(values.at(R"(deviceops_memory_held_bytes{device="sim-0",kind="raw",node="test-node"})"),
            0.0);
}

TEST_F(TelemetryDaemonTest, ReadyReportsTheTelemetryStore) {
  const RawResponse ready = daemon_->get("/ready");
  ASSERT_EQ(ready.status, 200);
  const json body = ready.json();
  EXPECT_EQ(body["status"], "ready");
  EXPECT_EQ(body["checks"]["telemetry"]["status"], "ok");
  EXPECT_EQ(body["checks"]["telemetry"]["store"], "sqlite");
  EXPECT_EQ(body["checks"]["telemetry"]["lostSamples"], 0);
}

TEST_F(TelemetryDaemonTest, CliStatsEventsAvailable) {
  const std::string url = "http://127.0.0.1:" + std::to_string(daemon_->port());
  auto [statsCode, stats] =
      runProgram({DEVICEOPS_CLI_PATH, "--url", url, "stats", "sim-0", "--window", "24h"});
  EXPECT_EQ(statsCode, 0) << stats;
  EXPECT_NE(stats.find("temperature"), std::string::npos) << stats;
  EXPECT_NE(stats.find("41 °C"), std::string::npos) << stats;
  EXPECT_NE(stats.find("1m"), std::string::npos) << stats;
  auto [jsonCode, statsJson] =
      runProgram({DEVICEOPS_CLI_PATH, "--url", url, "--json", "stats", "sim-0"});
  EXPECT_EQ(jsonCode, 0);
  EXPECT_EQ(json::parse(statsJson)["resolution"], "raw");
  auto [badCode, bad] =
      runProgram({DEVICEOPS_CLI_PATH, "--url", url, "stats", "sim-0", "--window", "forever"});
  EXPECT_EQ(badCode, 1) << bad;
  EXPECT_NE(bad.find("INVALID_ARGUMENT"), std::string::npos) << bad;

  auto [eventsCode, events] =
      runProgram({DEVICEOPS_CLI_PATH, "--url", url, "events", "--since", "1h", "--type", "memory"});
  EXPECT_EQ(eventsCode, 0) << events;
  EXPECT_TRUE(events.find("memory.refused") != std::string::npos ||
              events.find("no events") != std::string::npos)
      << events;

  auto [availableCode, available] =
      runProgram({DEVICEOPS_CLI_PATH, "--url", url, "available", "--min-free", "4GiB", "--type",
                  "gpu", "--max-util", "0.5"});
  EXPECT_EQ(availableCode, 0) << available;
  EXPECT_NE(available.find("sim-0"), std::string::npos) << available;
  EXPECT_NE(available.find("device is a cpu, not a gpu"), std::string::npos) << available;
  auto [availableJsonCode, availableJson] =
      runProgram({DEVICEOPS_CLI_PATH, "--url", url, "--json", "available", "--type", "gpu"});
  EXPECT_EQ(availableJsonCode, 0);
  EXPECT_EQ(json::parse(availableJson)["availableCount"], 1);
}

// The daemon on PostgreSQL: the server goes away under it (/ready degraded, samples buffered)
// and comes back (everything written, nothing lost).
TEST(TelemetryPostgresDaemonTest, StoreOutageIsBufferedAndReported) {
  PostgresServer server;
  Status started = server.start();
  ASSERT_TRUE(started.ok()) << started.error().message;
  auto connection = server.createDatabase("daemon");
  ASSERT_TRUE(connection.ok()) << connection.error().message;
  const std::string config =
      std::string(kConfig) + "store = \"postgresql\"\npostgresqlUrl = \"" + *connection + "\"\n";
  TestDaemon daemon(config);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const auto telemetryCheck = [&] { return daemon.get("/ready").json()["checks"]["telemetry"]; };
  ASSERT_TRUE(eventually([&] {
    const json metrics = daemon.get("/api/integration/statistics/sim-0?window=1h").json();
    return metrics.value("sampleCount", 0) >= 2;
  })) << daemon.log();
  EXPECT_EQ(telemetryCheck()["store"], "postgresql");
  EXPECT_EQ(telemetryCheck()["status"], "ok");

  ASSERT_TRUE(server.stop().ok());
  ASSERT_TRUE(eventually([&] { return telemetryCheck()["status"] == "degraded"; })) << daemon.log();
  const RawResponse ready = daemon.get("/ready");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(ready.json()["status"], "degraded");
  EXPECT_FALSE(ready.json()["checks"]["telemetry"]["error"].get<std::string>().empty());
  ASSERT_TRUE(eventually([&] { return telemetryCheck()["bufferedItems"].get<int>() >= 6; }));
  // Reads fall back to the sampler's memory while the store is away.
  const json health = daemon.get("/api/integration/health").json();
  EXPECT_EQ(health["source"], "memory");
  EXPECT_EQ(daemon.get("/api/integration/statistics/sim-0?window=1h").status, 503);

  ASSERT_TRUE(server.start().ok());
  ASSERT_TRUE(eventually(
      [&] {
        const json check = telemetryCheck();
        return check["status"] == "ok" && check["bufferedItems"] == 0;
      },
      30s))
      << daemon.log();
  EXPECT_EQ(telemetryCheck()["lostSamples"], 0);
  // Every tick reached the store: samples taken == samples written, per /metrics.
  const std::string metrics = daemon.get("/metrics").body;
  const auto valueOf = [&](const std::string& name) {
    std::smatch match;
    const std::regex pattern(name + R"(\{[^}]*\} ([0-9.e+]+))");
    return std::regex_search(metrics, match, pattern) ? std::stod(match[1]) : -1.0;
  };
  const double taken = valueOf("deviceops_telemetry_samples_taken_total");
  const double written = valueOf("deviceops_telemetry_samples_written_total");
  EXPECT_GT(taken, 6);
  EXPECT_LE(taken - written, 3);  // at most the tick in flight right now
  EXPECT_EQ(valueOf("deviceops_telemetry_samples_lost_total"), 0);
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

}  // namespace
}  // namespace deviceops::testing
