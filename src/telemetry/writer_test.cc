// The bounded buffer against real stores: a PostgreSQL restart in the middle of sampling loses
// nothing; the spill file carries items across a restart of the writer; the bound is counted.
#include "telemetry/writer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "devices/simulated/simulated_backend.h"
#include "telemetry/sampler.h"
#include "telemetry/testing/store_fixture.h"

namespace deviceops::telemetry {
namespace {

using namespace std::chrono_literals;
using testing::makeSample;

std::uint64_t storedSamples(TelemetryStore& store, const std::string& node, int devices) {
  std::uint64_t total = 0;
  for (int i = 0; i < devices; ++i) {
    auto samples = store.samples(node, "sim-" + std::to_string(i), fromMillis(0),
                                 std::chrono::system_clock::now() + 24h);
    EXPECT_TRUE(samples.ok()) << (samples.ok() ? "" : samples.error().message);
    if (samples.ok()) total += samples->size();
  }
  return total;
}

std::unique_ptr<devices::Inventory> simulatedInventory(int count) {
  devices::SimulatedBackendOptions simulated;
  simulated.devices.resize(static_cast<std::size_t>(count));
  std::vector<std::unique_ptr<devices::Backend>> backends;
  backends.push_back(devices::makeSimulatedBackend(simulated));
  devices::InventoryOptions options;
  options.pollInterval = 50ms;
  auto inventory = std::make_unique<devices::Inventory>(std::move(backends), options);
  inventory->start();
  return inventory;
}

template <class Predicate>
bool waitFor(Predicate predicate, std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (predicate()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return predicate();
}

TEST(WriterTest, PostgresRestartInTheMiddleOfSamplingLosesNothing) {
  deviceops::testing::PostgresServer server;  // its own server: this test stops it
  Status started = server.start();
  ASSERT_TRUE(started.ok()) << started.error().message;
  auto connection = server.createDatabase("restart");
  ASSERT_TRUE(connection.ok()) << connection.error().message;
  auto store = openPostgresTelemetryStore(*connection);
  ASSERT_TRUE(store.ok()) << store.error().message;
  testing::TempDir directory;
  WriterOptions options;
  options.memoryItems = 40;  // small, so that the outage also goes through the spill file
  options.spillFile = directory.root() / "spill.jsonl";
  options.initialBackoff = 50ms;
  options.maxBackoff = 400ms;
  TelemetryWriter writer(**store, options);
  writer.start();
  auto inventory = simulatedInventory(3);
  SamplerOptions samplerOptions;
  samplerOptions.node = "node-a";
  samplerOptions.interval = 50ms;
  Sampler sampler(*inventory, nullptr, writer, samplerOptions);
  sampler.start();

  ASSERT_TRUE(waitFor([&] { return writer.counters().samplesWritten >= 30; }, 10s));
  ASSERT_TRUE(server.stop().ok());
  ASSERT_TRUE(waitFor([&] { return !writer.counters().storeUp; }, 10s));
  ASSERT_TRUE(waitFor([&] { return writer.counters().spilledItems > 0; }, 10s))
      << "the outage should outgrow memoryItems and spill";
  const std::uint64_t sampledDuringOutage = sampler.sampleCount();
  std::this_thread::sleep_for(500ms);
  EXPECT_GT(sampler.sampleCount(), sampledDuringOutage) << "sampling goes on while buffering";
  ASSERT_TRUE(server.start().ok());
  ASSERT_TRUE(waitFor([&] { return writer.counters().storeUp; }, 20s))
      << writer.counters().lastError;
  std::this_thread::sleep_for(300ms);
  sampler.stop();
  ASSERT_TRUE(writer.flush(20s));
  const WriterCounters counters = writer.counters();
  EXPECT_EQ(counters.samplesLost, 0u);
  EXPECT_GT(counters.writeFailures, 0u);
  EXPECT_EQ(counters.bufferedItems, 0u);
  EXPECT_EQ(counters.samplesWritten, sampler.sampleCount());
  EXPECT_EQ(storedSamples(**store, "node-a", 3), sampler.sampleCount());
  writer.stop();
  EXPECT_EQ(std::filesystem::file_size(options.spillFile), 0u);
}

TEST(WriterTest, StopSpillsWhatTheStoreRefusedAndTheNextStartWritesIt) {
  deviceops::testing::PostgresServer* server = testing::sharedPostgres();
  ASSERT_NE(server, nullptr);
  testing::TempDir directory;
  WriterOptions options;
  options.spillFile = directory.root() / "spill.jsonl";
  options.initialBackoff = 20ms;
  {
    // Nothing listens on this socket directory: every write fails with kUnavailable.
    auto down = openPostgresTelemetryStore("host=" + directory.root().string() + " port=1");
    ASSERT_TRUE(down.ok()) << down.error().message;
    TelemetryWriter writer(**down, options);
    writer.start();
    for (int i = 0; i < 30; ++i)
      writer.push(BufferedItem(makeSample("n", "sim-0", i * 1000, 50, 1)));
    Event refused;
    refused.time = fromMillis(5);
    refused.type = "memory.refused";
    refused.deviceId = "sim-0";
    writer.push(BufferedItem(StoredEvent{0, "n", refused}));
    ASSERT_TRUE(waitFor([&] { return !writer.counters().storeUp; }, 5s));
    writer.stop(100ms);
    EXPECT_EQ(writer.counters().spilledItems, 31u);
  }
  auto connection = server->createDatabase(testing::uniqueName("spill"));
  ASSERT_TRUE(connection.ok());
  auto up = openPostgresTelemetryStore(*connection);
  ASSERT_TRUE(up.ok());
  TelemetryWriter writer(**up, options);
  writer.start();
  EXPECT_EQ(writer.counters().bufferedItems, 31u);
  ASSERT_TRUE(writer.flush(10s));
  EXPECT_EQ(storedSamples(**up, "n", 1), 30u);
  auto events = (*up)->events(EventQuery{});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].event.type, "memory.refused");
}

TEST(WriterTest, ItemsBeyondTheBoundAreCountedLost) {
  testing::TempDir directory;
  auto down = openPostgresTelemetryStore("host=" + directory.root().string() + " port=1");
  ASSERT_TRUE(down.ok());
  WriterOptions options;
  options.memoryItems = 10;  // no spill file: memory is the bound
  TelemetryWriter writer(**down, options);
  for (int i = 0; i < 25; ++i) writer.push(BufferedItem(makeSample("n", "sim-0", i, 50, 1)));
  writer.push(BufferedItem(StoredEvent{0, "n", Event{}}));
  const WriterCounters counters = writer.counters();
  EXPECT_EQ(counters.bufferedItems, 10u);
  EXPECT_EQ(counters.samplesLost, 15u);
  EXPECT_EQ(counters.eventsLost, 1u);
}

TEST(WriterTest, SqliteStoreWritesEverythingPushed) {
  testing::TempDir directory;
  auto store = openSqliteTelemetryStore(directory.root() / "telemetry.db");
  ASSERT_TRUE(store.ok()) << store.error().message;
  WriterOptions options;
  options.batchItems = 16;
  TelemetryWriter writer(**store, options);
  writer.start();
  for (int i = 0; i < 100; ++i)
    writer.push(BufferedItem(makeSample("n", "sim-0", i * 1000, 50, 1)));
  ASSERT_TRUE(writer.flush(10s));
  EXPECT_EQ(writer.counters().samplesWritten, 100u);
  EXPECT_GE(writer.counters().batchesWritten, 7u);
  EXPECT_EQ(storedSamples(**store, "n", 1), 100u);
}

}  // namespace
}  // namespace deviceops::telemetry
