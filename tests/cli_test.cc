// The real `deviceops` CLI against the real daemon.
#include <gtest/gtest.h>

#include "test_daemon.h"

namespace deviceops::testing {
namespace {

TEST(CliIntegrationTest, DevicesDeviceHealthAndErrors) {
  TestDaemon daemon("[[devices.simulated]]\ncount = 2\nname = \"Sim GPU\"\n");
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::string url = "http://127.0.0.1:" + std::to_string(daemon.port());

  auto [code, table] = runProgram({DEVICEOPS_CLI_PATH, "--url", url, "devices"});
  EXPECT_EQ(code, 0) << table;
  EXPECT_NE(table.find("cpu0"), std::string::npos) << table;
  EXPECT_NE(table.find("sim-1"), std::string::npos) << table;
  EXPECT_NE(table.find("(simulated)"), std::string::npos) << table;

  auto [jsonCode, json] =
      runProgram({DEVICEOPS_CLI_PATH, "devices", "--json"}, {{"DEVICEOPS_URL", url}});
  EXPECT_EQ(jsonCode, 0);
  auto parsed = nlohmann::json::parse(json, nullptr, false);
  ASSERT_FALSE(parsed.is_discarded()) << json;
  EXPECT_EQ(parsed["count"], parsed["devices"].size());

  auto [oneCode, one] = runProgram({DEVICEOPS_CLI_PATH, "--url", url, "device", "sim-0"});
  EXPECT_EQ(oneCode, 0);
  EXPECT_NE(one.find("Sim GPU"), std::string::npos) << one;

  auto [missingCode, missing] = runProgram({DEVICEOPS_CLI_PATH, "--url", url, "device", "nope"});
  EXPECT_EQ(missingCode, 1);
  EXPECT_NE(missing.find("NOT_FOUND"), std::string::npos) << missing;

  auto [usageCode, usage] =
      runProgram({DEVICEOPS_CLI_PATH, "--url", url, "devices", "--type", "tpu"});
  EXPECT_EQ(usageCode, 2) << usage;

  EXPECT_EQ(daemon.stop(), 0);
  auto [downCode, down] = runProgram({DEVICEOPS_CLI_PATH, "--url", url, "devices"});
  EXPECT_EQ(downCode, 3) << down;
}

}  // namespace
}  // namespace deviceops::testing

namespace deviceops::testing {
namespace {

TEST(CliIntegrationTest, MemoryAllocStatusListFree) {
  TestDaemon daemon;
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::map<std::string, std::string> env = {
      {"DEVICEOPS_URL", "http://127.0.0.1:" + std::to_string(daemon.port())}};
  auto [allocCode, allocated] = runProgram(
      {DEVICEOPS_CLI_PATH, "mem", "alloc", "cpu0", "16MiB", "--label", "cli", "--verify", "--json"},
      env);
  ASSERT_EQ(allocCode, 0) << allocated;
  const auto body = nlohmann::json::parse(allocated);
  const std::string id = body["id"];
  EXPECT_EQ(body["verify"]["passed"], true);

  auto [statusCode, status] = runProgram({DEVICEOPS_CLI_PATH, "mem", "status", "cpu0"}, env);
  EXPECT_EQ(statusCode, 0);
  EXPECT_NE(status.find("16.0 MiB"), std::string::npos) << status;

  auto [listCode, list] = runProgram({DEVICEOPS_CLI_PATH, "mem", "list", "--state", "held"}, env);
  EXPECT_EQ(listCode, 0);
  EXPECT_NE(list.find(id), std::string::npos) << list;

  auto [freeCode, freed] = runProgram({DEVICEOPS_CLI_PATH, "mem", "free", id}, env);
  EXPECT_EQ(freeCode, 0) << freed;
  auto [againCode, again] = runProgram({DEVICEOPS_CLI_PATH, "mem", "free", id}, env);
  EXPECT_EQ(againCode, 1) << again;
  auto [badCode, bad] = runProgram({DEVICEOPS_CLI_PATH, "mem", "alloc", "cpu0", "lots"}, env);
  EXPECT_EQ(badCode, 1) << bad;
  EXPECT_NE(bad.find("INVALID_ARGUMENT"), std::string::npos) << bad;
  EXPECT_EQ(daemon.stop(), 0);
}

}  // namespace
}  // namespace deviceops::testing
