// /api/suites and /api/generation through a real daemon (tiny SDXL suites of
// tests/models/make_sdxl_models.py, real ONNX Runtime).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include "common/testing/temp_dir.h"
#include "generation_helpers.h"
#include "test_daemon.h"

namespace deviceops::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

const fs::path kModels = DEVICEOPS_TEST_MODELS_DIR;

std::string config() {
  return "[inference]\nmodelRoots = [\"" + kModels.string() +
         "\"]\n[telemetry]\nenabled = false\n[training]\nenabled = false\n";
}

json importTiny(TestDaemon& daemon, const std::string& name = "tiny") {
  const RawResponse response = daemon.post(
      "/api/suites", {{"name", name}, {"path", "sdxl/base"}, {"refinerPath", "sdxl/refiner"}});
  EXPECT_EQ(response.status, 201) << response.body;
  return response.json();
}

std::string readStream(int port, const std::string& target) {
  Connection connection(port);
  if (!connection.send("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) {
    return "";
  }
  return connection.readUntilClosed(120s);
}

std::vector<json> sseEvents(const std::string& stream, const std::string& type) {
  std::vector<json> out;
  const std::string marker = "event: " + type + "\ndata: ";
  for (std::size_t at = stream.find(marker); at != std::string::npos;
       at = stream.find(marker, at + 1)) {
    const std::size_t begin = at + marker.size();
    out.push_back(
        json::parse(stream.substr(begin, stream.find('\n', begin) - begin), nullptr, false));
  }
  return out;
}

const json kSmall = {{"suite", "tiny"}, {"prompt", "a photo of a cat"},
                     {"width", 64},     {"height", 64},
                     {"steps", 20},     {"seed", 1}};

TEST(GenerationIntegrationTest, ImportGenerateFollowAndFetch) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const json suite = importTiny(daemon);
  EXPECT_EQ(suite["state"], "registered");
  EXPECT_EQ(suite["validation"]["compatible"], true);
  EXPECT_EQ(suite["hasRefiner"], true);
  EXPECT_EQ(daemon.get("/api/suites").json()["count"], 1);
  EXPECT_EQ(daemon.get("/api/suites/tiny").json()["id"], suite["id"]);

  json request = kSmall;
  request["refiner"] = {{"mode", "always"}};
  const RawResponse submitted = daemon.post("/api/generation", request);
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  const std::string id = submitted.json()["id"];

  const std::string stream = readStream(daemon.port(), "/api/generation/" + id + "/events");
  EXPECT_NE(stream.find("Content-Type: text/event-stream"), std::string::npos);
  EXPECT_EQ(sseEvents(stream, "snapshot").size(), 1u);
  const std::vector<json> steps = sseEvents(stream, "step");
  ASSERT_EQ(steps.size(), 20u) << stream.substr(0, 2000);
  EXPECT_EQ(steps.back()["step"], 20);
  EXPECT_EQ(steps.back()["stage"], "refiner");
  const std::vector<json> previews = sseEvents(stream, "preview");
  ASSERT_FALSE(previews.empty());
  EXPECT_EQ(previews[0]["image"].get<std::string>().rfind("data:image/png;base64,iVBORw0KGgo", 0),
            0u);
  ASSERT_EQ(sseEvents(stream, "done").size(), 1u);
  EXPECT_NE(stream.find("event: end"), std::string::npos);

  const json job = waitForJob(daemon, id);
  ASSERT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_EQ(job["report"]["stages"].size(), 2u);
  EXPECT_EQ(job["report"]["stages"][1]["stage"], "refiner");
  EXPECT_TRUE(job["report"]["modelSeconds"].contains("unet"));
  EXPECT_TRUE(job["report"]["modelSeconds"].contains("refiner_unet"));
  EXPECT_FALSE(job["report"]["memory"]["ledgerBytesByDevice"].empty());
  ASSERT_EQ(job["images"].size(), 1u);
  const RawResponse image = daemon.get(job["images"][0]["url"].get<std::string>());
  ASSERT_EQ(image.status, 200);
  EXPECT_EQ(image.body.substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_NE(image.body.find("parameters"), std::string::npos);
  EXPECT_NE(image.body.find("a photo of a cat"), std::string::npos);
  const std::string metrics = daemon.get("/metrics").body;
  EXPECT_NE(metrics.find("deviceops_generation_jobs{state=\"succeeded\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("deviceops_generation_images_total 1"), std::string::npos);

  // The suite is loaded now, its memory accounted per device; nothing holds it any more.
  const json loaded = daemon.get("/api/suites/tiny").json();
  EXPECT_EQ(loaded["state"], "ready");
  EXPECT_EQ(loaded["activeGenerations"], 0);
  EXPECT_FALSE(loaded["memoryByDevice"].empty());
  EXPECT_EQ(daemon.request("POST", "/api/suites/tiny/unload").status, 200);
  EXPECT_EQ(daemon.get("/api/suites/tiny").json()["state"], "registered");
}

TEST(GenerationIntegrationTest, BadInputIs4xxAndChangesNothing) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  importTiny(daemon);
  const auto status = [&](const json& body) {
    const RawResponse response = daemon.post("/api/generation", body);
    return std::make_pair(response.status, response.json()["error"]);
  };
  const auto with = [](const char* key, json value) {
    json body = kSmall;
    body[key] = std::move(value);
    return body;
  };
  const struct {
    json body;
    int status;
    const char* field;
  } kCases[] = {
      {with("width", 65), 400, "width"},
      {with("steps", 0), 400, "steps"},
      {with("steps", 10000), 400, "steps"},
      {with("guidance", "NaN"), 400, "guidance"},
      {with("batch", 0), 400, "batch"},
      {with("scheduler", "ddim"), 400, "scheduler"},
      {with("colour", "blue"), 400, "colour"},
      {with("refiner", {{"mode", "sometimes"}}), 400, "refiner.mode"},
      {with("refiner", {{"denoisingStart", 1.5}}), 400, "refiner.denoisingStart"},
      {with("seed", -1), 400, "seed"},
      {with("prompt", 7), 400, "prompt"},
  };
  for (const auto& item : kCases) {
    SCOPED_TRACE(item.body.dump());
    const auto [code, error] = status(item.body);
    EXPECT_EQ(code, item.status) << error.dump();
    EXPECT_EQ(error["details"]["field"], item.field) << error.dump();
  }
  EXPECT_EQ(status(with("suite", "nope")).first, 404);
  json huge = kSmall;
  huge["width"] = 4096;
  huge["height"] = 4096;
  huge["vae"] = {{"tiling", "off"}};
  const auto [hugeStatus, hugeError] = status(huge);
  EXPECT_EQ(hugeStatus, 507) << hugeError.dump();
  EXPECT_GT(hugeError["details"]["estimatedBytes"].get<double>(),
            hugeError["details"]["budgetBytes"].get<double>());
  const RawResponse malformed = daemon.request(
      "POST", "/api/generation", "{\"suite\": ", {{"Content-Type", "application/json"}});
  EXPECT_EQ(malformed.status, 400);

  // Imports.
  EXPECT_EQ(daemon.post("/api/suites", {{"name", "x"}, {"path", "/etc"}}).status, 403);
  EXPECT_EQ(daemon.post("/api/suites", {{"name", "x"}, {"path", "sdxl/missing"}}).status, 404);
  EXPECT_EQ(daemon.post("/api/suites", {{"name", "x"}, {"path", 5}}).status, 400);
  const RawResponse incompatible = daemon.post(
      "/api/suites",
      {{"name", "mixed"}, {"path", "sdxl/base"}, {"refinerPath", "sdxl/refiner_other_family"}});
  EXPECT_EQ(incompatible.status, 409);
  EXPECT_EQ(incompatible.json()["error"]["details"]["check"]["name"], "refinerContextWidth");
  EXPECT_EQ(daemon.post("/api/suites", {{"name", "tiny"}, {"path", "sdxl/base"}}).status, 409);

  // Unknown jobs, bad indexes.
  EXPECT_EQ(daemon.get("/api/generation/gen-000000000000").status, 404);
  EXPECT_EQ(daemon.get("/api/generation/gen-000000000000/images/0").status, 404);
  EXPECT_EQ(daemon.request("POST", "/api/generation/gen-000000000000/cancel").status, 404);
  EXPECT_EQ(daemon.get("/api/generation/gen-000000000000/events").status, 404);
  EXPECT_EQ(daemon.get("/api/suites/nope").status, 404);
  EXPECT_EQ(daemon.request("DELETE", "/api/suites/nope").status, 404);

  // Nothing changed, and the daemon still serves.
  EXPECT_EQ(daemon.get("/api/generation").json()["count"], 0);
  EXPECT_EQ(daemon.get("/api/suites").json()["count"], 1);
  EXPECT_EQ(daemon.get("/api/inference/models").json()["count"], 0);
  const RawResponse good = daemon.post("/api/generation", kSmall);
  ASSERT_EQ(good.status, 202);
  EXPECT_EQ(waitForJob(daemon, good.json()["id"])["state"], "succeeded");
  const std::string id = good.json()["id"];
  EXPECT_EQ(daemon.get("/api/generation/" + id + "/images/x").status, 400);
  EXPECT_EQ(daemon.get("/api/generation/" + id + "/images/5").status, 404);
  EXPECT_EQ(daemon.request("POST", "/api/generation/" + id + "/cancel").status, 409);
}

TEST(GenerationIntegrationTest, SuitesAndFinishedJobsSurviveARestart) {
  TempDir data("deviceops-generation-restart");
  std::string id, suiteId;
  std::string png;
  {
    TestDaemon daemon(config(), {"--data-dir", data.root().string()});
    ASSERT_TRUE(daemon.started()) << daemon.log();
    suiteId = importTiny(daemon)["id"];
    const RawResponse submitted = daemon.post("/api/generation", kSmall);
    ASSERT_EQ(submitted.status, 202);
    id = submitted.json()["id"];
    ASSERT_EQ(waitForJob(daemon, id)["state"], "succeeded");
    png = daemon.get("/api/generation/" + id + "/images/0").body;
    EXPECT_EQ(daemon.stop(), 0);
  }
  TestDaemon daemon(config(), {"--data-dir", data.root().string()});
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const json suite = daemon.get("/api/suites/tiny").json();
  EXPECT_EQ(suite["id"], suiteId);
  EXPECT_EQ(suite["state"], "registered");  // registration persists, residency does not
  const json job = daemon.get("/api/generation/" + id).json();
  EXPECT_EQ(job["state"], "succeeded");
  EXPECT_EQ(daemon.get("/api/generation/" + id + "/images/0").body, png);
  // The same request again: the same bytes (same suite + parameters + seed, same device type).
  const RawResponse again = daemon.post("/api/generation", kSmall);
  ASSERT_EQ(again.status, 202);
  ASSERT_EQ(waitForJob(daemon, again.json()["id"])["state"], "succeeded");
  EXPECT_EQ(
      daemon.get("/api/generation/" + again.json()["id"].get<std::string>() + "/images/0").body,
      png);
  EXPECT_EQ(daemon.request("DELETE", "/api/suites/tiny").status, 200);
  EXPECT_EQ(daemon.get("/api/suites").json()["count"], 0);
}

TEST(GenerationIntegrationTest, CancelStopsTheRunAndFreesTheSuite) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  importTiny(daemon);
  json request = kSmall;
  request["steps"] = 1000;
  request["refiner"] = {{"mode", "never"}};
  const RawResponse submitted = daemon.post("/api/generation", request);
  ASSERT_EQ(submitted.status, 202);
  const std::string id = submitted.json()["id"];
  const auto giveUp = std::chrono::steady_clock::now() + 60s;
  while (daemon.get("/api/generation/" + id).json()["progress"]["step"] < 2 &&
         std::chrono::steady_clock::now() < giveUp) {
    std::this_thread::sleep_for(5ms);
  }
  // Held while it runs: not unloadable.
  EXPECT_EQ(daemon.get("/api/suites/tiny").json()["activeGenerations"], 1);
  EXPECT_EQ(daemon.request("POST", "/api/suites/tiny/unload").status, 409);
  EXPECT_EQ(daemon.request("POST", "/api/generation/" + id + "/cancel").status, 202);
  const json job = waitForJob(daemon, id);
  EXPECT_EQ(job["state"], "cancelled");
  EXPECT_LT(job["progress"]["step"].get<int>(), 1000);
  const json models = daemon.get("/api/inference/models").json();
  for (const json& model : models["models"]) {
    EXPECT_EQ(model["holds"], 0) << model.dump();
  }
  EXPECT_EQ(daemon.request("POST", "/api/suites/tiny/unload").status, 200);
}

TEST(GenerationIntegrationTest, EverySchedulerWithEveryRefinerMode) {
  TestDaemon daemon(config());
  ASSERT_TRUE(daemon.started()) << daemon.log();
  importTiny(daemon);
  std::vector<std::string> ids;
  for (const char* scheduler : {"euler", "euler_ancestral", "dpmpp_2m_karras"}) {
    for (const char* mode : {"never", "always", "auto"}) {
      json request = kSmall;
      request["steps"] = 10;
      request["scheduler"] = scheduler;
      request["refiner"] = {{"mode", mode}};
      request["timestepSpacing"] = std::string(scheduler) == "euler" ? "trailing" : "leading";
      const RawResponse submitted = daemon.post("/api/generation", request);
      ASSERT_EQ(submitted.status, 202) << submitted.body;
      ids.push_back(submitted.json()["id"]);
    }
  }
  std::set<std::string> images;
  for (const std::string& id : ids) {
    const json job = waitForJob(daemon, id);
    SCOPED_TRACE(job["parameters"].dump());
    ASSERT_EQ(job["state"], "succeeded") << job["error"].dump();
    const std::string mode = job["parameters"]["refiner"]["mode"];
    const bool refined = job["report"]["refiner"]["refine"];
    EXPECT_EQ(job["report"]["stages"].size(), refined ? 2u : 1u);
    if (mode != "auto") {
      EXPECT_EQ(refined, mode == "always");
    }
    images.insert(daemon.get(job["images"][0]["url"].get<std::string>()).body);
  }
  EXPECT_GE(images.size(), 6u);  // the samplers and refiner choices give different images
}

TEST(GenerationIntegrationTest, DisabledAnswers503WithTheReason) {
  TestDaemon daemon(config() + "[generation]\nenabled = false\n");
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const RawResponse suites = daemon.get("/api/suites");
  EXPECT_EQ(suites.status, 503);
  EXPECT_NE(suites.json()["error"]["message"].get<std::string>().find("[generation]"),
            std::string::npos);
  EXPECT_EQ(daemon.post("/api/generation", kSmall).status, 503);
}

}  // namespace
}  // namespace deviceops::testing
