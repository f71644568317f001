// deviceops vae ... and generate --vae against a fake server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
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
namespace fs = std::filesystem;

const Json kFixVae = Json::parse(R"({
  "name": "fixvae", "suite": "suite-0123456789ab", "default": true,
  "source": {"path": "/models/fixvae.safetensors", "uploaded": false, "format": "safetensors",
             "sha256": "ab", "sizeBytes": 334643268},
  "keyFormat": "ldm", "prefix": "first_stage_model.", "tensors": 248, "parameters": 83653863,
  "dtypes": {"F32": 248},
  "components": {"vae_decoder": {"modelName": "tiny.vae_decoder", "sha256": "cd", "patched": 138},
                 "vae_encoder": {"modelName": "tiny.vae_encoder", "sha256": "ef", "patched": 110}},
  "patchMs": 12.5, "createdAt": "2026-12-05T10:00:00.000Z",
  "quality": {"psnr": 24.1, "ssim": 0.81, "rank": 1, "comparedAt": "2026-12-05T10:01:00.000Z"}
})");

const Json kStockVae = Json::parse(R"({
  "name": "stock", "suite": "suite-0123456789ab", "default": false, "source": null,
  "components": {"vae_decoder": {"modelName": "tiny.vae_decoder", "sha256": "cd", "patched": 0},
                 "vae_encoder": {"modelName": "tiny.vae_encoder", "sha256": "ef", "patched": 0}},
  "quality": {"psnr": 23.456, "ssim": 0.7891, "rank": 2, "comparedAt": "2026-12-05T10:01:00.000Z"}
})");

// Uploaded, diffusers keys, decoder only, never compared.
const Json kHalfVae = Json::parse(R"({
  "name": "halfvae", "suite": "suite-0123456789ab", "default": false,
  "source": {"path": null, "uploaded": true, "format": "pt", "sha256": "12", "sizeBytes": 4096},
  "keyFormat": "diffusers", "prefix": "", "tensors": 60, "parameters": 83653,
  "dtypes": {"F32": 50, "F16": 10},
  "components": {"vae_decoder": {"modelName": "tiny.vae_decoder", "sha256": "cd", "patched": 40},
                 "vae_encoder": null},
  "patchMs": 3.26, "createdAt": "2026-12-05T10:02:00.000Z", "quality": null
})");

const Json kComparison = Json::parse(R"({
  "suite": "suite-0123456789ab", "comparedAt": "2026-12-05T10:01:00.000Z", "probeSize": 64,
  "probes": ["gradient", "edges"],
  "ranking": [
    {"rank": 1, "name": "fixvae", "psnr": 24.1, "ssim": 0.81, "nanRate": {"fp32": 0, "fp16": 0},
     "overflowRate16": 0, "clippedFraction": 0.001, "colourfulnessDrift": 1.5, "decodeMs": 12.34,
     "peakBytes": 1048576, "perProbe": [{"probe": "gradient", "psnr": 25.0, "ssim": 0.9}]},
    {"rank": 2, "name": "stock", "psnr": 23.456, "ssim": 0.7891,
     "nanRate": {"fp32": 0, "fp16": 0.25}, "overflowRate16": 0.5, "clippedFraction": 0.0126,
     "colourfulnessDrift": -3.26, "decodeMs": 10, "peakBytes": 3145728, "perProbe": []}],
  "winner": "fixvae", "selected": false, "default": "stock"
})");

CannedReply errorReply(int status, const std::string& code, const std::string& message) {
  return CannedReply::json(
      status,
      Json{{"error", {{"code", code}, {"message", message}, {"details", Json::object()}}}}.dump());
}

// deviceopsd's VAE routes (suite "tiny") and the generation submit, with canned answers.
CannedReply answer(const RecordedRequest& request) {
  const std::string key = request.method + " " + request.target;
  if (key == "GET /api/suites/tiny/vaes") {
    return CannedReply::json(200, Json{{"suite", "suite-0123456789ab"},
                                       {"default", "fixvae"},
                                       {"vaes", {kStockVae, kFixVae, kHalfVae}}}
                                      .dump());
  }
  if (key == "GET /api/suites/empty/vaes") {
    return CannedReply::json(
        200, Json{{"suite", "suite-0"}, {"default", "stock"}, {"vaes", Json::array()}}.dump());
  }
  if (key == "POST /api/suites/tiny/vaes") {
    const Json body = Json::parse(request.body);
    if (body.value("name", "") == "folded") {
      return errorReply(422, "UNPROCESSABLE",
                        "the decoder of tiny has folded weights; re-export it with: "
                        "python3 tools/export_vae.py --suite tiny");
    }
    return CannedReply::json(201, kFixVae.dump());
  }
  if (request.method == "POST" && request.target.starts_with("/api/suites/tiny/vaes?")) {
    return CannedReply::json(201, kHalfVae.dump());
  }
  if (key == "POST /api/suites/tiny/vaes/compare") {
    Json comparison = kComparison;
    if (Json::parse(request.body).value("select", false)) {
      comparison["selected"] = true;
      comparison["default"] = "fixvae";
    }
    return CannedReply::json(200, comparison.dump());
  }
  if (key == "PUT /api/suites/tiny/vae") {
    return CannedReply::json(
        200, Json{{"suite", "suite-0123456789ab"}, {"default", Json::parse(request.body)["name"]}}
                 .dump());
  }
  if (key == "DELETE /api/suites/tiny/vaes/halfvae") return CannedReply::json(204, "");
  if (key == "POST /api/generation") {
    return CannedReply::json(202, Json{{"id", "gen-1"}, {"state", "queued"}}.dump());
  }
  if (key == "GET /api/generation/gen-1") {
    return CannedReply::json(
        200, Json{{"id", "gen-1"},
                  {"state", "queued"},
                  {"parameters", {{"prompt", "a cat"}, {"vae", {{"name", "fixvae"}}}}}}
                 .dump());
  }
  return errorReply(404, "NOT_FOUND", "no endpoint " + key);
}

using fakes::CliRun;

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "cli-vae-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class VaeCliTest : public ::testing::Test {
 protected:
  CliRun run(std::vector<std::string> args) {
    return fakes::runCliAgainst(server_.url(), std::move(args));
  }

  std::vector<std::string> targets() const {
    std::vector<std::string> out;
    for (const RecordedRequest& request : server_.requests()) {
      out.push_back(request.method + " " + request.target);
    }
    return out;
  }

  FakeHttpServer server_{answer};
};

TEST_F(VaeCliTest, AddSendsTheNameAndTheAbsolutePath) {
  TempDir dir;
  std::ofstream(dir.path() / "fixvae.safetensors") << "weights";
  const fs::path previous = fs::current_path();
  fs::current_path(dir.path());
  const CliRun result = run({"vae", "add", "tiny", "fixvae.safetensors"});
  fs::current_path(previous);
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out,
            "added fixvae to suite-0123456789ab: safetensors, ldm keys, 248 tensors\n"
            "patched 138 decoder and 110 encoder tensors in 12.5 ms\n");
  EXPECT_EQ(result.err, "");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/api/suites/tiny/vaes");
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(Json::parse(requests[0].body),
            (Json{{"name", "fixvae"}, {"path", (dir.path() / "fixvae.safetensors").string()}}));
}

TEST_F(VaeCliTest, AddSendsAPathNotFoundHereAsGivenAndHonoursName) {
  const CliRun result =
      run({"vae", "add", "tiny", "vaes/sdxl-fix.safetensors", "--name", "my vae", "--json"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(Json::parse(result.out), kFixVae);  // --json: the server's reply
  EXPECT_EQ(Json::parse(server_.requests().at(0).body),
            (Json{{"name", "my vae"}, {"path", "vaes/sdxl-fix.safetensors"}}));
}

TEST_F(VaeCliTest, AddUploadSendsTheBytesWithNameAndFormat) {
  TempDir dir;
  const std::string bytes = std::string("PK\x03\x04\0\x01\xff", 7) + std::string(70000, 'w');
  const fs::path file = dir.path() / "half vae.PT";
  std::ofstream(file, std::ios::binary) << bytes;
  const CliRun result = run({"vae", "add", "tiny", file.string(), "--upload"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out,
            "added halfvae to suite-0123456789ab: pt, diffusers keys, 60 tensors\n"
            "patched 40 decoder tensors (no encoder) in 3.3 ms\n");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/api/suites/tiny/vaes?name=half%20vae&format=pt");
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/octet-stream");
  EXPECT_EQ(requests[0].body, bytes);

  // Each extension names its format; --name replaces the stem.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a.safetensors", "safetensors"}, {"b.ckpt", "ckpt"}, {"c.bin", "bin"}, {"d.pt", "pt"}};
  for (const auto& [fileName, format] : cases) {
    SCOPED_TRACE(fileName);
    std::ofstream(dir.path() / fileName) << "x";
    const CliRun upload =
        run({"vae", "add", "tiny", (dir.path() / fileName).string(), "--upload", "--name", "n/1"});
    EXPECT_EQ(upload.exitCode, kExitOk) << upload.err;
    EXPECT_EQ(server_.requests().back().target,
              "/api/suites/tiny/vaes?name=n%2F1&format=" + format);
    EXPECT_EQ(server_.requests().back().body, "x");
  }
}

TEST_F(VaeCliTest, AddUploadRefusesAnUnknownExtensionOrAMissingFileWithoutARequest) {
  TempDir dir;
  for (const std::string name : {"vae.onnx", "vae", "vae.safetensors.txt"}) {
    SCOPED_TRACE(name);
    std::ofstream(dir.path() / name) << "x";
    const std::string path = (dir.path() / name).string();
    const CliRun result = run({"vae", "add", "tiny", path, "--upload"});
    EXPECT_EQ(result.exitCode, kExitUsage);
    EXPECT_EQ(result.err, "error: cannot tell the format of " + path +
                              ": --upload takes .safetensors, .pt, .ckpt or .bin\n");
    EXPECT_EQ(result.out, "");
  }
  const std::string missing = (dir.path() / "missing.safetensors").string();
  const CliRun result = run({"vae", "add", "tiny", missing, "--upload"});
  EXPECT_EQ(result.exitCode, kExitUsage);
  EXPECT_EQ(result.err, "error: cannot read " + missing + "\n");
  const CliRun directory = run({"vae", "add", "tiny", dir.path().string() + "/x.bin", "--upload"});
  EXPECT_EQ(directory.exitCode, kExitUsage);
  fs::create_directory(dir.path() / "folder.bin");
  EXPECT_EQ(run({"vae", "add", "tiny", (dir.path() / "folder.bin").string(), "--upload"}).exitCode,
            kExitUsage);
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(VaeCliTest, AddSurfacesTheServersMessageWithExitOne) {
  const CliRun result = run({"vae", "add", "tiny", "/models/x.safetensors", "--name", "folded"});
  EXPECT_EQ(result.exitCode, kExitServerError);
  EXPECT_EQ(result.err,
            "error: the decoder of tiny has folded weights; re-export it with: python3 "
            "tools/export_vae.py --suite tiny (UNPROCESSABLE, HTTP 422)\n");
  EXPECT_EQ(result.out, "");
}

TEST_F(VaeCliTest, ListIsATableWithTheDefaultMarked) {
  const CliRun result = run({"vae", "list", "tiny"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out,
            "NAME     DEFAULT  FORMAT       KEYS       TENSORS  ENCODER   PSNR    SSIM\n"
            "stock             -            -                -  yes      23.46  0.7891\n"
            "fixvae   *        safetensors  ldm            248  yes      24.10  0.8100\n"
            "halfvae           pt           diffusers       60  no           -       -\n");
  EXPECT_EQ(targets(), std::vector<std::string>{"GET /api/suites/tiny/vaes"});

  const CliRun json = run({"vaes", "list", "tiny", "--json"});  // the alias, and --json
  EXPECT_EQ(json.exitCode, kExitOk) << json.err;
  EXPECT_EQ(Json::parse(json.out)["vaes"], (Json{kStockVae, kFixVae, kHalfVae}));

  EXPECT_EQ(run({"vae", "list", "empty"}).out,
            "no VAEs; add one with: deviceops vae add SUITE FILE\n");
  const CliRun missing = run({"vae", "list", "nope"});
  EXPECT_EQ(missing.exitCode, kExitServerError);
  EXPECT_EQ(missing.err, "error: no endpoint GET /api/suites/nope/vaes (NOT_FOUND, HTTP 404)\n");
}

TEST_F(VaeCliTest, CompareSendsWhatWasGivenAndPrintsTheRanking) {
  TempDir dir;
  std::ofstream(dir.path() / "probe.png") << "png";
  const fs::path previous = fs::current_path();
  fs::current_path(dir.path());
  const CliRun result =
      run({"vae", "compare", "tiny", "--candidate", "stock", "--candidate", "fixvae", "--image",
           "probe.png", "--image", "probes/cat.png", "--size", "128", "--select"});
  fs::current_path(previous);
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out,
            "RANK  NAME     PSNR    SSIM  NAN16  NAN32  CLIP  DRIFT  DECODE_MS     PEAK\n"
            "   1  fixvae  24.10  0.8100   0.0%   0.0%  0.1%    1.5       12.3  1.0 MiB\n"
            "   2  stock   23.46  0.7891  25.0%   0.0%  1.3%   -3.3       10.0  3.0 MiB\n"
            "winner: fixvae\n"
            "selected as default\n");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method + " " + requests[0].target, "POST /api/suites/tiny/vaes/compare");
  EXPECT_EQ(Json::parse(requests[0].body),
            (Json{{"candidates", {"stock", "fixvae"}},
                  {"images", {(dir.path() / "probe.png").string(), "probes/cat.png"}},
                  {"size", 128},
                  {"select", true}}));

  // Without options: all candidates, the server's probes, nothing selected.
  const CliRun plain = run({"vae", "compare", "tiny"});
  EXPECT_EQ(plain.exitCode, kExitOk) << plain.err;
  EXPECT_THAT(plain.out, ::testing::EndsWith("\nwinner: fixvae\n"));
  EXPECT_EQ(Json::parse(server_.requests().at(1).body), (Json{{"select", false}}));

  const CliRun json = run({"vae", "compare", "tiny", "--json"});
  EXPECT_EQ(Json::parse(json.out), kComparison);

  // One value per --candidate: the suite may come after it.
  EXPECT_EQ(run({"vae", "compare", "--candidate", "stock", "tiny"}).exitCode, kExitOk);
  EXPECT_EQ(Json::parse(server_.requests().at(3).body),
            (Json{{"candidates", {"stock"}}, {"select", false}}));
  EXPECT_EQ(run({"vae", "compare", "--candidate", "stock", "fixvae"}).exitCode, kExitServerError);
}

TEST_F(VaeCliTest, SelectAndRemove) {
  const CliRun select = run({"vae", "select", "tiny", "fixvae"});
  EXPECT_EQ(select.exitCode, kExitOk) << select.err;
  EXPECT_EQ(select.out, "default VAE of suite-0123456789ab: fixvae\n");
  EXPECT_EQ(Json::parse(server_.requests().at(0).body), (Json{{"name", "fixvae"}}));
  EXPECT_EQ(Json::parse(run({"vae", "select", "tiny", "stock", "--json"}).out),
            (Json{{"suite", "suite-0123456789ab"}, {"default", "stock"}}));

  const CliRun remove = run({"vae", "remove", "tiny", "halfvae"});
  EXPECT_EQ(remove.exitCode, kExitOk) << remove.err;
  EXPECT_EQ(remove.out, "removed halfvae from tiny\n");
  const CliRun removeJson = run({"vae", "remove", "tiny", "halfvae", "--json"});
  EXPECT_EQ(removeJson.exitCode, kExitOk) << removeJson.err;
  EXPECT_EQ(removeJson.out, "");  // 204: no reply to print
  const CliRun missing = run({"vae", "remove", "tiny", "no such"});
  EXPECT_EQ(missing.exitCode, kExitServerError);
  EXPECT_EQ(missing.err,
            "error: no endpoint DELETE /api/suites/tiny/vaes/no%20such (NOT_FOUND, HTTP 404)\n");
  EXPECT_EQ(targets(),
            (std::vector<std::string>{"PUT /api/suites/tiny/vae", "PUT /api/suites/tiny/vae",
                                      "DELETE /api/suites/tiny/vaes/halfvae",
                                      "DELETE /api/suites/tiny/vaes/halfvae",
                                      "DELETE /api/suites/tiny/vaes/no%20such"}));
}

TEST_F(VaeCliTest, GenerateVaeMergesWithTiling) {
  const CliRun both = run(
      {"generate", "a cat", "--suite", "tiny", "--tiling", "on", "--vae", "fixvae", "--no-wait"});
  EXPECT_EQ(both.exitCode, kExitOk) << both.err;
  EXPECT_EQ(both.out, "gen-1 queued\n");
  EXPECT_EQ(Json::parse(server_.requests().at(0).body),
            (Json{{"suite", "tiny"},
                  {"prompt", "a cat"},
                  {"vae", {{"tiling", "on"}, {"name", "fixvae"}}}}));
  EXPECT_EQ(run({"generate", "a cat", "--suite", "tiny", "--vae", "stock", "--no-wait"}).exitCode,
            kExitOk);
  EXPECT_EQ(Json::parse(server_.requests().at(1).body),
            (Json{{"suite", "tiny"}, {"prompt", "a cat"}, {"vae", {{"name", "stock"}}}}));

  // generation show names the job's VAE.
  const CliRun show = run({"generation", "show", "gen-1"});
  EXPECT_EQ(show.exitCode, kExitOk) << show.err;
  EXPECT_THAT(show.out, HasSubstr("\nvae:             fixvae\nvae tiling:      -\n"));
}

TEST_F(VaeCliTest, UsageErrorsSendNothing) {
  const std::vector<std::vector<std::string>> cases = {
      {"vae"},                                       // a subcommand is required
      {"vae", "add", "tiny"},                        // FILE is required
      {"vae", "list"},                               // SUITE is required
      {"vae", "select", "tiny"},                     // NAME is required
      {"vae", "remove", "tiny"},                     // NAME is required
      {"vae", "compare", "tiny", "--size", "0"},     // not positive
      {"vae", "compare", "tiny", "--size", "many"},  // not a number
      {"vae", "frobnicate", "tiny"},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(::testing::PrintToString(args));
    const CliRun result = run(args);
    EXPECT_EQ(result.exitCode, kExitUsage);
    EXPECT_NE(result.err, "");
  }
  EXPECT_TRUE(server_.requests().empty());
}

}  // namespace
}  // namespace deviceops::client
