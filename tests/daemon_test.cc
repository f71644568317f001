// The real daemon over real sockets: devices, error bodies, limits, timeouts, concurrency,
// shutdown, configuration errors.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "test_daemon.h"

namespace deviceops::testing {
namespace {

using namespace std::chrono_literals;

void expectErrorBody(const RawResponse& response, int status, const std::string& code) {
  EXPECT_EQ(response.status, status) << response.body;
  EXPECT_EQ(response.headers.at("content-type"), "application/json");
  auto body = response.json();
  EXPECT_EQ(body["error"]["code"], code) << response.body;
  EXPECT_FALSE(body["error"]["message"].get<std::string>().empty());
  EXPECT_TRUE(body["error"]["details"].is_object());
}

class DaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    daemon = new TestDaemon(R"(
[server]
maxBodyBytes = "64KiB"
headerTimeoutSeconds = 1
bodyTimeoutSeconds = 2
idleTimeoutSeconds = 3
[[devices.simulated]]
count = 5
name = "Simulated RX 6800"
memory = "16GiB"
)");
  }
  static void TearDownTestSuite() {
    delete daemon;
    daemon = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(daemon->started()) << daemon->log(); }
  static TestDaemon* daemon;
};
TestDaemon* DaemonTest::daemon = nullptr;

TEST_F(DaemonTest, ListsCpuLavapipeAndSimulatedDevices) {
  RawResponse response = daemon->get("/api/device");
  ASSERT_EQ(response.status, 200) << response.body;
  auto body = response.json();
  std::map<std::string, nlohmann::json> byId;
  for (const auto& device : body["devices"]) byId[device["id"]] = device;
  ASSERT_TRUE(byId.count("cpu0")) << response.body;
  EXPECT_EQ(byId["cpu0"]["type"], "cpu");
  EXPECT_GT(byId["cpu0"]["memory"]["totalBytes"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(byId["cpu0"]["simulated"], false);

  bool lavapipe = false;
  for (const auto& [id, device] : byId) {
    if (device["backends"][0] == "vulkan" && device["vendor"] == "Mesa") lavapipe = true;
  }
  EXPECT_TRUE(lavapipe) << "Mesa's lavapipe Vulkan device should be listed: " << response.body;

  for (int i = 0; i < 5; ++i) {
    const std::string id = "sim-" + std::to_string(i);
    ASSERT_TRUE(byId.count(id)) << id;
    EXPECT_EQ(byId[id]["simulated"], true);
    EXPECT_EQ(byId[id]["memory"]["totalBytes"], 16ull << 30);
  }
  EXPECT_EQ(body["count"], body["devices"].size());
  bool nvidiaReported = false;
  for (const auto& backend : body["backends"]) {
    if (backend["name"] == "nvidia") nvidiaReported = true;
  }
  EXPECT_TRUE(nvidiaReported);
}

TEST_F(DaemonTest, TypeFilterOneDeviceAndHealth) {
  auto gpus = daemon->get("/api/device?type=gpu").json();
  for (const auto& device : gpus["devices"]) EXPECT_EQ(device["type"], "gpu");
  auto cpus = daemon->get("/api/device?type=cpu").json();
  ASSERT_EQ(cpus["devices"].size(), 1u);

  RawResponse one = daemon->get("/api/device/cpu0");
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(one.json()["id"], "cpu0");
  EXPECT_TRUE(one.json()["health"]["status"].is_string());

  RawResponse health = daemon->get("/api/device/sim-2/health");
  ASSERT_EQ(health.status, 200);
  EXPECT_EQ(health.json()["deviceId"], "sim-2");
  EXPECT_EQ(health.json()["status"], "healthy");
}

TEST_F(DaemonTest, BadRequestsGetJsonErrors) {
  expectErrorBody(daemon->get("/api/device/no-such-device"), 404, "NOT_FOUND");
  expectErrorBody(daemon->get("/api/device/no-such-device/health"), 404, "NOT_FOUND");
  expectErrorBody(daemon->get("/api/nothing-here"), 404, "NOT_FOUND");
  expectErrorBody(daemon->request("DELETE", "/api/device"), 405, "METHOD_NOT_ALLOWED");
  expectErrorBody(daemon->get("/api/device?type=tpu"), 400, "INVALID_ARGUMENT");
  expectErrorBody(daemon->get("/api/device/%zz"), 400, "INVALID_ARGUMENT");
}

TEST_F(DaemonTest, OversizedBodiesAndHeadersGet413) {
  expectErrorBody(daemon->request("POST", "/api/device", std::string(70 * 1024, 'x')), 413,
                  "PAYLOAD_TOO_LARGE");
  Connection declared(daemon->port());
  declared.send("POST /api/device HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n");
  auto response = declared.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  Connection chunked(daemon->port());
  std::string body = "POST /api/device HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i) body += "1000\r\n" + std::string(4096, 'y') + "\r\n";
  chunked.send(body);
  response = chunked.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  Connection header(daemon->port());
  header.send("GET /health HTTP/1.1\r\nX-Big: " + std::string(32 * 1024, 'h') + "\r\n\r\n");
  response = header.read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
}

TEST_F(DaemonTest, MalformedHttpGets400AndTheDaemonKeepsServing) {
  const char* garbage[] = {"GARBAGE\r\n\r\n", "GET\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
                           "GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                           "\x01\x02\x03\xff\r\n\r\n"};
  for (const char* bytes : garbage) {
    SCOPED_TRACE(bytes);
    Connection connection(daemon->port());
    connection.send(bytes);
    auto response = connection.read(5s);
    if (response) {
      EXPECT_EQ(response->status, 400);
      EXPECT_EQ(response->json()["error"]["code"], "INVALID_ARGUMENT");
    }
    EXPECT_TRUE(connection.closedWithin(5s));
  }
  EXPECT_EQ(daemon->get("/health").status, 200);
}

TEST_F(DaemonTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  Connection connection(daemon->port());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(connection.send("GET /api/device/cpu0 HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto response = connection.read();
    ASSERT_TRUE(response) << "request " << i;
    EXPECT_EQ(response->status, 200);
  }
  // Pipelined: two requests in one write.
  connection.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_TRUE(connection.read());
  EXPECT_TRUE(connection.read());
}

TEST_F(DaemonTest, StalledClientsAreCutOffWithoutBlockingOthers) {
  Connection slowHeader(daemon->port());
  slowHeader.send("GET /api/device HTTP/1.1\r\nHost:");  // never finishes the header
  Connection idle(daemon->port());                       // never sends anything
  Connection slowBody(daemon->port());
  slowBody.send("POST /api/device HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
  // Others are served meanwhile.
  EXPECT_EQ(daemon->get("/api/device/cpu0").status, 200);
  EXPECT_TRUE(slowHeader.closedWithin(4s));  // header timeout 1 s
  EXPECT_TRUE(idle.closedWithin(6s));        // idle timeout 3 s
  EXPECT_TRUE(slowBody.closedWithin(5s));    // body timeout 2 s
}

TEST_F(DaemonTest, ConcurrentClientsAllGetAnswers) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 32; ++t) {
    threads.emplace_back([&] {
      Connection connection(daemon->port());
      for (int i = 0; i < 50; ++i) {
        connection.send("GET /api/device HTTP/1.1\r\nHost: x\r\n\r\n");
        auto response = connection.read();
        if (response && response->status == 200) ++ok;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), 32 * 50);
}

TEST_F(DaemonTest, VersionSpecAndSwagger) {
  auto version = daemon->get("/api/version").json();
  EXPECT_EQ(version["onnxRuntimeVersion"], "1.31.1");
  auto spec = daemon->get("/openapi.json");
  ASSERT_EQ(spec.status, 200);
  EXPECT_TRUE(spec.json()["paths"].contains("/api/device/{deviceId}"));
  EXPECT_EQ(daemon->get("/swagger").status, 301);
  auto ui = daemon->get("/swagger/");
  if (ui.status == 200) {
    EXPECT_NE(ui.body.find("swagger"), std::string::npos);
    EXPECT_NE(daemon->get("/swagger/swagger-initializer.js").body.find("/openapi.json"),
              std::string::npos);
  } else {
    expectErrorBody(ui, 503, "UNAVAILABLE");  // assets not installed: says so, as JSON
  }
  expectErrorBody(daemon->get("/swagger/..%2f..%2fetc%2fpasswd"), 404, "NOT_FOUND");
  EXPECT_EQ(daemon->get("/ready").status, 200);
}

TEST_F(DaemonTest, AccessLogHasOneLinePerRequestWithLatency) {
  daemon->get("/api/device/cpu0?marker=accesslog");
  std::this_thread::sleep_for(1500ms);  // the log is flushed every second
  const std::string log = daemon->log();
  const std::size_t at = log.find("\"GET /api/device/cpu0?marker=accesslog\" 200");
  ASSERT_NE(at, std::string::npos) << log.substr(log.size() > 2000 ? log.size() - 2000 : 0);
  const std::string line = log.substr(at, log.find('\n', at) - at);
  EXPECT_NE(line.find("ms"), std::string::npos) << line;
}

TEST(DaemonLifecycleTest, SigtermExitsZeroAndReleasesThePort) {
  TestDaemon daemon;
  ASSERT_TRUE(daemon.started()) << daemon.log();
  Connection open(daemon.port());  // an idle keep-alive connection must not hold shutdown
  ASSERT_EQ(daemon.get("/health").status, 200);
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
  EXPECT_FALSE(Connection(daemon.port()).connected());
}

TEST(DaemonLifecycleTest, BadConfigurationExitsWithAMessage) {
  TestDaemon typo("[server]\nlisten_address = \"127.0.0.1:1\"\n");
  EXPECT_FALSE(typo.started());
  EXPECT_NE(typo.log().find("unknown key 'server.listen_address'"), std::string::npos)
      << typo.log();

  auto [code, output] = runProgram({DEVICEOPSD_PATH, "--listen", "nonsense"});
  EXPECT_EQ(code, 2);
  EXPECT_NE(output.find("HOST:PORT"), std::string::npos) << output;
}

TEST(DaemonLifecycleTest, JsonLogsAreJsonLines) {
  TestDaemon daemon("[log]\nformat = \"json\"\n");
  ASSERT_TRUE(daemon.started());
  daemon.get("/health");
  EXPECT_EQ(daemon.stop(), 0);
  std::istringstream lines(daemon.log());
  std::string line;
  int parsed = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    auto json = nlohmann::json::parse(line, nullptr, false);
    EXPECT_FALSE(json.is_discarded()) << line;
    ++parsed;
  }
  EXPECT_GT(parsed, 2);
}

}  // namespace
}  // namespace deviceops::testing
