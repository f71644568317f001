// deviceops suites ..., generate and generation ... against a fake server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
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
namespace fs = std::filesystem;

const Json kSuite = Json::parse(R"({
  "id": "suite-0123456789ab", "name": "tiny", "kind": "sdxl", "state": "ready", "loaded": true,
  "hasRefiner": true, "score": 0.5, "memoryByDevice": {"cpu0": 12582912},
  "activeGenerations": 1, "createdAt": "2026-11-27T10:00:00.000Z", "lastUsedAt": null,
  "components": [
    {"role": "tokenizer", "path": "/m/tokenizer", "sha256": "cd", "sizeBytes": 1000,
     "modelName": "", "state": "ready", "chargedBytes": 0, "sharedWith": []},
    {"role": "unet", "path": "/m/unet/model.onnx", "sha256": "ab", "sizeBytes": 4194304,
     "modelName": "tiny.unet", "state": "ready", "chargedBytes": 8388608,
     "sharedWith": ["other", "third"], "placements": []}],
  "settings": {}, "source": {},
  "validation": {"score": 0.5, "compatible": false, "checks": [
    {"name": "contextWidth", "description": "context widths match", "passed": true,
     "component": "unet", "tensor": "encoder_hidden_states", "expected": "64", "found": "64"},
    {"name": "timeIds", "description": "time ids width", "passed": false,
     "component": "refiner_unet", "tensor": "time_ids", "expected": "5", "found": "6"}]}
})");

const Json kSuiteSummary = {{"id", "suite-0123456789ab"},
                            {"name", "tiny"},
                            {"state", "registered"},
                            {"loaded", false},
                            {"hasRefiner", false},
                            {"score", 1.0},
                            {"memoryByDevice", Json::object()},
                            {"activeGenerations", 0}};

const std::string kPng = std::string("\x89PNG\r\n\x1a\n", 8);

Json finishedJob(const std::string& state) {
  Json job = Json::parse(R"({
    "id": "gen-1", "suite": "tiny", "suiteId": "suite-0123456789ab",
    "parameters": {"prompt": "a cat", "negativePrompt": "", "width": 64, "height": 64,
                   "steps": 4, "guidance": 5.0, "scheduler": "euler", "seed": 3, "batch": 2,
                   "refiner": {"mode": "auto"}, "vae": {"tiling": "auto"}},
    "createdAt": "2026-11-27T10:00:00.000Z", "startedAt": "2026-11-27T10:00:01.000Z",
    "finishedAt": "2026-11-27T10:00:03.000Z",
    "progress": {"stage": "done", "step": 4, "totalSteps": 4},
    "images": [], "report": {}, "error": null})");
  job["state"] = state;
  if (state == "succeeded") {
    for (int i = 0; i < 2; ++i) {
      job["images"].push_back({{"index", i},
                               {"seed", 3 + i},
                               {"fileName", std::to_string(i) + ".png"},
                               {"contentType", "image/png"},
                               {"sizeBytes", 2048},
                               {"url", "/api/generation/gen-1/images/" + std::to_string(i)}});
    }
    job["report"] = {{"refiner", {{"refine", false}, {"reason", "sharpness 30.0 >= 20.0"}}},
                     {"totalSeconds", 2.5},
                     {"modelSeconds", {{"unet", 1.25}}}};
  } else {
    job["progress"]["stage"] = "base";
    job["error"] = {{"code", "INTERNAL"}, {"message", "unet returned NaN"}};
  }
  return job;
}

std::string event(int id, const std::string& type, const Json& data) {
  return (id > 0 ? "id: " + std::to_string(id) + "\n" : std::string()) + "event: " + type +
         "\ndata: " + data.dump() + "\n\n";
}

// The events of a 4-step job: base 3 steps, refiner 1, then `last` ("done" or "failed").
std::vector<std::string> jobEvents(const std::string& last) {
  return {
      // The job as it is when the stream opens (already decoding); the events replay it all.
      event(0, "snapshot",
            {{"id", "gen-1"},
             {"state", "running"},
             {"parameters", {{"batch", 2}}},
             {"progress", {{"stage", "decode"}, {"step", 4}, {"totalSteps", 4}}}}),
      event(1, "queued", {{"jobId", "gen-1"}, {"position", 0}}),
      event(2, "stage", {{"stage", "load"}}),
      event(3, "stage", {{"stage", "encode"}}),
      event(4, "stage", {{"stage", "base"}, {"steps", 3}}),
      event(5, "step", {{"step", 1}, {"totalSteps", 4}, {"stage", "base"}, {"seconds", 0.5}}),
      event(6, "step", {{"step", 2}, {"totalSteps", 4}, {"stage", "base"}, {"seconds", 0.25}}),
      event(7, "step", {{"step", 3}, {"totalSteps", 4}, {"stage", "base"}, {"seconds", 0.75}}),
      event(8, "stage", {{"stage", "assess"}}),
      event(9, "stage", {{"stage", "refiner"}, {"steps", 1}}),
      event(10, "step", {{"step", 4}, {"totalSteps", 4}, {"stage", "refiner"}, {"seconds", 1.0}}),
      event(11, "preview", {{"step", 4}, {"image", "data:image/png;base64,AAAA"}}),
      event(12, "stage", {{"stage", "decode"}}),
      event(13, last, {{"state", last == "done" ? "succeeded" : "failed"}, {"jobId", "gen-1"}}),
      "event: end\ndata: {}\n\n",
  };
}

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

CannedReply imageReply(int index) {
  CannedReply reply = CannedReply::json(200, kPng + "image" + std::to_string(index));
  reply.contentType = "image/png";
  return reply;
}

CannedReply errorReply(int status, const std::string& code, const std::string& message,
                       const Json& details = Json::object()) {
  return CannedReply::json(
      status, Json{{"error", {{"code", code}, {"message", message}, {"details", details}}}}.dump());
}

// deviceopsd's suite and generation routes with canned answers. `finalState` decides how the
// job ends; `splitEventsAt` > 0 breaks the first event stream off after that many events.
class FakeGenerationServer {
 public:
  explicit FakeGenerationServer(std::string finalState = "succeeded", std::size_t splitAt = 0)
      : finalState_(std::move(finalState)), splitAt_(splitAt) {}

  std::string url() const { return server_.url(); }
  std::vector<RecordedRequest> requests() const { return server_.requests(); }
  std::vector<std::string> targets() const {
    std::vector<std::string> out;
    for (const RecordedRequest& request : server_.requests()) {
      out.push_back(request.method + " " + request.target);
    }
    return out;
  }

 private:
  CannedReply answer(const RecordedRequest& request) {
    const std::string key = request.method + " " + request.target;
    const auto events = jobEvents(finalState_ == "succeeded" ? "done" : finalState_);
    if (key == "GET /api/suites") {
      return CannedReply::json(200, Json{{"suites", {kSuite, kSuiteSummary}}, {"count", 2}}.dump());
    }
    if (key == "GET /api/suites/tiny") return CannedReply::json(200, kSuite.dump());
    if (key == "POST /api/suites") {
      const Json body = Json::parse(request.body);
      if (body.value("name", "") == "bad") {
        return errorReply(409, "CONFLICT", "suite 'bad' is not compatible: time ids width",
                          {{"validation", kSuite["validation"]}});
      }
      return CannedReply::json(201, kSuite.dump());
    }
    if (key == "POST /api/suites/tiny/load" || key == "POST /api/suites/tiny/unload") {
      return CannedReply::json(200, kSuite.dump());
    }
    if (key == "DELETE /api/suites/tiny") {
      return CannedReply::json(200, Json{{"deleted", "tiny"}}.dump());
    }
    if (key == "POST /api/generation") {
      const Json body = Json::parse(request.body);
      if (body.value("width", 64) % 8 != 0) {
        return errorReply(400, "INVALID_ARGUMENT", "width must be a multiple of 8",
                          {{"field", "width"}});
      }
      Json job = finishedJob("queued");
      job["error"] = nullptr;
      return CannedReply::json(202, job.dump());
    }
    if (key == "GET /api/generation/gen-1/events") {
      std::lock_guard lock(mutex_);
      ++eventRequests_;
      if (splitAt_ > 0 && eventRequests_ == 1) return eventStream(joined(events, 0, splitAt_));
      if (splitAt_ > 0) {
        // A reconnection: the snapshot, then what came after Last-Event-ID.
        Json snapshot = {{"id", "gen-1"},
                         {"state", "running"},
                         {"progress", {{"stage", "base"}, {"step", 2}, {"totalSteps", 4}}}};
        return eventStream(event(0, "snapshot", snapshot) + joined(events, splitAt_, 99));
      }
      return eventStream(joined(events, 0, 99));
    }
    if (key == "GET /api/generation/gen-1") {
      return CannedReply::json(200, finishedJob(finalState_).dump());
    }
    if (key == "GET /api/generation/gen-1/images/0") return imageReply(0);
    if (key == "GET /api/generation/gen-1/images/1") return imageReply(1);
    if (key == "GET /api/generation") {
      Json job = finishedJob("succeeded");
      job.erase("report");
      return CannedReply::json(200, Json{{"jobs", {job}}, {"count", 1}}.dump());
    }
    if (key == "POST /api/generation/gen-1/cancel") {
      return CannedReply::json(202, finishedJob("cancelled").dump());
    }
    return errorReply(404, "NOT_FOUND", "no endpoint " + key);
  }

  std::string finalState_;
  std::size_t splitAt_;
  std::mutex mutex_;
  int eventRequests_ = 0;  // guarded by mutex_
  FakeHttpServer server_{[this](const RecordedRequest& request) { return answer(request); }};
};

using fakes::CliRun;
constexpr auto runCliWith = fakes::runCliAgainst;

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "cli-generation-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

class GenerationCliTest : public ::testing::Test {
 protected:
  CliRun run(std::vector<std::string> args) { return runCliWith(server_.url(), std::move(args)); }
  FakeGenerationServer server_;
};

TEST_F(GenerationCliTest, SuitesListIsATable) {
  const CliRun result = run({"suites", "list"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out,
            "NAME  ID                  STATE       REFINER  SCORE  ACTIVE  MEMORY\n"
            "tiny  suite-0123456789ab  ready       yes        50%       1  cpu0 12.0 MiB\n"
            "tiny  suite-0123456789ab  registered  no        100%       0  -\n");
}

TEST_F(GenerationCliTest, SuitesShowListsComponentsAndEveryCheck) {
  const CliRun result = run({"suites", "show", "tiny"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_THAT(result.out, ::testing::StartsWith("name:               tiny\n"
                                                "id:                 suite-0123456789ab\n"));
  EXPECT_THAT(result.out, HasSubstr("\ncompatible:         no\n"));
  EXPECT_THAT(result.out, HasSubstr("\nmemory:             cpu0 12.0 MiB\n"));
  EXPECT_THAT(result.out, HasSubstr("\nlast used:          -\n"));
  EXPECT_THAT(result.out,
              HasSubstr("\nROLE       STATE  MODEL      CHARGED  FILE SIZE  SHARED WITH\n"
                        "tokenizer  ready  -              0 B     1000 B  -\n"
                        "unet       ready  tiny.unet  8.0 MiB    4.0 MiB  other, third\n"));
  EXPECT_THAT(result.out,
              HasSubstr("\nvalidation: 1/2 checks passed\n"
                        "CHECK         RESULT  COMPONENT     TENSOR                 EXPECTED  "
                        "FOUND  DESCRIPTION\n"
                        "contextWidth  pass    unet          encoder_hidden_states  64        "
                        "64     context widths match\n"
                        "timeIds       FAIL    refiner_unet  time_ids               5         "
                        "6      time ids width\n"));
  EXPECT_EQ(server_.targets(), std::vector<std::string>{"GET /api/suites/tiny"});

  // The alias, and --json passing the server's JSON through.
  const CliRun json = run({"suite", "show", "tiny", "--json"});
  EXPECT_EQ(json.exitCode, kExitOk) << json.err;
  EXPECT_EQ(Json::parse(json.out), kSuite);
}

TEST_F(GenerationCliTest, SuitesImportSendsPathsAndTheManifestFile) {
  TempDir dir;
  const fs::path manifest = dir.path() / "manifest.json";
  std::ofstream(manifest) << R"({"unet": "unet/model.onnx", "sampleSize": 64})";
  const CliRun result = run({"suites", "import", "sdxl/base", "--name", "tiny", "--refiner",
                             "sdxl/refiner", "--manifest", manifest.string()});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out,
            "imported tiny (suite-0123456789ab): ready, loaded, refiner yes, score 50%\n"
            "2 components, 1/2 checks passed\n");
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].target, "/api/suites");
  EXPECT_EQ(Json::parse(requests[0].body),
            (Json{{"name", "tiny"},
                  {"path", "sdxl/base"},
                  {"refinerPath", "sdxl/refiner"},
                  {"manifest", {{"unet", "unet/model.onnx"}, {"sampleSize", 64}}}}));

  // Without the optional parts, only name and path are sent.
  EXPECT_EQ(run({"suites", "import", "sdxl/base", "--name", "tiny"}).exitCode, kExitOk);
  EXPECT_EQ(Json::parse(server_.requests().at(1).body),
            (Json{{"name", "tiny"}, {"path", "sdxl/base"}}));
}

TEST_F(GenerationCliTest, SuitesImportBadManifestIsAUsageErrorAndSendsNothing) {
  TempDir dir;
  const fs::path notObject = dir.path() / "list.json";
  std::ofstream(notObject) << "[1, 2]";
  const CliRun missing = run({"suites", "import", "p", "--name", "n", "--manifest",
                              (dir.path() / "missing.json").string()});
  EXPECT_EQ(missing.exitCode, kExitUsage);
  EXPECT_THAT(missing.err, HasSubstr("cannot read"));
  const CliRun array =
      run({"suites", "import", "p", "--name", "n", "--manifest", notObject.string()});
  EXPECT_EQ(array.exitCode, kExitUsage);
  EXPECT_THAT(array.err, HasSubstr("is not a JSON object"));
  EXPECT_EQ(run({"suites", "import", "p"}).exitCode, kExitUsage);  // --name is required
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(GenerationCliTest, IncompatibleSuiteShowsEveryCheck) {
  const CliRun result = run({"suites", "import", "p", "--name", "bad"});
  EXPECT_EQ(result.exitCode, kExitServerError);
  EXPECT_THAT(result.err, ::testing::StartsWith(
                              "error: suite 'bad' is not compatible: time ids width (CONFLICT, "
                              "HTTP 409)\nCHECK "));
  EXPECT_THAT(result.err, HasSubstr("\ntimeIds       FAIL    refiner_unet"));
  EXPECT_EQ(result.out, "");
}

TEST_F(GenerationCliTest, SuitesLoadUnloadDelete) {
  EXPECT_EQ(run({"suites", "load", "tiny"}).out,
            "tiny (suite-0123456789ab): ready, loaded, refiner yes, score 50%\n");
  EXPECT_EQ(run({"suites", "unload", "tiny"}).exitCode, kExitOk);
  EXPECT_EQ(run({"suites", "delete", "tiny"}).out, "deleted tiny\n");
  const CliRun missing = run({"suites", "delete", "nope"});
  EXPECT_EQ(missing.exitCode, kExitServerError);
  EXPECT_EQ(missing.err, "error: no endpoint DELETE /api/suites/nope (NOT_FOUND, HTTP 404)\n");
  EXPECT_EQ(server_.targets(),
            (std::vector<std::string>{"POST /api/suites/tiny/load", "POST /api/suites/tiny/unload",
                                      "DELETE /api/suites/tiny", "DELETE /api/suites/nope"}));
}

TEST_F(GenerationCliTest, GenerateFollowsDownloadsAndReports) {
  TempDir dir;
  const std::string output = (dir.path() / "out.png").string();
  const CliRun result = run({"generate",    "a cat", "--suite",    "tiny",   "--steps",    "4",
                             "--seed",      "3",     "--width",    "64",     "--height",   "64",
                             "--batch",     "2",     "--negative", "blurry", "--guidance", "6.5",
                             "--scheduler", "euler", "--refiner",  "auto",   "--tiling",   "off",
                             "-o",          output});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  const std::string out0 = (dir.path() / "out-0.png").string();
  const std::string out1 = (dir.path() / "out-1.png").string();
  EXPECT_EQ(result.out,
            "gen-1 succeeded: 2 image(s) in 2.50 s\n"
            "  " +
                out0 +
                "  seed 3\n"
                "  " +
                out1 +
                "  seed 4\n"
                "refiner: not used (sharpness 30.0 >= 20.0)\n");
  // One line per stage, as each ends (stderr is not a terminal here).
  EXPECT_EQ(result.err,
            "queued 0% 0/4 images 0/2\n"
            "load 0% 0/4 images 0/2\n"
            "encode 0% 0/4 images 0/2\n"
            "base 75% 3/4 2.0 step/s ETA 0:01 images 0/2\n"
            "assess 75% 3/4 images 0/2\n"
            "refiner 100% 4/4 1.0 step/s images 0/2\n"
            "decode 100% 4/4 images 2/2\n");
  EXPECT_EQ(readFile(out0), kPng + "image0");
  EXPECT_EQ(readFile(out1), kPng + "image1");
  EXPECT_FALSE(fs::exists(output));

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 5u);
  EXPECT_EQ(
      server_.targets(),
      (std::vector<std::string>{"POST /api/generation", "GET /api/generation/gen-1/events",
                                "GET /api/generation/gen-1", "GET /api/generation/gen-1/images/0",
                                "GET /api/generation/gen-1/images/1"}));
  EXPECT_EQ(Json::parse(requests[0].body), (Json{{"suite", "tiny"},
                                                 {"prompt", "a cat"},
                                                 {"negativePrompt", "blurry"},
                                                 {"steps", 4},
                                                 {"seed", 3},
                                                 {"width", 64},
                                                 {"height", 64},
                                                 {"batch", 2},
                                                 {"guidance", 6.5},
                                                 {"scheduler", "euler"},
                                                 {"refiner", {{"mode", "auto"}}},
                                                 {"vae", {{"tiling", "off"}}}}));
}

TEST_F(GenerationCliTest, GenerateSendsOnlyWhatWasGivenAndNamesFilesByJob) {
  TempDir dir;
  const fs::path previous = fs::current_path();
  fs::current_path(dir.path());
  const CliRun result = run({"generate", "a cat", "--suite", "tiny", "--seed", "0"});
  fs::current_path(previous);
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(Json::parse(server_.requests().at(0).body),
            (Json{{"suite", "tiny"}, {"prompt", "a cat"}, {"seed", 0}}));
  EXPECT_EQ(readFile(dir.path() / "gen-1-0.png"), kPng + "image0");
  EXPECT_EQ(readFile(dir.path() / "gen-1-1.png"), kPng + "image1");
  EXPECT_THAT(result.out, HasSubstr("\n  gen-1-0.png  seed 3\n  gen-1-1.png  seed 4\n"));
}

TEST_F(GenerationCliTest, GenerateJsonPrintsTheFinalJob) {
  TempDir dir;
  const CliRun result = run(
      {"--json", "generate", "a cat", "--suite", "tiny", "-o", (dir.path() / "x.png").string()});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(Json::parse(result.out), finishedJob("succeeded"));
  EXPECT_TRUE(fs::exists(dir.path() / "x-1.png"));
}

TEST_F(GenerationCliTest, GenerateNoWaitOnlySubmits) {
  const CliRun result = run({"generate", "a cat", "--suite", "tiny", "--no-wait"});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  EXPECT_EQ(result.out, "gen-1 queued\n");
  EXPECT_EQ(result.err, "");
  EXPECT_EQ(server_.targets(), std::vector<std::string>{"POST /api/generation"});
}

TEST_F(GenerationCliTest, GenerateBadWidthPrintsTheServersError) {
  const CliRun result = run({"generate", "a cat", "--suite", "tiny", "--width", "65"});
  EXPECT_EQ(result.exitCode, kExitServerError);
  EXPECT_EQ(result.err, "error: width must be a multiple of 8 (INVALID_ARGUMENT, HTTP 400)\n");
  EXPECT_EQ(result.out, "");
  EXPECT_EQ(server_.targets(), std::vector<std::string>{"POST /api/generation"});
}

TEST_F(GenerationCliTest, GenerateUsageErrors) {
  const std::vector<std::vector<std::string>> cases = {
      {"generate", "a cat"},                                         // --suite required
      {"generate", "--suite", "tiny"},                               // prompt required
      {"generate", "a cat", "--suite", "tiny", "--refiner", "yes"},  // not a mode
      {"generate", "a cat", "--suite", "tiny", "--tiling", "maybe"},
      {"generate", "a cat", "--suite", "tiny", "--steps", "many"},
      {"generate", "a cat", "--suite", "tiny", "--seed", "-1"},
      {"generation"},  // a subcommand is required
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(::testing::PrintToString(args));
    const CliRun result = run(args);
    EXPECT_EQ(result.exitCode, kExitUsage);
    EXPECT_NE(result.err, "");
  }
  EXPECT_TRUE(server_.requests().empty());
}

TEST(GenerationCliFailureTest, AFailedJobExitsOneWithItsError) {
  FakeGenerationServer server("failed");
  TempDir dir;
  const CliRun result = runCliWith(server.url(), {"generate", "a cat", "--suite", "tiny", "-o",
                                                  (dir.path() / "out.png").string()});
  EXPECT_EQ(result.exitCode, kExitServerError);
  EXPECT_THAT(result.err, HasSubstr("\ndecode 100% 4/4 images 0/2\n"
                                    "error: generation gen-1 failed: unet returned NaN "
                                    "(INTERNAL)\n"));
  EXPECT_EQ(result.out, "");
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(GenerationCliFailureTest, ABrokenStreamResumesAfterTheLastEvent) {
  FakeGenerationServer server("succeeded", /*splitAt=*/7);  // up to event id 6
  TempDir dir;
  const CliRun result = runCliWith(server.url(), {"generate", "a cat", "--suite", "tiny", "-o",
                                                  (dir.path() / "out.png").string()});
  EXPECT_EQ(result.exitCode, kExitOk) << result.err;
  const auto requests = server.requests();
  ASSERT_GE(requests.size(), 3u);
  EXPECT_EQ(requests[1].target, "/api/generation/gen-1/events");
  EXPECT_EQ(requests[1].headers.count("last-event-id"), 0u);
  EXPECT_EQ(requests[2].target, "/api/generation/gen-1/events");
  EXPECT_EQ(requests[2].headers.at("last-event-id"), "6");
  // Each stage once, the base stage's timing over all of its steps.
  EXPECT_THAT(result.err, HasSubstr("encode 0% 0/4 images 0/2\n"
                                    "base 75% 3/4 2.0 step/s ETA 0:01 images 0/2\n"
                                    "assess "));
}

TEST_F(GenerationCliTest, GenerationsListShowCancel) {
  const CliRun list = run({"generations", "list"});
  EXPECT_EQ(list.exitCode, kExitOk) << list.err;
  EXPECT_EQ(list.out,
            "ID     SUITE  STATE      PROGRESS  SIZE   SEED  IMAGES  CREATED"
            "                   PROMPT\n"
            "gen-1  tiny   succeeded  done 4/4  64x64     3       2  2026-11-27T10:00:00.000Z"
            "  a cat\n");

  const CliRun show = run({"generation", "show", "gen-1"});
  EXPECT_EQ(show.exitCode, kExitOk) << show.err;
  EXPECT_THAT(show.out, ::testing::StartsWith("id:              gen-1\n"));
  EXPECT_THAT(show.out, HasSubstr("\nsize:            64x64\n"));
  EXPECT_THAT(show.out, HasSubstr("\nrefiner:         not used (sharpness 30.0 >= 20.0)\n"
                                  "total:           2.50 s\n"
                                  "seconds in unet: 1.25 s\n"));
  EXPECT_THAT(show.out, HasSubstr("\nINDEX  SEED  FILE      SIZE  URL\n"
                                  "    0     3  0.png  2.0 KiB  /api/generation/gen-1/images/0\n"));

  const CliRun cancel = run({"generations", "cancel", "gen-1"});
  EXPECT_EQ(cancel.exitCode, kExitOk) << cancel.err;
  EXPECT_EQ(cancel.out, "gen-1 cancelled\n");
  EXPECT_EQ(server_.targets(),
            (std::vector<std::string>{"GET /api/generation", "GET /api/generation/gen-1",
                                      "POST /api/generation/gen-1/cancel"}));
}

}  // namespace
}  // namespace deviceops::client
