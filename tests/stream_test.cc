// The live feed (GET /api/stream), chart series (/api/integration/statistics?series=1) and the
// dashboard's static files, on the real daemon.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "test_daemon.h"

namespace deviceops::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path kModels = DEVICEOPS_TEST_MODELS_DIR;

struct SseEvent {
  std::optional<std::uint64_t> id;
  std::string type;
  json data;
};

// The events of a Server-Sent Events body (chunked framing removed by looking for the lines).
std::vector<SseEvent> parseSse(const std::string& raw) {
  std::vector<SseEvent> events;
  SseEvent current;
  bool any = false;
  std::istringstream lines(raw);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("id: ", 0) == 0) {
      current.id = std::stoull(line.substr(4));
      any = true;
    } else if (line.rfind("event: ", 0) == 0) {
      current.type = line.substr(7);
      any = true;
    } else if (line.rfind("data: ", 0) == 0) {
      current.data = json::parse(line.substr(6), nullptr, false);
      any = true;
    } else if (line.empty() && any) {
      events.push_back(current);
      current = {};
      any = false;
    }
  }
  return events;
}

// Opens GET `target` (with `headers`) and reads for `duration`.
std::string readStream(int port, const std::string& target, std::chrono::milliseconds duration,
                       const std::string& headers = "") {
  Connection connection(port);
  EXPECT_TRUE(connection.connected());
  connection.send("GET " + target + " HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n");
  return connection.readUntilClosed(duration);
}

std::vector<SseEvent> ofType(const std::vector<SseEvent>& events, const std::string& type) {
  std::vector<SseEvent> out;
  for (const SseEvent& event : events) {
    if (event.type == type) out.push_back(event);
  }
  return out;
}

std::string fastTelemetry() {
  return "[telemetry]\nintervalSeconds = 1\n[inference]\nmodelRoots = [\"" + kModels.string() +
         "\"]\n";
}

TEST(StreamIntegrationTest, HelloThenSamplesOfEveryDeviceAndEventsAsTheyHappen) {
  TestDaemon daemon(fastTelemetry());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  std::thread loader([&] {
    std::this_thread::sleep_for(1500ms);
    daemon.post("/api/inference/model/load",
                {{"path", (kModels / "mlp.onnx").string()}, {"name", "streamed"}});
  });
  const std::string raw = readStream(daemon.port(), "/api/stream", 3500ms);
  loader.join();
  EXPECT_NE(raw.find("Content-Type: text/event-stream"), std::string::npos) << raw.substr(0, 300);
  const std::vector<SseEvent> events = parseSse(raw);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().type, "hello");
  EXPECT_FALSE(events.front().id.has_value());
  EXPECT_EQ(events.front().data["telemetry"], true);
  EXPECT_DOUBLE_EQ(events.front().data["intervalSeconds"].get<double>(), 1.0);

  const auto samples = ofType(events, "samples");
  ASSERT_GE(samples.size(), 2u) << raw;
  std::set<std::string> listed;
  const json inventory = daemon.get("/api/device").json();
  for (const json& device : inventory["devices"]) listed.insert(device["id"].get<std::string>());
  std::set<std::string> sampled;
  for (const json& device : samples.back().data["devices"]) {
    sampled.insert(device["deviceId"].get<std::string>());
    EXPECT_TRUE(device.contains("memoryTotalBytes"));
    EXPECT_TRUE(device["health"].contains("status"));
  }
  EXPECT_EQ(sampled, listed);
  // Numbered, increasing by one item at a time (nothing else was published in between).
  std::uint64_t previous = 0;
  for (const SseEvent& event : events) {
    if (!event.id) continue;
    EXPECT_GT(*event.id, previous);
    previous = *event.id;
  }
  const auto loaded = ofType(events, "event");
  bool sawLoad = false;
  for (const SseEvent& event : loaded) {
    sawLoad =
        sawLoad || (event.data["type"] == "model.loaded" &&
                    event.data["message"].get<std::string>().find("streamed") != std::string::npos);
  }
  EXPECT_TRUE(sawLoad) << raw;
}

TEST(StreamIntegrationTest, ResumesFromLastEventIdAndResetsOnAnUnknownOne) {
  TestDaemon daemon(fastTelemetry());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const auto first = parseSse(readStream(daemon.port(), "/api/stream", 2500ms));
  const auto firstSamples = ofType(first, "samples");
  ASSERT_FALSE(firstSamples.empty());
  const std::uint64_t seen = *firstSamples.front().id;

  // Everything after `seen` comes at once (it is still kept), in order.
  const auto resumed = parseSse(readStream(daemon.port(), "/api/stream", 800ms,
                                           "Last-Event-ID: " + std::to_string(seen) + "\r\n"));
  std::vector<std::uint64_t> ids;
  for (const SseEvent& event : resumed) {
    if (event.id) ids.push_back(*event.id);
    EXPECT_NE(event.type, "reset");
  }
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids.front(), seen + 1);
  // The query form works the same.
  const auto byQuery =
      parseSse(readStream(daemon.port(), "/api/stream?lastEventId=" + std::to_string(seen), 500ms));
  ASSERT_GE(byQuery.size(), 2u);
  EXPECT_EQ(byQuery[1].id.value_or(0), seen + 1);

  // An id this daemon never gave out (a previous daemon's, or long gone): reset, no replay.
  for (const std::string id : {"5", "99999999999999999"}) {
    const auto reset =
        parseSse(readStream(daemon.port(), "/api/stream", 500ms, "Last-Event-ID: " + id + "\r\n"));
    ASSERT_GE(reset.size(), 2u) << id;
    EXPECT_EQ(reset[1].type, "reset") << id;
    ASSERT_TRUE(reset[1].id.has_value());
    EXPECT_GT(*reset[1].id, seen) << "the reset carries the current number";
    for (std::size_t i = 2; i < reset.size(); ++i) EXPECT_GT(*reset[i].id, *reset[1].id);
  }
}

TEST(StreamIntegrationTest, TopicsFilterAndBadInput) {
  TestDaemon daemon(fastTelemetry());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const auto onlyEvents = parseSse(readStream(daemon.port(), "/api/stream?topics=events", 2500ms));
  EXPECT_TRUE(ofType(onlyEvents, "samples").empty());
  EXPECT_EQ(onlyEvents.front().type, "hello");
  const auto onlySamples =
      parseSse(readStream(daemon.port(), "/api/stream?topics=samples", 2500ms));
  EXPECT_FALSE(ofType(onlySamples, "samples").empty());
  for (const std::string bad : {"gpus", "samples,", "", "samples,events,x"}) {
    const RawResponse response = daemon.get("/api/stream?topics=" + bad);
    EXPECT_EQ(response.status, 400) << bad;
    EXPECT_EQ(response.json()["error"]["details"]["parameter"], "topics") << bad;
  }
  // A malformed Last-Event-ID is "none" (from now), not an error.
  const auto garbage =
      parseSse(readStream(daemon.port(), "/api/stream", 500ms, "Last-Event-ID: abc\r\n"));
  ASSERT_FALSE(garbage.empty());
  EXPECT_EQ(garbage.front().type, "hello");
  EXPECT_TRUE(ofType(garbage, "reset").empty());
}

TEST(StreamIntegrationTest, WithoutTelemetryTheStreamCarriesEventsOnly) {
  TestDaemon daemon("[telemetry]\nenabled = false\n[inference]\nmodelRoots = [\"" +
                    kModels.string() + "\"]\n");
  ASSERT_TRUE(daemon.started()) << daemon.log();
  std::thread loader([&] {
    std::this_thread::sleep_for(500ms);
    daemon.post("/api/inference/model/load",
                {{"path", (kModels / "mlp.onnx").string()}, {"name", "quiet"}});
  });
  const auto events = parseSse(readStream(daemon.port(), "/api/stream", 2500ms));
  loader.join();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.front().data["telemetry"], false);
  EXPECT_TRUE(events.front().data["node"].is_null());
  EXPECT_TRUE(ofType(events, "samples").empty());
  bool sawLoad = false;
  for (const SseEvent& event : ofType(events, "event"))
    sawLoad = sawLoad || event.data["type"] == "model.loaded";
  EXPECT_TRUE(sawLoad);
}

TEST(StreamIntegrationTest, AnOpenStreamDoesNotHoldUpShutdown) {
  TestDaemon daemon(fastTelemetry());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  Connection connection(daemon.port());
  connection.send("GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(300ms);
  const auto before = std::chrono::steady_clock::now();
  EXPECT_EQ(daemon.stop(), 0);
  // The shutdown grace is 10 s; the stream ends at once instead of running it out.
  EXPECT_LT(std::chrono::steady_clock::now() - before, 6s);
  EXPECT_TRUE(connection.closedWithin(2s));
}

TEST(StreamIntegrationTest, StatisticsSeriesHasOnePointPerSample) {
  TestDaemon daemon(fastTelemetry());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  std::this_thread::sleep_for(3500ms);
  const RawResponse response = daemon.get("/api/integration/statistics/cpu0?window=10m&series=1");
  ASSERT_EQ(response.status, 200) << response.body;
  const json body = response.json();
  const json& series = body["series"];
  EXPECT_EQ(series["resolution"], "raw");
  const std::size_t points = series["time"].size();
  EXPECT_GE(points, 2u);
  EXPECT_EQ(points, body["sampleCount"].get<std::size_t>());
  for (const char* key : {"utilizationRatio", "memoryUsedBytes", "temperatureCelsius", "powerWatts",
                          "throttled", "health"}) {
    EXPECT_EQ(series[key].size(), points) << key;
  }
  for (std::size_t i = 1; i < points; ++i)
    EXPECT_GT(series["time"][i].get<double>(), series["time"][i - 1].get<double>());
  EXPECT_EQ(series["health"][0], "healthy");
  EXPECT_TRUE(series["memoryUsedBytes"][0].is_number());
  // Rollup resolution: bucket averages, one per minute at most.
  const json minute =
      daemon.get("/api/integration/statistics/cpu0?window=1h&resolution=1m&series=true").json();
  EXPECT_EQ(minute["series"]["resolution"], "1m");
  EXPECT_LE(minute["series"]["time"].size(), 2u);
  // Without series=1 there is none; a wrong value is a 400.
  EXPECT_FALSE(daemon.get("/api/integration/statistics/cpu0").json().contains("series"));
  const RawResponse bad = daemon.get("/api/integration/statistics/cpu0?series=yes");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.json()["error"]["details"]["parameter"], "series");
}

TEST(DashboardIntegrationTest, PageAndAssetsWithEtagGzipAndNoTokenNeeded) {
  const std::string token = "dashboard-test-token-0123456789";
  TestDaemon daemon("[auth]\nmode = \"always\"\n[[auth.tokens]]\nname = \"t\"\ntoken = \"" + token +
                    "\"\nscope = \"read\"\n");
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const RawResponse page = daemon.get("/");
  ASSERT_EQ(page.status, 200) << page.body.substr(0, 300);
  EXPECT_EQ(page.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("/assets/app.js"), std::string::npos);
  const std::string etag = page.headers.at("etag");
  EXPECT_EQ(daemon.request("GET", "/", "", {{"If-None-Match", etag}}).status, 304);

  const RawResponse plain = daemon.get("/assets/app.js");
  ASSERT_EQ(plain.status, 200);
  EXPECT_EQ(plain.headers.count("content-encoding"), 0u);
  const RawResponse gzipped =
      daemon.request("GET", "/assets/app.js", "", {{"Accept-Encoding", "gzip, deflate"}});
  ASSERT_EQ(gzipped.status, 200);
  EXPECT_EQ(gzipped.headers.at("content-encoding"), "gzip");
  ASSERT_GE(gzipped.body.size(), 2u);
  EXPECT_EQ(static_cast<unsigned char>(gzipped.body[0]), 0x1f);  // the gzip magic
  EXPECT_EQ(static_cast<unsigned char>(gzipped.body[1]), 0x8b);
  EXPECT_LT(gzipped.body.size(), plain.body.size());
  EXPECT_EQ(daemon.get("/assets/app.css").status, 200);
  EXPECT_EQ(daemon.get("/assets/..%2F..%2Fpackage.json").status, 404);
  EXPECT_EQ(daemon.get("/assets/nope.js").status, 404);
  // The page loads without a token; the API behind it does not answer without one.
  EXPECT_EQ(daemon.get("/api/stream").status, 401);
  EXPECT_EQ(daemon.get("/openapi.json").status, 200);
  EXPECT_EQ(daemon.get("/swagger/").status, 200);
}

}  // namespace
}  // namespace deviceops::testing
