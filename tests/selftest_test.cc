// /api/testing against the real daemon: self-test levels on the CPU and lavapipe (real memory,
// real ONNX Runtime, real telemetry store), injected faults on simulated devices (each found by
// the right test on the right device, the others unaffected), history and regressions across a
// restart, cancel, SSE, bad input, the CLI, and the CPU bandwidth figure next to mbw's.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "test_daemon.h"

namespace deviceops::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
constexpr std::uint64_t kMiB = 1ull << 20;

// Polls GET /api/testing/runs/{id} until the run has finished.
json waitForRun(TestDaemon& daemon, const std::string& id,
                std::chrono::seconds timeout = std::chrono::seconds(240)) {
  const auto giveUp = std::chrono::steady_clock::now() + timeout;
  json run;
  while (std::chrono::steady_clock::now() < giveUp) {
    run = daemon.get("/api/testing/runs/" + id).json();
    const std::string state = run.value("state", "");
    if (state != "queued" && state != "running") return run;
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "run " << id << " did not finish: " << run.dump();
  return run;
}

json startRun(TestDaemon& daemon, const std::string& path, const json& body) {
  RawResponse started = daemon.post(path, body);
  EXPECT_EQ(started.status, 202) << started.body;
  if (started.status != 202) return json::object();
  EXPECT_EQ(started.headers["location"],
            "/api/testing/runs/" + started.json()["id"].get<std::string>());
  return waitForRun(daemon, started.json()["id"]);
}

// The result of `test` on `device` (null when absent).
json resultOf(const json& run, const std::string& device, const std::string& test) {
  for (const json& result : run["results"]) {
    if (result["deviceId"] == device && result["test"] == test) return result;
  }
  return nullptr;
}

// Lavapipe's id, waiting for the Vulkan backend's first poll (slow on a loaded machine).
std::string lavapipeId(TestDaemon& daemon) {
  const auto giveUp = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < giveUp) {
    const json devices = daemon.get("/api/device").json();
    for (const auto& device : devices["devices"]) {
      if (device["vendor"] == "Mesa") return device["id"];
    }
    std::this_thread::sleep_for(100ms);
  }
  return "";
}

std::string describe(const json& run) {
  std::string text;
  for (const json& result : run["results"]) {
    text += result["deviceId"].get<std::string>() + " " + result["test"].get<std::string>() + " " +
            result["status"].get<std::string>() + ": " + result["reason"].get<std::string>() + "\n";
  }
  return text;
}

TEST(SelfTestApiTest, QuickPassesOnCpuAndLavapipeAndTheCliShowsIt) {
  TestDaemon daemon("[telemetry]\nintervalSeconds = 1\n");
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::string lavapipe = lavapipeId(daemon);
  ASSERT_FALSE(lavapipe.empty()) << "lavapipe is part of the test machine (mesa-vulkan-drivers)";
  const json run = startRun(daemon, "/api/testing/end-to-end",
                            {{"level", "quick"}, {"devices", {"cpu0", lavapipe}}});
  ASSERT_EQ(run["state"], "completed") << run.dump();
  EXPECT_EQ(run["status"], "pass") << describe(run);
  EXPECT_EQ(run["level"], "quick");
  EXPECT_DOUBLE_EQ(run["progress"]["fraction"].get<double>(), 1.0);
  for (const std::string& device : {std::string("cpu0"), lavapipe}) {
    for (const char* test : {"device.health", "memory.addressInAddress", "telemetry.roundTrip"}) {
      const json result = resultOf(run, device, test);
      ASSERT_FALSE(result.is_null()) << device << " " << test << "\n" << describe(run);
      EXPECT_EQ(result["status"], "pass") << device << " " << result.dump();
    }
    const json memory = resultOf(run, device, "memory.addressInAddress");
    EXPECT_EQ(memory["details"]["bytes"], 16 * kMiB);
    EXPECT_EQ(memory["details"]["errors"], 0);
    EXPECT_EQ(memory["details"]["completedPasses"], 1);
  }
  EXPECT_EQ(resultOf(run, lavapipe, "memory.addressInAddress")["details"]["allocator"], "vulkan");
  // The built-in model ran on the CPU and matched the C++ reference; lavapipe runs no ONNX
  // Runtime provider, which is a skip with the registry's reason, not a failure.
  EXPECT_EQ(resultOf(run, "cpu0", "inference.compare")["status"], "pass");
  EXPECT_LT(resultOf(run, "cpu0", "inference.compare")["details"]["maxRelativeError"].get<double>(),
            1e-4);
  EXPECT_EQ(resultOf(run, lavapipe, "inference.compare")["status"], "skip");
  // Every self-test allocation went through the ledger and was released.
  const json allocations =
      daemon.get("/api/memory/allocations?state=released&limit=100").json()["allocations"];
  int ours = 0;
  for (const json& allocation : allocations) {
    if (allocation["owner"] == "selftest:" + run["id"].get<std::string>()) ++ours;
  }
  EXPECT_GE(ours, 4);
  EXPECT_EQ(daemon.get("/api/memory/cpu0/status").json()["heldBytes"], 0);
  EXPECT_EQ(daemon.get("/api/memory/" + lavapipe + "/status").json()["heldBytes"], 0);
  // The built-in models were unloaded.
  EXPECT_EQ(daemon.get("/api/inference/models").json()["models"].size(), 0u);
  // The finished run is an event (the dashboard and /api/stream learn of it from there); the
  // store's writer flushes within a second.
  std::this_thread::sleep_for(1500ms);
  const json finished = daemon.get("/api/events?type=selftest.finished").json();
  ASSERT_EQ(finished["count"], 1) << finished.dump();
  EXPECT_EQ(finished["events"][0]["details"]["runId"], run["id"]);
  EXPECT_EQ(finished["events"][0]["details"]["status"], "pass");
  EXPECT_EQ(finished["events"][0]["severity"], "info");

  // Device health: non-intrusive, every check passes (telemetry samples every second).
  std::this_thread::sleep_for(2500ms);
  const json health = daemon.get("/api/testing/device-health").json();
  EXPECT_EQ(health["status"], "pass") << health.dump(2);
  ASSERT_GE(health["devices"].size(), 2u);
  for (const json& device : health["devices"]) {
    std::vector<std::string> names;
    for (const json& check : device["checks"]) names.push_back(check["name"]);
    EXPECT_EQ(names, (std::vector<std::string>{"backendResponding", "health", "telemetry",
                                               "readings", "ledger"}));
  }

  // The CLI: a quick run on the CPU with its table, then the health table.
  const std::string url = "http://127.0.0.1:" + std::to_string(daemon.port());
  auto [code, output] =
      runProgram({DEVICEOPS_CLI_PATH, "--url", url, "test", "quick", "--device", "cpu0"});
  EXPECT_EQ(code, 0) << output;
  EXPECT_NE(output.find("memory.addressInAddress"), std::string::npos) << output;
  EXPECT_NE(output.find("pass"), std::string::npos) << output;
  auto [healthCode, healthOutput] =
      runProgram({DEVICEOPS_CLI_PATH, "--url", url, "test", "health"});
  EXPECT_EQ(healthCode, 0) << healthOutput;
  EXPECT_NE(healthOutput.find("ledger"), std::string::npos) << healthOutput;
  // Both runs are in the history, newest first.
  const json runs = daemon.get("/api/testing/runs?kind=end-to-end").json();
  ASSERT_EQ(runs["count"], 2);
  EXPECT_EQ(runs["runs"][1]["id"], run["id"]);
  const std::string metrics = daemon.get("/metrics").body;
  EXPECT_NE(metrics.find("deviceops_selftest_result{device=\"cpu0\",test=\"memory."
                         "addressInAddress\",status=\"pass\"} 1"),
            std::string::npos);
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(SelfTestApiTest, StandardAndLongPassOnCpuAndLavapipeWithinTheLedger) {
  TestDaemon daemon;
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::string lavapipe = lavapipeId(daemon);
  ASSERT_FALSE(lavapipe.empty());
  const json standard = startRun(
      daemon, "/api/testing/end-to-end",
      {{"level", "standard"}, {"devices", {"cpu0", lavapipe}}, {"memoryBytes", 16 * kMiB}});
  ASSERT_EQ(standard["state"], "completed") << standard.dump();
  for (const std::string& device : {std::string("cpu0"), lavapipe}) {
    for (const char* test : {"memory.addressInAddress", "memory.walkingOnes", "memory.walkingZeros",
                             "memory.movingInversions", "memory.randomPattern"}) {
      const json result = resultOf(standard, device, test);
      ASSERT_FALSE(result.is_null()) << device << " " << test << "\n" << describe(standard);
      // pass, or warn when a slow (sanitizer) build ran out of time before one full pass.
      EXPECT_NE(result["status"], "fail") << device << " " << result.dump();
      EXPECT_EQ(result["details"]["errors"], 0);
    }
    for (const char* test :
         {"bandwidth.hostToDevice", "bandwidth.deviceToHost", "bandwidth.deviceToDevice"}) {
      const json result = resultOf(standard, device, test);
      ASSERT_FALSE(result.is_null()) << device << " " << test;
      EXPECT_EQ(result["status"], "pass") << result.dump();
      ASSERT_EQ(result["figures"].size(), 1u);
      EXPECT_GT(result["figures"][0]["value"].get<double>(), 1e6) << result.dump();
      EXPECT_TRUE(result["figures"][0]["peak"].is_null());  // no theoretical peak for these
    }
  }
  EXPECT_NE(standard["status"], "fail") << describe(standard);

  // long: the pattern tests over the window given, a short sustained load watching readings.
  const json longRun = startRun(
      daemon, "/api/testing/end-to-end",
      {{"level", "long"}, {"devices", {"cpu0"}}, {"memoryBytes", 8 * kMiB}, {"loadSeconds", 2}});
  ASSERT_EQ(longRun["state"], "completed") << longRun.dump();
  const json load = resultOf(longRun, "cpu0", "load.sustained");
  ASSERT_FALSE(load.is_null()) << describe(longRun);
  EXPECT_NE(load["status"], "fail") << load.dump();
  EXPECT_EQ(load["details"]["load"], "matmul");
  const json walking = resultOf(longRun, "cpu0", "memory.walkingOnes");
  EXPECT_EQ(walking["details"]["plannedPasses"], 64);
  EXPECT_EQ(daemon.get("/api/memory/cpu0/status").json()["heldBytes"], 0);
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(SelfTestApiTest, BadInputIsRefusedAndChangesNothing) {
  TestDaemon daemon("[[devices.simulated]]\ncount = 1\nmemory = \"1GiB\"\n");
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const auto expect400 = [&](const std::string& path, const std::string& body,
                             const std::string& field) {
    RawResponse response =
        daemon.request("POST", path, body, {{"Content-Type", "application/json"}});
    EXPECT_EQ(response.status, 400) << path << " " << body << ": " << response.body;
    if (!field.empty() && response.status == 400) {
      EXPECT_EQ(response.json()["error"]["details"]["field"], field) << response.body;
    }
  };
  expect400("/api/testing/end-to-end", R"({"level": "extreme"})", "level");
  expect400("/api/testing/end-to-end", R"({"level": 3})", "level");
  expect400("/api/testing/end-to-end", R"({"devices": ["gpu-nope"]})", "devices");
  expect400("/api/testing/end-to-end", R"({"devices": "cpu0"})", "devices");
  expect400("/api/testing/end-to-end", R"({"force": "yes"})", "force");
  expect400("/api/testing/end-to-end", R"({"memoryBytes": -5})", "memoryBytes");
  expect400("/api/testing/end-to-end", R"({"memoryBytes": 100})", "memoryBytes");
  expect400("/api/testing/end-to-end", R"({"loadSeconds": 0})", "loadSeconds");
  expect400("/api/testing/end-to-end", R"({"levle": "quick"})", "levle");
  expect400("/api/testing/end-to-end", R"([1, 2])", "");
  expect400("/api/testing/end-to-end", R"({"level": "quick")", "");
  expect400("/api/testing/performance-benchmark", R"({"durationSeconds": 0})", "durationSeconds");
  expect400("/api/testing/performance-benchmark", R"({"durationSeconds": 601})", "durationSeconds");
  expect400("/api/testing/performance-benchmark", R"({"durationSeconds": 1e300})",
            "durationSeconds");
  expect400("/api/testing/performance-benchmark", R"({"durationSeconds": "5"})", "durationSeconds");
  expect400("/api/testing/performance-benchmark", R"({"tests": ["warp"]})", "tests");
  EXPECT_EQ(daemon.get("/api/testing/runs?kind=nope").status, 400);
  EXPECT_EQ(daemon.get("/api/testing/runs?limit=0").status, 400);
  EXPECT_EQ(daemon.get("/api/testing/runs?limit=abc").status, 400);
  EXPECT_EQ(daemon.get("/api/testing/runs/run-0000000000000000").status, 404);
  EXPECT_EQ(daemon.get("/api/testing/runs/run-0000000000000000/events").status, 404);
  EXPECT_EQ(daemon.post("/api/testing/runs/run-0000000000000000/cancel", json::object()).status,
            404);
  // Nothing was started or stored by any of them.
  EXPECT_EQ(daemon.get("/api/testing/runs").json()["count"], 0);

  // long on a busy device (more than half its budget held) is refused unless forced.
  RawResponse held =
      daemon.post("/api/memory/allocate", {{"deviceId", "sim-0"}, {"size", "400MiB"}});
  ASSERT_EQ(held.status, 201) << held.body;
  RawResponse busy = daemon.post("/api/testing/end-to-end",
                                 {{"level", "long"}, {"devices", {"sim-0"}}, {"loadSeconds", 1}});
  EXPECT_EQ(busy.status, 409) << busy.body;
  EXPECT_NE(busy.json()["error"]["message"].get<std::string>().find("busy"), std::string::npos);
  EXPECT_EQ(daemon.get("/api/testing/runs").json()["count"], 0);

  // One run per device: a second run on a device under test is 409 naming the first; cancel
  // ends the first (its allocations released), a second cancel is 409.
  RawResponse first =
      daemon.post("/api/testing/performance-benchmark",
                  {{"devices", {"cpu0"}}, {"tests", {"allocation"}}, {"durationSeconds", 30}});
  ASSERT_EQ(first.status, 202) << first.body;
  const std::string firstId = first.json()["id"];
  RawResponse second = daemon.post("/api/testing/end-to-end", {{"devices", {"cpu0"}}});
  EXPECT_EQ(second.status, 409) << second.body;
  EXPECT_EQ(second.json()["error"]["details"]["runId"], firstId);
  // The events stream starts with the run itself.
  Connection events(daemon.port());
  ASSERT_TRUE(
      events.send("GET /api/testing/runs/" + firstId + "/events HTTP/1.1\r\nHost: x\r\n\r\n"));
  RawResponse cancelled = daemon.post("/api/testing/runs/" + firstId + "/cancel", json::object());
  EXPECT_EQ(cancelled.status, 202) << cancelled.body;
  const json ended = waitForRun(daemon, firstId, 60s);
  EXPECT_EQ(ended["state"], "cancelled");
  const std::string stream = events.readUntilClosed(10s);
  EXPECT_NE(stream.find("event: snapshot"), std::string::npos) << stream;
  EXPECT_NE(stream.find("event: state"), std::string::npos) << stream;
  EXPECT_NE(stream.find("\"cancelled\""), std::string::npos) << stream;
  EXPECT_NE(stream.find("event: end"), std::string::npos) << stream;
  EXPECT_EQ(daemon.post("/api/testing/runs/" + firstId + "/cancel", json::object()).status, 409);
  EXPECT_EQ(daemon.get("/api/memory/cpu0/status").json()["heldBytes"], 0);
  // The device is free again.
  RawResponse again = daemon.post("/api/testing/end-to-end", {{"devices", {"cpu0"}}});
  EXPECT_EQ(again.status, 202) << again.body;
  waitForRun(daemon, again.json()["id"]);
  EXPECT_EQ(daemon.stop(), 0);
}

const char* kFaultConfig = R"(
[devices]
pollIntervalMs = 200
[[devices.simulated]]
count = 1
name = "Clean GPU"
memory = "1GiB"
peakBandwidth = "2GB"
[[devices.simulated]]
count = 1
name = "Stuck bit"
memory = "1GiB"
[devices.simulated.faults]
stuckBit = { offset = "1MiB", bit = 3, value = 1 }
[[devices.simulated]]
count = 1
name = "Flipping bit"
memory = "1GiB"
[devices.simulated.faults]
flippingBit = { offset = "2MiB", bit = 7 }
[[devices.simulated]]
count = 1
name = "Slow memory"
memory = "1GiB"
peakBandwidth = "100GB"
[devices.simulated.faults]
bandwidthCap = "400MB"
[[devices.simulated]]
count = 1
name = "Vanishing"
memory = "1GiB"
[devices.simulated.faults]
vanishAfterTransfers = 40
[[devices.simulated]]
count = 1
name = "ECC"
memory = "1GiB"
[devices.simulated.faults]
eccDoubleBitErrors = 2
)";

TEST(SelfTestFaultTest, InjectedFaultsFailTheRightTestOnTheRightDeviceOnly) {
  TestDaemon daemon(kFaultConfig);
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const json run = startRun(daemon, "/api/testing/end-to-end",
                            {{"level", "standard"},
                             {"devices", {"sim-0", "sim-1", "sim-2", "sim-3", "sim-4", "sim-5"}},
                             {"memoryBytes", 4 * kMiB}});
  ASSERT_EQ(run["state"], "completed") << run.dump();
  EXPECT_EQ(run["status"], "fail");
  const std::string all = describe(run);
  // The clean device: nothing but passes.
  for (const json& result : run["results"]) {
    if (result["deviceId"] == "sim-0") {
      EXPECT_EQ(result["status"], "pass") << result.dump();
    }
  }
  // A stuck bit: moving inversions names the word, the bit and the value read.
  const json stuck = resultOf(run, "sim-1", "memory.movingInversions");
  ASSERT_FALSE(stuck.is_null()) << all;
  EXPECT_EQ(stuck["status"], "fail") << stuck.dump();
  EXPECT_EQ(stuck["details"]["firstErrorOffset"], 1 * kMiB);
  EXPECT_EQ(stuck["details"]["badBits"], "0x0000000000000008");
  EXPECT_NE(stuck["reason"].get<std::string>().find("0x100000"), std::string::npos) << stuck.dump();
  EXPECT_EQ(resultOf(run, "sim-1", "device.health")["status"], "pass");
  EXPECT_EQ(resultOf(run, "sim-1", "bandwidth.hostToDevice")["status"], "pass");
  // A flipping bit is found at its offset.
  const json flipping = resultOf(run, "sim-2", "memory.randomPattern");
  EXPECT_EQ(flipping["status"], "fail") << flipping.dump();
  EXPECT_EQ(flipping["details"]["firstErrorOffset"], 2 * kMiB);
  EXPECT_EQ(flipping["details"]["badBits"], "0x0000000000000080");
  // Capped bandwidth: memory is right, the copy rate is far below the device's peak.
  EXPECT_EQ(resultOf(run, "sim-3", "memory.movingInversions")["status"], "pass");
  const json slow = resultOf(run, "sim-3", "bandwidth.deviceToDevice");
  EXPECT_EQ(slow["status"], "warn") << slow.dump();
  EXPECT_LE(slow["figures"][0]["value"].get<double>(), 400e6 * 1.05) << slow.dump();
  EXPECT_LT(slow["figures"][0]["ratio"].get<double>(), 0.25);
  EXPECT_NE(slow["reason"].get<std::string>().find("theoretical"), std::string::npos);
  // The clean device's copy is judged against its peak too, and passes.
  EXPECT_FALSE(resultOf(run, "sim-0", "bandwidth.deviceToDevice")["figures"][0]["peak"].is_null());
  // A device that vanishes mid-run: its tests fail saying so; the run goes on for the others.
  bool vanishedSeen = false;
  for (const json& result : run["results"]) {
    if (result["deviceId"] == "sim-4" && result["status"] == "fail" &&
        result["reason"].get<std::string>().find("vanish") != std::string::npos) {
      vanishedSeen = true;
    }
  }
  EXPECT_TRUE(vanishedSeen) << all;
  // ECC errors: the health test fails with the rule's code.
  const json ecc = resultOf(run, "sim-5", "device.health");
  EXPECT_EQ(ecc["status"], "fail");
  EXPECT_NE(ecc["reason"].get<std::string>().find("eccDoubleBitErrors"), std::string::npos);
  EXPECT_EQ(resultOf(run, "sim-5", "memory.movingInversions")["status"], "pass");

  // Device health agrees, device by device.
  const json health = daemon.get("/api/testing/device-health").json();
  EXPECT_EQ(health["status"], "fail");
  for (const json& device : health["devices"]) {
    if (device["deviceId"] == "sim-0" || device["deviceId"] == "sim-1" ||
        device["deviceId"] == "cpu0") {
      EXPECT_NE(device["status"], "fail") << device.dump();
    }
    if (device["deviceId"] == "sim-5") {
      EXPECT_EQ(device["status"], "fail") << device.dump();
    }
  }
  EXPECT_EQ(daemon.stop(), 0);
}

TEST(SelfTestFaultTest, AHungBackendFailsDeviceHealthForItsDevicesOnly) {
  TestDaemon daemon(R"(
[devices]
pollIntervalMs = 100
staleAfterMs = 1000
[[devices.simulated]]
count = 2
memory = "1GiB"
[devices.simulated.faults]
hangAfterPolls = 3
)");
  ASSERT_TRUE(daemon.started()) << daemon.log();
  json health;
  const auto giveUp = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < giveUp) {
    health = daemon.get("/api/testing/device-health").json();
    if (health["status"] == "fail") break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(health["status"], "fail") << health.dump(2);
  for (const json& backend : health["backends"]) {
    if (backend["name"] == "simulated") {
      EXPECT_EQ(backend["status"], "fail") << backend.dump();
    }
    if (backend["name"] == "cpu") {
      EXPECT_EQ(backend["status"], "pass") << backend.dump();
    }
  }
  for (const json& device : health["devices"]) {
    const json& checks = device["checks"];
    if (device["deviceId"] == "cpu0") {
      EXPECT_EQ(checks[0]["status"], "pass") << device.dump();
    } else if (device["simulated"] == true) {
      EXPECT_EQ(device["status"], "fail") << device.dump();
      EXPECT_EQ(checks[0]["name"], "backendResponding");
      EXPECT_EQ(checks[0]["status"], "fail") << device.dump();
    }
  }
  EXPECT_EQ(daemon.stop(), 0);  // the hung poll does not hold the shutdown
}

TEST(SelfTestHistoryTest, ARegressionAgainstEarlierRunsIsFlaggedAndSurvivesARestart) {
  const std::filesystem::path data = std::filesystem::temp_directory_path() /
                                     ("deviceops-selftest-history-" + std::to_string(::getpid()));
  std::filesystem::remove_all(data);
  const json body = {{"devices", {"sim-0"}},
                     {"tests", {"deviceToDevice"}},
                     {"durationSeconds", 1},
                     {"memoryBytes", 8 * kMiB}};
  std::string firstRun;
  {
    TestDaemon daemon("[[devices.simulated]]\ncount = 1\nmemory = \"1GiB\"\n",
                      {"--data-dir", data.string()});
    ASSERT_TRUE(daemon.started()) << daemon.log();
    const json first = startRun(daemon, "/api/testing/performance-benchmark", body);
    firstRun = first["id"];
    const json figure = resultOf(first, "sim-0", "bandwidth.deviceToDevice")["figures"][0];
    EXPECT_EQ(figure["baselineRuns"], 0) << first.dump();
    EXPECT_TRUE(figure["baselineMedian"].is_null());
    const json second = startRun(daemon, "/api/testing/performance-benchmark", body);
    const json again = resultOf(second, "sim-0", "bandwidth.deviceToDevice");
    EXPECT_EQ(again["figures"][0]["baselineRuns"], 1) << second.dump();
    EXPECT_DOUBLE_EQ(again["figures"][0]["baselineMedian"].get<double>(),
                     figure["value"].get<double>());
    EXPECT_EQ(daemon.stop(), 0);
  }
  {
    // The same device, now with its transfers capped far below what it showed.
    TestDaemon daemon(
        "[[devices.simulated]]\ncount = 1\nmemory = \"1GiB\"\n[devices.simulated.faults]\n"
        "bandwidthCap = \"50MB\"\n",
        {"--data-dir", data.string()});
    ASSERT_TRUE(daemon.started()) << daemon.log();
    EXPECT_EQ(daemon.get("/api/testing/runs/" + firstRun).json()["state"], "completed");
    const json slow = startRun(daemon, "/api/testing/performance-benchmark", body);
    const json result = resultOf(slow, "sim-0", "bandwidth.deviceToDevice");
    EXPECT_EQ(result["status"], "warn") << result.dump();
    EXPECT_EQ(result["figures"][0]["regression"], true);
    EXPECT_EQ(result["figures"][0]["baselineRuns"], 2);
    EXPECT_NE(result["reason"].get<std::string>().find("regression"), std::string::npos);
    EXPECT_EQ(slow["status"], "warn");
    const json runs = daemon.get("/api/testing/runs?deviceId=sim-0&limit=10").json();
    EXPECT_EQ(runs["count"], 3);
    const std::string metrics = daemon.get("/metrics").body;
    EXPECT_NE(metrics.find("deviceops_selftest_regression{device=\"sim-0\",test=\"bandwidth."
                           "deviceToDevice\",figure=\"bandwidth\"} 1"),
              std::string::npos)
        << metrics;
    EXPECT_EQ(daemon.stop(), 0);
  }
  std::filesystem::remove_all(data);
}

// The CPU's copy bandwidth through the self-test next to mbw's memcpy figure, same machine,
// same minute: they measure the same thing, so they must be within a factor of 4 (10 when the
// daemon runs under AddressSanitizer, which checks every copied range and mbw does not).
#if defined(__SANITIZE_ADDRESS__)
constexpr double kMbwFactor = 10;
#else
constexpr double kMbwFactor = 4;
#endif

TEST(SelfTestBenchmarkTest, CpuCopyBandwidthAgreesWithMbw) {
  TestDaemon daemon;
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const json run = startRun(daemon, "/api/testing/performance-benchmark",
                            {{"devices", {"cpu0"}},
                             {"tests", {"deviceToDevice", "matmul", "inference"}},
                             {"durationSeconds", 2},
                             {"memoryBytes", 256 * kMiB}});
  ASSERT_EQ(run["state"], "completed") << run.dump();
  const json copy = resultOf(run, "cpu0", "bandwidth.deviceToDevice");
  ASSERT_FALSE(copy.is_null()) << describe(run);
  const double ours = copy["figures"][0]["value"].get<double>();
  auto [code, output] = runProgram({"/usr/bin/mbw", "-q", "-n", "5", "-t0", "128"});
  ASSERT_EQ(code, 0) << output;
  std::smatch match;
  const std::regex average(R"(AVG\s+Method: MEMCPY.*Copy: ([0-9.]+) MiB/s)");
  ASSERT_TRUE(std::regex_search(output, match, average)) << output;
  const double mbw = std::stod(match[1]) * kMiB;
  EXPECT_GT(ours, mbw / kMbwFactor) << "deviceops " << ours << " B/s, mbw " << mbw << " B/s";
  EXPECT_LT(ours, mbw * kMbwFactor) << "deviceops " << ours << " B/s, mbw " << mbw << " B/s";
  const json matmul = resultOf(run, "cpu0", "matmul");
  EXPECT_EQ(matmul["status"], "pass") << matmul.dump();
  EXPECT_GT(matmul["figures"][0]["value"].get<double>(), 1e8);  // > 0.1 GFLOP/s
  const json inference = resultOf(run, "cpu0", "inference");
  EXPECT_EQ(inference["status"], "pass") << inference.dump();
  EXPECT_GT(inference["figures"][0]["value"].get<double>(), 10);  // requests/s
  EXPECT_EQ(daemon.stop(), 0);
}

}  // namespace
}  // namespace deviceops::testing
