// /api/memory against the real daemon: real allocations on the cpu (RSS measured from /proc)
// and on lavapipe, bad input, leases, concurrency, crash recovery.
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "test_daemon.h"

namespace deviceops::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
constexpr std::uint64_t kMiB = 1ull << 20;

const char* kConfig = R"(
[memory]
reaperIntervalMs = 100
[[devices.simulated]]
count = 2
memory = "16GiB"
)";

std::string lavapipeId(TestDaemon& daemon) {
  const json devices = daemon.get("/api/device").json();
  for (const auto& device : devices["devices"]) {
    if (device["vendor"] == "Mesa") return device["id"];
  }
  return "";
}

TEST(MemoryIntegrationTest, CpuAllocationReallyRaisesAndLowersResidentMemory) {
  TestDaemon daemon(kConfig);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::uint64_t before = daemon.residentBytes();
  RawResponse allocated = daemon.post("/api/memory/allocate",
                                      {{"deviceId", "cpu0"}, {"size", "256MiB"}, {"verify", true}});
  ASSERT_EQ(allocated.status, 201) << allocated.body;
  auto body = allocated.json();
  EXPECT_EQ(body["sizeBytes"], 256 * kMiB);
  EXPECT_EQ(body["allocator"], "cpu");
  EXPECT_EQ(body["verify"]["passed"], true);
  EXPECT_EQ(body["verify"]["bytesTested"], 256 * kMiB);
  EXPECT_GT(body["verify"]["readBytesPerSecond"].get<double>(), 0);
  const std::uint64_t during = daemon.residentBytes();
  EXPECT_GE(during, before + 250 * kMiB) << "before " << before << " during " << during;

  auto status = daemon.get("/api/memory/cpu0/status").json();
  EXPECT_EQ(status["heldBytes"], 256 * kMiB);
  EXPECT_EQ(status["heldBytesByKind"]["raw"], 256 * kMiB);
  EXPECT_EQ(status["allocationCount"], 1);

  ASSERT_EQ(daemon.request("DELETE", "/api/memory/" + body["id"].get<std::string>()).status, 200);
  auto optimized = daemon.post("/api/memory/cpu0/optimize", json::object()).json();
  EXPECT_EQ(optimized["pool"]["reservedBytes"], 0);
  const std::uint64_t after = daemon.residentBytes();
  EXPECT_LE(after, during - 250 * kMiB) << "during " << during << " after " << after;
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(MemoryIntegrationTest, LavapipeAllocatesWithinItsHeapAndRefusesBeyondIt) {
  TestDaemon daemon(kConfig);
  ASSERT_TRUE(daemon.started());
  const std::string device = lavapipeId(daemon);
  ASSERT_FALSE(device.empty()) << "lavapipe missing";
  RawResponse ok = daemon.post("/api/memory/allocate",
                               {{"deviceId", device}, {"sizeBytes", 64 * kMiB}, {"verify", true}});
  ASSERT_EQ(ok.status, 201) << ok.body;
  EXPECT_EQ(ok.json()["allocator"], "vulkan");
  EXPECT_EQ(ok.json()["verify"]["errors"], 0);
  const auto total = daemon.get("/api/memory/" + device + "/status").json()["totalBytes"];
  RawResponse tooBig =
      daemon.post("/api/memory/allocate",
                  {{"deviceId", device}, {"sizeBytes", total.get<std::uint64_t>() + 1}});
  EXPECT_EQ(tooBig.status, 400) << tooBig.body;
  RawResponse overBudget =
      daemon.post("/api/memory/allocate",
                  {{"deviceId", device}, {"sizeBytes", total.get<std::uint64_t>() - kMiB}});
  EXPECT_EQ(overBudget.status, 409) << overBudget.body;
  EXPECT_TRUE(overBudget.json()["error"]["details"].contains("budgetBytes"));
  EXPECT_EQ(daemon.get("/api/memory/" + device + "/status").json()["heldBytes"], 64 * kMiB);
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(MemoryIntegrationTest, BadInputGets4xxAndChangesNothing) {
  TestDaemon daemon(kConfig);
  ASSERT_TRUE(daemon.started());
  const std::pair<std::string, int> cases[] = {
      {"{", 400},
      {"[]", 400},
      {R"({"deviceId": "cpu0"})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": 0})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": -5})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": 1.5})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": "1024"})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": 9007199254740993})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": 1e300})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": -3e25475})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": 18446744073709551616})", 400},
      {R"({"deviceId": "cpu0", "size": "12 parsecs"})", 400},
      {R"({"deviceId": "cpu0", "size": "1MiB", "sizeBytes": 1})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": 1, "ttlSeconds": -1})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": 1, "pinned": "yes"})", 400},
      {R"({"deviceId": "cpu0", "sizeBytes": 1, "colour": "red"})", 400},
      {R"({"deviceId": 7, "sizeBytes": 1})", 400},
      {R"({"deviceId": "sim-0", "sizeBytes": 1, "pinned": true})", 400},
      {R"({"deviceId": "sim-0", "sizeBytes": 1, "verify": true})", 400},
      {R"({"deviceId": "gpu-nope", "sizeBytes": 1})", 404},
      {R"({"deviceId": "cpu0", "size": "1PiB"})", 400},
  };
  for (const auto& [body, status] : cases) {
    SCOPED_TRACE(body);
    RawResponse response = daemon.request("POST", "/api/memory/allocate", body,
                                          {{"Content-Type", "application/json"}});
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_TRUE(response.json()["error"]["message"].is_string());
  }
  EXPECT_EQ(daemon.request("DELETE", "/api/memory/alloc-0000000000000000").status, 404);
  EXPECT_EQ(daemon.get("/api/memory/nope/status").status, 404);
  EXPECT_EQ(daemon.get("/api/memory/allocations?state=lost").status, 400);
  EXPECT_EQ(daemon.get("/api/memory/allocations?limit=0").status, 400);
  EXPECT_EQ(daemon.get("/api/memory/allocations/alloc-nope").status, 404);
  EXPECT_EQ(daemon.get("/api/memory/allocations").json()["count"], 0);
  EXPECT_EQ(daemon.get("/api/memory/cpu0/status").json()["heldBytes"], 0);

  // A real allocation freed twice: the second is a 404 and changes nothing.
  auto id = daemon.post("/api/memory/allocate", {{"deviceId", "cpu0"}, {"sizeBytes", 4096}})
                .json()["id"]
                .get<std::string>();
  EXPECT_EQ(daemon.request("DELETE", "/api/memory/" + id).status, 200);
  RawResponse again = daemon.request("DELETE", "/api/memory/" + id);
  EXPECT_EQ(again.status, 404);
  EXPECT_NE(again.body.find("already released"), std::string::npos);
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(MemoryIntegrationTest, LeaseExpiresWithinOneReaperPeriod) {
  TestDaemon daemon(kConfig);
  ASSERT_TRUE(daemon.started());
  auto body =
      daemon
          .post("/api/memory/allocate",
                {{"deviceId", "cpu0"}, {"size", "1MiB"}, {"ttlSeconds", 1}, {"label", "lease"}})
          .json();
  ASSERT_TRUE(body["expiresAt"].is_string()) << body;
  std::this_thread::sleep_for(1000ms + 100ms + 100ms);  // ttl + one reaper period + slack
  auto record = daemon.get("/api/memory/allocations/" + body["id"].get<std::string>()).json();
  EXPECT_EQ(record["state"], "released");
  EXPECT_EQ(record["releaseReason"], "expired");
  EXPECT_EQ(daemon.get("/api/memory/cpu0/status").json()["heldBytes"], 0);
}

TEST(MemoryIntegrationTest, ConcurrentClientsLeaveLedgerPoolAndBackendInAgreement) {
  TestDaemon daemon(kConfig);
  ASSERT_TRUE(daemon.started());
  constexpr int kClients = 64;
  constexpr int kOperations = 10000;
  std::atomic<int> done{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937 random(static_cast<unsigned>(c));
      Connection connection(daemon.port());
      std::vector<std::string> mine;
      const auto send = [&](const std::string& method, const std::string& target,
                            const std::string& body) -> std::optional<RawResponse> {
        std::string message = method + " " + target + " HTTP/1.1\r\nHost: x\r\n";
        if (!body.empty()) {
          message +=
              "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
              "\r\n";
        }
        connection.send(message + "\r\n" + body);
        return connection.read(30s);
      };
      while (done.fetch_add(1) < kOperations) {
        if (!mine.empty() && random() % 2 == 0) {
          const std::size_t pick = random() % mine.size();
          auto response = send("DELETE", "/api/memory/" + mine[pick], "");
          if (!response || response->status != 200) ++failures;
          mine.erase(mine.begin() + static_cast<long>(pick));
        } else {
          const char* device = random() % 3 == 0 ? "sim-1" : "cpu0";
          json body = {{"deviceId", device}, {"sizeBytes", (random() % 256 + 1) * 4096}};
          auto response = send("POST", "/api/memory/allocate", body.dump());
          if (response && response->status == 201) {
            mine.push_back(response->json()["id"]);
          } else if (!response || response->status != 409) {
            ++failures;
          }
        }
      }
      for (const std::string& id : mine) {
        auto response = send("DELETE", "/api/memory/" + id, "");
        if (!response || response->status != 200) ++failures;
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(failures.load(), 0);
  for (const char* device : {"cpu0", "sim-1"}) {
    SCOPED_TRACE(device);
    auto status = daemon.get(std::string("/api/memory/") + device + "/status").json();
    EXPECT_EQ(status["heldBytes"], 0) << status;
    EXPECT_EQ(status["allocationCount"], 0);
    EXPECT_EQ(status["pool"]["requestedBytes"], 0);
    EXPECT_EQ(status["pool"]["inUseBytes"], 0);
    EXPECT_EQ(status["pool"]["reservedBytes"], status["backendLiveBytes"]) << status;
    daemon.post(std::string("/api/memory/") + device + "/optimize", json::object());
    EXPECT_EQ(
        daemon.get(std::string("/api/memory/") + device + "/status").json()["backendLiveBytes"], 0);
  }
  EXPECT_EQ(daemon.get("/api/memory/allocations?state=held").json()["count"], 0);
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(MemoryIntegrationTest, KillMinus9ThenRestartLeavesNoPhantomAllocation) {
  char pattern[] = "/tmp/deviceops-restart-XXXXXX";
  const std::string dataDir = ::mkdtemp(pattern);
  std::string id;
  {
    TestDaemon first(kConfig, {"--data-dir", dataDir});
    ASSERT_TRUE(first.started());
    id = first
             .post("/api/memory/allocate",
                   {{"deviceId", "cpu0"}, {"size", "8MiB"}, {"label", "crash"}})
             .json()["id"];
    first.post("/api/memory/allocate", {{"deviceId", "sim-0"}, {"size", "1GiB"}});
    EXPECT_EQ(first.get("/api/memory/allocations?state=held").json()["count"], 2);
    first.kill();
  }
  TestDaemon second(kConfig, {"--data-dir", dataDir});
  ASSERT_TRUE(second.started()) << second.log();
  EXPECT_EQ(second.get("/api/memory/allocations?state=held").json()["count"], 0);
  auto record = second.get("/api/memory/allocations/" + id).json();
  EXPECT_EQ(record["state"], "released");
  EXPECT_EQ(record["releaseReason"], "restart");
  EXPECT_EQ(record["label"], "crash");
  EXPECT_EQ(second.get("/api/memory/cpu0/status").json()["heldBytes"], 0);
  EXPECT_EQ(second.stop(), 0);
  std::filesystem::remove_all(dataDir);
}

}  // namespace
}  // namespace deviceops::testing
