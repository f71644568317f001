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

  auto [jsonCode, json] = runProgram({DEVICEOPS_CLI_PATH, "devices", "--json"},
                                     {{"DEVICEOPS_URL", url}});
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

  auto [usageCode, usage] = runProgram({DEVICEOPS_CLI_PATH, "--url", url, "devices", "--type", "tpu"});
  EXPECT_EQ(usageCode, 2) << usage;

  EXPECT_EQ(daemon.stop(), 0);
  auto [downCode, down] = runProgram({DEVICEOPS_CLI_PATH, "--url", url, "devices"});
  EXPECT_EQ(downCode, 3) << down;
}

}  // namespace
}  // namespace deviceops::testing
