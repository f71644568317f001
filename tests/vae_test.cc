// /api/suites/{suiteId}/vaes... through a real daemon: register by path and by upload, list,
// compare and select, generate with a VAE, bad input, restart, and the CLI against it. Weights
// files from tests/models/make_vae_files.py.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
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

std::string config(const std::string& extra = "") {
  return "[inference]\nmodelRoots = [\"" + kModels.string() + "\"]\n" + extra +
         "[telemetry]\nenabled = false\n[training]\nenabled = false\n";
}

std::string readFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class VaeIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kModels / "vae/custom.safetensors")) << "VAE test files missing";
    ASSERT_TRUE(daemon.started()) << daemon.log();
    const RawResponse imported =
        daemon.post("/api/suites", {{"name", "tiny"}, {"path", "sdxl/base"}});
    ASSERT_EQ(imported.status, 201) << imported.body;
  }

  TempDir data{"deviceops-vae-test"};
  TestDaemon daemon{config(), {"--data-dir", data.root().string()}};
};

TEST_F(VaeIntegrationTest, RegisterCompareSelectGenerateAndRestart) {
  const RawResponse added =
      daemon.post("/api/suites/tiny/vaes", {{"name", "ldm"}, {"path", "vae/custom.ckpt"}});
  ASSERT_EQ(added.status, 201) << added.body;
  const json vae = added.json();
  EXPECT_EQ(vae["keyFormat"], "ldm");
  EXPECT_EQ(vae["prefix"], "first_stage_model.");
  EXPECT_EQ(vae["source"]["format"], "ckpt");
  EXPECT_EQ(vae["default"], false);
  EXPECT_GT(vae["components"]["vae_decoder"]["patched"].get<int>(), 10);
  EXPECT_FALSE(vae["components"]["vae_encoder"].is_null());

  // An upload of the degraded weights, streamed as the body.
  const RawResponse uploaded =
      daemon.request("POST", "/api/suites/tiny/vaes?name=degraded&format=safetensors",
                     readFile(kModels / "vae/degraded.safetensors"),
                     {{"Content-Type", "application/octet-stream"}});
  ASSERT_EQ(uploaded.status, 201) << uploaded.body;
  EXPECT_EQ(uploaded.json()["source"]["uploaded"], true);
  EXPECT_TRUE(uploaded.json()["source"]["path"].is_null());

  const json list = daemon.get("/api/suites/tiny/vaes").json();
  ASSERT_EQ(list["count"], 3);
  EXPECT_EQ(list["vaes"][0]["name"], "stock");
  EXPECT_EQ(list["vaes"][0]["default"], true);
  EXPECT_EQ(list["vaes"][1]["name"], "ldm");
  EXPECT_EQ(list["vaes"][2]["name"], "degraded");

  // Synchronous: it loads the suite and runs every candidate (seconds under ASan).
  const RawResponse compared =
      daemon.request("POST", "/api/suites/tiny/vaes/compare", R"({"size": 64, "select": true})",
                     {{"Content-Type", "application/json"}}, 120s);
  ASSERT_EQ(compared.status, 200) << compared.body;
  const json comparison = compared.json();
  EXPECT_EQ(comparison["winner"], "ldm") << comparison.dump(1);
  EXPECT_EQ(comparison["default"], "ldm");
  EXPECT_EQ(comparison["probes"].size(), 6u);
  EXPECT_EQ(daemon.get("/api/suites/tiny").json()["defaultVae"], "ldm");

  // Generations decode with the default, or the VAE they name.
  json request = {{"suite", "tiny"}, {"prompt", "a cat"}, {"width", 64},
                  {"height", 64},    {"steps", 2},        {"seed", 3}};
  RawResponse submitted = daemon.post("/api/generation", request);
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  json job = waitForJob(daemon, submitted.json()["id"]);
  ASSERT_EQ(job["state"], "succeeded") << job.dump();
  EXPECT_EQ(job["parameters"]["vae"]["name"], "ldm");
  request["vae"] = "stock";
  submitted = daemon.post("/api/generation", request);
  ASSERT_EQ(submitted.status, 202) << submitted.body;
  job = waitForJob(daemon, submitted.json()["id"]);
  EXPECT_EQ(job["parameters"]["vae"]["name"], "stock");

  // Everything survives a restart.
  ASSERT_EQ(daemon.stop(), 0);
  TestDaemon again(config(), {"--data-dir", data.root().string()});
  ASSERT_TRUE(again.started()) << again.log();
  const json after = again.get("/api/suites/tiny/vaes").json();
  EXPECT_EQ(after["default"], "ldm") << after.dump();
  EXPECT_EQ(after["count"], 3);
  EXPECT_EQ(after["vaes"][1]["quality"]["rank"], 1);
  EXPECT_EQ(after["comparison"]["winner"], "ldm");

  // Remove: not the default; then select stock and remove.
  EXPECT_EQ(again.request("DELETE", "/api/suites/tiny/vaes/ldm").status, 409);
  EXPECT_EQ(again
                .request("PUT", "/api/suites/tiny/vae", R"({"name": "stock"})",
                         {{"Content-Type", "application/json"}})
                .status,
            200);
  EXPECT_EQ(again.request("DELETE", "/api/suites/tiny/vaes/ldm").status, 204);
  EXPECT_EQ(again.get("/api/suites/tiny/vaes").json()["count"], 2);
}

TEST_F(VaeIntegrationTest, BadInputIs4xxAndChangesNothing) {
  const auto expect = [&](const RawResponse& response, int status, const std::string& needle) {
    EXPECT_EQ(response.status, status) << response.body;
    EXPECT_NE(response.body.find(needle), std::string::npos) << response.body;
  };
  expect(daemon.post("/api/suites/nope/vaes", {{"path", "vae/custom.safetensors"}}), 404, "nope");
  expect(daemon.post("/api/suites/tiny/vaes", {{"path", "/etc/passwd"}}), 403, "PERMISSION");
  expect(daemon.post("/api/suites/tiny/vaes", {{"path", "vae/mismatch.safetensors"}}), 400,
         "decoder.conv_in.weight");
  expect(daemon.post("/api/suites/tiny/vaes", {{"path", "vae/custom.safetensors"}, {"x", 1}}), 400,
         "unknown field");
  expect(daemon.post("/api/suites/tiny/vaes", {{"path", 3}}), 400, "path");
  expect(daemon.request("POST", "/api/suites/tiny/vaes", "{not json",
                        {{"Content-Type", "application/json"}}),
         400, "");
  expect(daemon.request("POST", "/api/suites/tiny/vaes?name=x", "abc",
                        {{"Content-Type", "application/octet-stream"}}),
         400, "format");
  expect(daemon.request("POST", "/api/suites/tiny/vaes?name=x&format=pt", "not a zip at all",
                        {{"Content-Type", "application/octet-stream"}}),
         400, "");
  expect(daemon.request("DELETE", "/api/suites/tiny/vaes/nope"), 404, "nope");
  expect(daemon.request("PUT", "/api/suites/tiny/vae", R"({"name": "nope"})",
                        {{"Content-Type", "application/json"}}),
         404, "nope");
  expect(daemon.post("/api/suites/tiny/vaes/compare", {{"candidates", {"nope"}}}), 404, "nope");
  expect(daemon.post("/api/suites/tiny/vaes/compare", {{"size", 63}}), 400, "size");
  json request = {{"suite", "tiny"}, {"prompt", "a cat"}, {"vae", {{"name", "nope"}}}};
  expect(daemon.post("/api/generation", request), 400, "nope");
  request["vae"] = 7;
  expect(daemon.post("/api/generation", request), 400, "vae");
  const json list = daemon.get("/api/suites/tiny/vaes").json();
  EXPECT_EQ(list["count"], 1) << list.dump();
  EXPECT_EQ(daemon.get("/api/generation").json()["count"], 0);
}

TEST(VaeUploadLimitTest, AnUploadOverTheLimitIs413) {
  TestDaemon daemon(config("maxUploadBytes = 4096\n"));
  ASSERT_TRUE(daemon.started()) << daemon.log();
  ASSERT_EQ(daemon.post("/api/suites", {{"name", "tiny"}, {"path", "sdxl/base"}}).status, 201);
  const RawResponse response =
      daemon.request("POST", "/api/suites/tiny/vaes?name=big&format=safetensors",
                     std::string(8192, 'x'), {{"Content-Type", "application/octet-stream"}});
  EXPECT_EQ(response.status, 413) << response.body;
  EXPECT_EQ(daemon.get("/api/suites/tiny/vaes").json()["count"], 1);
}

TEST_F(VaeIntegrationTest, CliAddsListsComparesAndSelects) {
  const std::string url = "http://127.0.0.1:" + std::to_string(daemon.port());
  const auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {DEVICEOPS_CLI_PATH, "--url", url});
    return runProgram(args);
  };
  auto [code, out] = cli(
      {"vae", "add", "tiny", (kModels / "vae/custom.bin").string(), "--name", "bin", "--upload"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("bin"), std::string::npos) << out;
  std::tie(code, out) = cli({"vae", "list", "tiny"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("stock"), std::string::npos) << out;
  EXPECT_NE(out.find("bin"), std::string::npos) << out;
  std::tie(code, out) =
      cli({"--timeout", "120", "vae", "compare", "tiny", "--size", "64", "--select"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("winner: bin"), std::string::npos) << out;
  EXPECT_EQ(daemon.get("/api/suites/tiny/vaes").json()["default"], "bin");
  std::tie(code, out) = cli({"vae", "select", "tiny", "stock"});
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) = cli({"vae", "remove", "tiny", "bin"});
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) = cli({"vae", "select", "tiny", "bin"});
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("no VAE"), std::string::npos) << out;
}

}  // namespace
}  // namespace deviceops::testing
