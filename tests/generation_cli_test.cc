// `deviceops suites ...` and `deviceops generate ...` against a real daemon (tiny SDXL suites of
// tests/models/make_sdxl_models.py, real ONNX Runtime).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/testing/temp_dir.h"
#include "test_daemon.h"

namespace deviceops::testing {
namespace {

namespace fs = std::filesystem;

std::string modelRootsConfig() {
  return "[inference]\nmodelRoots = [\"" + std::string(DEVICEOPS_TEST_MODELS_DIR) +
         "\"]\n[telemetry]\nenabled = false\n[training]\nenabled = false\n";
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

class GenerationCliTest : public ::testing::Test {
 protected:
  std::pair<int, std::string> cli(std::vector<std::string> args) {
    args.insert(args.begin(), {DEVICEOPS_CLI_PATH, "--url",
                               "http://127.0.0.1:" + std::to_string(daemon_.port())});
    return runProgram(args);
  }

  TestDaemon daemon_{modelRootsConfig()};
  TempDir dir_{"generation-cli"};
};

TEST_F(GenerationCliTest, ImportListShowGenerate) {
  ASSERT_TRUE(daemon_.started()) << daemon_.log();

  auto [importCode, imported] =
      cli({"suites", "import", "sdxl/base", "--name", "tiny", "--refiner", "sdxl/refiner"});
  ASSERT_EQ(importCode, 0) << imported;
  EXPECT_EQ(imported.rfind("imported tiny (suite-", 0), 0u) << imported;

  auto [listCode, list] = cli({"suites", "list"});
  EXPECT_EQ(listCode, 0) << list;
  EXPECT_EQ(list.rfind("NAME  ID ", 0), 0u) << list;
  EXPECT_NE(list.find("\ntiny  suite-"), std::string::npos) << list;
  EXPECT_NE(list.find(" yes "), std::string::npos) << "the refiner column: " << list;

  auto [showCode, show] = cli({"suites", "show", "tiny"});
  EXPECT_EQ(showCode, 0) << show;
  EXPECT_NE(show.find("\nrefiner_unet "), std::string::npos) << show;
  EXPECT_NE(show.find("\nvalidation: "), std::string::npos) << show;
  EXPECT_NE(show.find("\nCHECK "), std::string::npos) << show;
  EXPECT_NE(show.find(" pass "), std::string::npos) << show;
  EXPECT_EQ(show.find(" FAIL "), std::string::npos) << show;

  const std::vector<std::string> generate = {"generate", "a cat", "--suite",  "tiny",
                                             "--steps",  "8",     "--seed",   "3",
                                             "--width",  "64",    "--height", "64"};
  std::vector<std::string> first = generate;
  first.insert(first.end(), {"-o", dir_.path("out.png").string()});
  auto [firstCode, firstOutput] = cli(first);
  ASSERT_EQ(firstCode, 0) << firstOutput;
  const std::string png = readFile(dir_.path("out.png"));
  ASSERT_GE(png.size(), 8u) << firstOutput;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_NE(firstOutput.find(dir_.path("out.png").string() + "  seed 3\n"), std::string::npos)
      << firstOutput;
  EXPECT_NE(firstOutput.find("\nrefiner: "), std::string::npos) << firstOutput;
  EXPECT_NE(firstOutput.find("\nbase "), std::string::npos) << "a line per stage: " << firstOutput;

  std::vector<std::string> second = generate;
  second.insert(second.end(), {"-o", dir_.path("again.png").string()});
  auto [secondCode, secondOutput] = cli(second);
  ASSERT_EQ(secondCode, 0) << secondOutput;
  EXPECT_EQ(readFile(dir_.path("again.png")), png) << "the same seed gives the same image";

  auto [jobsCode, jobs] = cli({"generations", "list"});
  EXPECT_EQ(jobsCode, 0) << jobs;
  EXPECT_NE(jobs.find(" succeeded "), std::string::npos) << jobs;
  EXPECT_NE(jobs.find(" 64x64 "), std::string::npos) << jobs;
}

TEST_F(GenerationCliTest, BadRequestsExitNonZeroWithTheServersError) {
  ASSERT_TRUE(daemon_.started()) << daemon_.log();
  ASSERT_EQ(cli({"suites", "import", "sdxl/base", "--name", "tiny"}).first, 0);

  auto [widthCode, width] = cli({"generate", "a cat", "--suite", "tiny", "--width", "65", "-o",
                                 dir_.path("never.png").string()});
  EXPECT_EQ(widthCode, 1) << width;
  EXPECT_NE(width.find("error: width must be a multiple of 8"), std::string::npos) << width;
  EXPECT_NE(width.find("INVALID_ARGUMENT, HTTP 400"), std::string::npos) << width;
  EXPECT_FALSE(fs::exists(dir_.path("never.png")));

  auto [suiteCode, suite] = cli({"generate", "a cat", "--suite", "missing"});
  EXPECT_EQ(suiteCode, 1) << suite;
  EXPECT_NE(suite.find("NOT_FOUND"), std::string::npos) << suite;

  auto [mixedCode, mixed] = cli({"suites", "import", "sdxl/base", "--name", "mixed", "--refiner",
                                 "sdxl/refiner_other_family"});
  EXPECT_EQ(mixedCode, 1) << mixed;
  EXPECT_NE(mixed.find("CONFLICT, HTTP 409"), std::string::npos) << mixed;
  EXPECT_NE(mixed.find(" FAIL "), std::string::npos) << "every check is listed: " << mixed;

  auto [usageCode, usage] = cli({"generate", "a cat", "--suite", "tiny", "--refiner", "maybe"});
  EXPECT_EQ(usageCode, 2) << usage;
}

}  // namespace
}  // namespace deviceops::testing
