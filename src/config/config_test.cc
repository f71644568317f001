#include "config/config.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace deviceops::config {
namespace {

TEST(ConfigTest, ParsesEveryTable) {
  auto parsed = parseConfig(R"(
dataDir = "/tmp/d"
database = "sqlite"
[server]
listen = "0.0.0.0:8080"
maxBodyBytes = "1MiB"
headerTimeoutSeconds = 3
[log]
level = "debug"
format = "json"
[auth]
mode = "auto"
[[auth.tokens]]
name = "ci"
token = "0123456789abcdef0123"
scope = "operate"
[devices]
backends = ["cpu", "simulated"]
pollIntervalMs = 250
[[devices.simulated]]
count = 5
name = "RX 6800"
memory = "16GiB"
[health]
temperatureMarginCelsius = 3.5
[memory]
budgetFraction = 0.8
reserveBytes = "1GiB"
poolStrategy = "none"
reaperIntervalMs = 100
[inference]
modelRoots = ["/srv/models", "/opt/onnx"]
maxUploadBytes = "512MiB"
autoReload = false
keepAliveSeconds = 600
instances = 3
maxQueue = 32
)",
                            "test.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const Config& config = *parsed;
  EXPECT_EQ(config.server.listenHost, "0.0.0.0");
  EXPECT_EQ(config.server.listenPort, 8080);
  EXPECT_EQ(config.server.maxBodyBytes, 1u << 20);
  EXPECT_EQ(config.server.headerTimeout.count(), 3);
  EXPECT_TRUE(config.log.json);
  EXPECT_EQ(config.log.level, "debug");
  ASSERT_EQ(config.tokens.size(), 1u);
  EXPECT_EQ(config.tokens[0].scope, Scope::kOperate);
  EXPECT_TRUE(config.authRequired());  // 0.0.0.0 is not loopback
  EXPECT_EQ(config.devices.pollInterval.count(), 250);
  ASSERT_EQ(config.devices.simulated.devices.size(), 5u);
  EXPECT_EQ(config.devices.simulated.devices[4].memoryBytes, 16ull << 30);
  EXPECT_DOUBLE_EQ(config.devices.health.temperatureMarginCelsius, 3.5);
  EXPECT_DOUBLE_EQ(config.memory.budgetFraction, 0.8);
  EXPECT_EQ(config.memory.reserveBytes, 1ull << 30);
  EXPECT_EQ(config.memory.poolStrategy, "none");
  EXPECT_EQ(config.memory.reaperInterval.count(), 100);
  ASSERT_EQ(config.inference.modelRoots.size(), 2u);
  EXPECT_EQ(config.inference.modelRoots[1], "/opt/onnx");
  EXPECT_EQ(config.inference.maxUploadBytes, 512ull << 20);
  EXPECT_FALSE(config.inference.autoReload);
  EXPECT_EQ(config.inference.keepAlive.count(), 600);
  EXPECT_EQ(config.inference.instances, 3);
  EXPECT_EQ(config.inference.maxQueue, 32u);
}

TEST(ConfigTest, BadConfigNamesTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {"[server]\nlisten = 5000", "server.listen"},
      {"[server]\nlisten = \"nohost\"", "HOST:PORT"},
      {"[server]\nlisten = \"127.0.0.1:70000\"", "HOST:PORT"},
      {"[server]\nlistne = \"127.0.0.1:1\"", "unknown key 'server.listne'"},
      {"[server]\nmaxBodyBytes = \"12XB\"", "server.maxBodyBytes"},
      {"[server]\nioThreads = -1", "server.ioThreads"},
      {"[log]\nlevel = \"loud\"", "log level"},
      {"[auth]\nmode = \"sometimes\"", "auth.mode"},
      {"[[auth.tokens]]\ntoken = \"short\"\nscope = \"read\"", "at least 16"},
      {"[[auth.tokens]]\ntoken = \"0123456789abcdef0\"\nscope = \"root\"", "scope"},
      {"[devices]\nbackends = [\"cuda\"]", "unknown backend 'cuda'"},
      {"[devices]\npollIntervalMs = 1", "at least 50"},
      {"[health]\nmemoryUsedRatio = 2.0", "memoryUsedRatio"},
      {"this is = not toml = at all", "line 1"},
      {"typo = 1", "unknown key 'typo'"},
      {"[memory]\nbudgetFraction = 1.5", "memory.budgetFraction"},
      {"[memory]\npoolStrategy = \"slab\"", "memory.poolStrategy"},
      {"[memory]\nreserveBytes = \"-1GiB\"", "memory.reserveBytes"},
      {"[inference]\nmodelRoots = \"/srv\"", "inference.modelRoots"},
      {"[inference]\nmodelRoots = [\"relative/dir\"]", "absolute"},
      {"[inference]\ninstances = 0", "inference.instances"},
      {"[inference]\nmaxQueue = 0", "inference.maxQueue"},
      {"[inference]\nautoreload = true", "unknown key 'inference.autoreload'"},
      {"[suites]\nmaxLoaded = 0", "suites.maxLoaded"},
      {"[generation]\nmaxSide = 32", "generation.maxSide"},
      {"[generation]\nmaxBatch = \"many\"", "generation.maxBatch"},
      {"[generation]\nqueue = 3", "unknown key 'generation.queue'"},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(text);
    auto parsed = parseConfig(text, "bad.toml");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message.find(expected), std::string::npos) << parsed.error().message;
    EXPECT_EQ(parsed.error().message.rfind("bad.toml", 0), 0u);
  }
}

TEST(ConfigTest, SimulatedDevicesWithFaults) {
  auto parsed = parseConfig(R"(
[[devices.simulated]]
count = 2
name = "Faulty GPU"
memory = "1GiB"
peakBandwidth = "100GB"
backing = "8MiB"
[devices.simulated.faults]
stuckBit = { offset = "1MiB", bit = 3, value = 1 }
flippingBit = { offset = "2MiB", bit = 7 }
bandwidthCap = "2GB"
eccDoubleBitErrors = 2
hangAfterPolls = 3
vanishAfterTransfers = 10
[[devices.simulated]]
name = "Healthy GPU"
)",
                            "faults.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const auto& devices = parsed->devices.simulated.devices;
  ASSERT_EQ(devices.size(), 3u);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    const devices::SimulatedDeviceSpec& spec = devices[i];
    EXPECT_EQ(spec.name, "Faulty GPU");
    EXPECT_EQ(spec.memoryBytes, 1ull << 30);
    EXPECT_EQ(spec.peakBandwidthBytesPerSecond, 100e9);
    EXPECT_EQ(spec.backingBytes, 8ull << 20);
    const devices::SimulatedFaults& faults = spec.faults;
    ASSERT_TRUE(faults.stuckBit.has_value());
    EXPECT_EQ(faults.stuckBit->offset, 1ull << 20);
    EXPECT_EQ(faults.stuckBit->bit, 3u);
    EXPECT_EQ(faults.stuckValue, 1u);
    ASSERT_TRUE(faults.flippingBit.has_value());
    EXPECT_EQ(faults.flippingBit->offset, 2ull << 20);
    EXPECT_EQ(faults.flippingBit->bit, 7u);
    EXPECT_EQ(faults.bandwidthCapBytesPerSecond, 2e9);
    EXPECT_EQ(faults.eccDoubleBitErrors, 2u);
    EXPECT_EQ(faults.hangAfterPolls, 3u);
    EXPECT_EQ(faults.vanishAfterTransfers, 10u);
  }
  const devices::SimulatedDeviceSpec& healthy = devices[2];
  EXPECT_FALSE(healthy.faults.any());
  EXPECT_EQ(healthy.peakBandwidthBytesPerSecond, std::nullopt);
  EXPECT_EQ(healthy.backingBytes, 64ull << 20);
}

TEST(ConfigTest, BadSimulatedFaultsNameTheKey) {
  const std::string entry = "[[devices.simulated]]\nbacking = \"4MiB\"\n";
  const std::string faults = entry + "[devices.simulated.faults]\n";
  const std::pair<std::string, const char*> cases[] = {
      {entry + "peakBandwidth = \"fast\"", "devices.simulated[].peakBandwidth"},
      {entry + "peakBandwidth = 0", "peakBandwidth must be above 0"},
      {"[[devices.simulated]]\nbacking = 0", "backing must be at least 1"},
      {"[[devices.simulated]]\nbacking = \"lots\"", "devices.simulated[].backing"},
      {entry + "faults = 3", "'devices.simulated[].faults' must be a table"},
      {faults + "stuckbit = { offset = 0, bit = 1, value = 0 }",
       "unknown key 'devices.simulated[].faults.stuckbit'"},
      {faults + "stuckBit = 5", "'devices.simulated[].faults.stuckBit' must be a table"},
      {faults + "stuckBit = { bit = 1, value = 0 }", "faults.stuckBit.offset is required"},
      {faults + "stuckBit = { offset = 8, value = 0 }", "faults.stuckBit.bit must be 0..63"},
      {faults + "stuckBit = { offset = 8, bit = 64, value = 0 }", "bit must be 0..63"},
      {faults + "stuckBit = { offset = 8, bit = -1, value = 0 }", "faults.stuckBit.bit"},
      {faults + "stuckBit = { offset = 8, bit = 1 }", "faults.stuckBit.value must be 0 or 1"},
      {faults + "stuckBit = { offset = 8, bit = 1, value = 2 }", "value must be 0 or 1"},
      {faults + "stuckBit = { offset = 8, bit = 1, value = 0, colour = 1 }",
       "unknown key 'devices.simulated[].faults.stuckBit.colour'"},
      {faults + "stuckBit = { offset = \"4MiB\", bit = 0, value = 0 }",
       "block byte 4194304, beyond the 4194304 bytes"},
      {faults + "flippingBit = { offset = \"4MiB\", bit = 0 }", "faults.flippingBit.offset"},
      {faults + "flippingBit = { offset = \"4194303\", bit = 8 }", "block byte 4194304"},
      {faults + "flippingBit = { offset = 0, bit = 1, value = 1 }",
       "unknown key 'devices.simulated[].faults.flippingBit.value'"},
      {faults + "bandwidthCap = 0", "faults.bandwidthCap must be at least 1"},
      {faults + "bandwidthCap = \"2 parsecs\"", "devices.simulated[].faults.bandwidthCap"},
      {faults + "eccDoubleBitErrors = -2", "devices.simulated[].faults.eccDoubleBitErrors"},
      {faults + "eccDoubleBitErrors = \"two\"", "faults.eccDoubleBitErrors"},
      {faults + "hangAfterPolls = 0", "faults.hangAfterPolls must be at least 1"},
      {faults + "hangAfterPolls = 1.5", "faults.hangAfterPolls"},
      {faults + "vanishAfterTransfers = 0", "faults.vanishAfterTransfers must be at least 1"},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(text);
    auto parsed = parseConfig(text, "bad.toml");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message.find(expected), std::string::npos) << parsed.error().message;
    EXPECT_EQ(parsed.error().message.rfind("bad.toml", 0), 0u);
  }
}

TEST(ConfigTest, SuitesAndGenerationTables) {
  auto parsed = parseConfig(
      "[suites]\nmaxLoaded = 3\n[generation]\nenabled = false\nmaxQueue = 5\n"
      "retainJobs = 7\nmaxSide = 2048\nmaxSteps = 80\nmaxBatch = 4\n"
      "vaeBytesPerPixel = \"2KiB\"\n",
      "g.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->suites.maxLoaded, 3);
  EXPECT_FALSE(parsed->generation.enabled);
  EXPECT_EQ(parsed->generation.maxQueue, 5u);
  EXPECT_EQ(parsed->generation.retainJobs, 7u);
  EXPECT_EQ(parsed->generation.maxSide, 2048);
  EXPECT_EQ(parsed->generation.maxSteps, 80);
  EXPECT_EQ(parsed->generation.maxBatch, 4);
  EXPECT_EQ(parsed->generation.vaeBytesPerPixel, 2048u);
}

TEST(ConfigTest, EnvironmentOverridesFile) {
  std::map<std::string, std::string> environment = {{"DEVICEOPS_LISTEN", "[::1]:0"},
                                                    {"DEVICEOPS_DATA_DIR", "/tmp/x"},
                                                    {"DEVICEOPS_LOG_FORMAT", "json"},
                                                    {"DEVICEOPS_BACKENDS", "cpu,vulkan"}};
  auto getenv = [&](const char* name) -> const char* {
    auto it = environment.find(name);
    return it == environment.end() ? nullptr : it->second.c_str();
  };
  auto config = applyEnvironment(Config{}, getenv);
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->server.listenHost, "::1");
  EXPECT_EQ(config->server.listenPort, 0);
  EXPECT_FALSE(config->authRequired());
  EXPECT_EQ(config->dataDir, "/tmp/x");
  EXPECT_TRUE(config->log.json);
  EXPECT_EQ(config->devices.backends, (std::vector<std::string>{"cpu", "vulkan"}));

  environment["DEVICEOPS_BACKENDS"] = "cpu,gpu";
  EXPECT_FALSE(applyEnvironment(Config{}, getenv).ok());
  environment.erase("DEVICEOPS_BACKENDS");
  environment["DEVICEOPS_LOG_LEVEL"] = "chatty";
  EXPECT_FALSE(applyEnvironment(Config{}, getenv).ok());
}

TEST(ConfigTest, TelemetryTable) {
  auto config = parseConfig(R"(
[telemetry]
enabled = true
intervalSeconds = 1
store = "postgresql"
postgresqlUrl = "host=/run/postgresql dbname=deviceops"
nodeName = "rack1-node3"
rawRetentionDays = 3
rollupRetentionDays = 30
bufferMaxSamples = 5000
memoryBufferSamples = 100
spillFile = "/var/tmp/spill.jsonl"
)",
                            "t.toml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  const TelemetryConfig& t = config->telemetry;
  EXPECT_EQ(t.interval, std::chrono::seconds(1));
  EXPECT_EQ(t.store, "postgresql");
  EXPECT_EQ(t.postgresqlUrl, "host=/run/postgresql dbname=deviceops");
  EXPECT_EQ(t.nodeName, "rack1-node3");
  EXPECT_EQ(t.rawRetention, std::chrono::hours(72));
  EXPECT_EQ(t.rollupRetention, std::chrono::hours(720));
  EXPECT_EQ(t.bufferMaxSamples, 5000u);
  EXPECT_EQ(t.memoryBufferSamples, 100u);
  EXPECT_EQ(t.spillFile, "/var/tmp/spill.jsonl");
  EXPECT_EQ(Config{}.telemetry.interval, std::chrono::seconds(5));
  EXPECT_EQ(Config{}.telemetry.store, "sqlite");

  for (const char* bad : {"[telemetry]\nintervalSeconds = 0\n", "[telemetry]\nstore = \"mysql\"\n",
                          "[telemetry]\nstore = \"postgresql\"\n",
                          "[telemetry]\nrawRetentionDays = 30\nrollupRetentionDays = 7\n",
                          "[telemetry]\nmemoryBufferSamples = 10\nbufferMaxSamples = 5\n",
                          "[telemetry]\nintervall = 5\n"}) {
    SCOPED_TRACE(bad);
    auto refused = parseConfig(bad, "t.toml");
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message.find("telemetry."), std::string::npos)
        << refused.error().message;
  }
  // A postgresql:// `database` is enough for the PostgreSQL store.
  EXPECT_TRUE(parseConfig("database = \"postgresql://u@db/x\"\n[telemetry]\nstore = "
                          "\"postgresql\"\n",
                          "t.toml")
                  .ok());
}

TEST(ConfigTest, AuthModes) {
  Config config;
  EXPECT_FALSE(config.authRequired());
  config.authMode = AuthMode::kAlways;
  EXPECT_TRUE(config.authRequired());
  config.authMode = AuthMode::kNever;
  config.server.listenHost = "0.0.0.0";
  EXPECT_FALSE(config.authRequired());
  EXPECT_TRUE(isLoopbackHost("127.0.0.2"));
  EXPECT_FALSE(isLoopbackHost("10.0.0.1"));
}

}  // namespace
}  // namespace deviceops::config
