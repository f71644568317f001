#include "telemetry/sampler.h"

#include <gtest/gtest.h>

#include "devices/simulated/simulated_backend.h"
#include "devices/testing/allocators.h"
#include "memory/ledger_store.h"
#include "telemetry/availability.h"
#include "telemetry/testing/store_fixture.h"

namespace deviceops::telemetry {
namespace {

using namespace std::chrono_literals;

class SamplerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    devices::SimulatedBackendOptions simulated;
    devices::SimulatedDeviceSpec hot;
    hot.temperatureCelsius = 93;  // within 5 °C of the 90 °C slowdown... above it: critical
    hot.utilizationRatio = 0.9;
    devices::SimulatedDeviceSpec cool;
    cool.temperatureCelsius = 41;
    cool.utilizationRatio = 0.1;
    cool.memoryUsedBytes = 1ull << 30;
    simulated.devices = {cool, hot};
    std::vector<std::unique_ptr<devices::Backend>> backends;
    backends.push_back(devices::makeSimulatedBackend(simulated));
    inventory_ =
        std::make_unique<devices::Inventory>(std::move(backends), devices::InventoryOptions{});
    inventory_->start();
    auto ledger = memory::openSqliteLedgerStore(directory_.root());
    ASSERT_TRUE(ledger.ok());
    memory_ = std::make_unique<memory::MemoryService>(
        *inventory_, std::move(ledger.value()), memory::MemoryOptions{},
        devices::testing::makeCpuOrSimulatedAllocator);
    ASSERT_TRUE(memory_->start().ok());
    auto store = openSqliteTelemetryStore(directory_.root() / "telemetry.db");
    ASSERT_TRUE(store.ok());
    store_ = std::move(store.value());
    writer_ = std::make_unique<TelemetryWriter>(*store_, WriterOptions{});
    writer_->start();
  }
  void TearDown() override {
    if (writer_) writer_->stop();
    if (memory_) memory_->stop();
    if (inventory_) inventory_->stop();
  }

  testing::TempDir directory_;
  std::unique_ptr<devices::Inventory> inventory_;
  std::unique_ptr<memory::MemoryService> memory_;
  std::unique_ptr<TelemetryStore> store_;
  std::unique_ptr<TelemetryWriter> writer_;
};

TEST_F(SamplerTest, SamplesEveryDeviceWithHealthAndHeldBytes) {
  memory::AllocateRequest request;
  request.deviceId = "sim-0";
  request.bytes = 64ull << 20;
  request.kind = memory::AllocationKind::kModel;
  ASSERT_TRUE(memory_->allocate(request).ok());
  SamplerOptions options;
  options.node = "node-a";
  options.interval = 1s;
  SystemTime now = std::chrono::system_clock::now();
  options.clock = [&] { return now; };
  Sampler sampler(*inventory_, memory_.get(), *writer_, options);
  sampler.sampleOnce();
  now += 1s;
  sampler.sampleOnce();
  ASSERT_TRUE(writer_->flush(10s));
  EXPECT_EQ(sampler.sampleCount(), 4u);
  auto latest = store_->latestSamples("node-a");
  ASSERT_TRUE(latest.ok()) << latest.error().message;
  ASSERT_EQ(latest->size(), 2u);
  const DeviceSample& cool = (*latest)[0];
  EXPECT_EQ(cool.deviceId, "sim-0");
  EXPECT_EQ(toMillis(cool.time), toMillis(now));
  EXPECT_EQ(cool.temperatureCelsius, 41);
  EXPECT_EQ(cool.utilizationRatio, 0.1);
  EXPECT_EQ(cool.memoryUsedBytes, 1ull << 30);
  EXPECT_EQ(cool.memoryTotalBytes, 16ull << 30);
  EXPECT_EQ(cool.health, "healthy");
  EXPECT_EQ(cool.heldBytes, 64ull << 20);
  EXPECT_EQ(cool.heldBytesByKind.at("model"), 64ull << 20);
  EXPECT_DOUBLE_EQ(cool.intervalSeconds, 1.0);
  EXPECT_FALSE(cool.stale);
  const DeviceSample& hot = (*latest)[1];
  EXPECT_EQ(hot.health, "critical");
  ASSERT_FALSE(hot.healthReasons.empty());
  EXPECT_EQ(hot.healthReasons[0]["code"], "temperatureAtSlowdown");
  auto devices = store_->devices("node-a");
  ASSERT_EQ(devices->size(), 2u);
  EXPECT_EQ((*devices)[0].vendor, "Simulated");
}

TEST_F(SamplerTest, AvailabilityFollowsRequirementsHealthAndTheLedger) {
  auto snapshot = inventory_->snapshot();
  auto all = evaluateAvailability(*snapshot, memory_.get(), {});
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(all[0].available);
  EXPECT_FALSE(all[1].available);  // critical
  EXPECT_EQ(all[1].reasons[0].code, "healthCritical");
  ASSERT_TRUE(all[0].ledgerAvailableBytes.has_value());

  AvailabilityRequirements big;
  big.minFreeBytes = *all[0].availableBytes + 1;
  auto refused = evaluateAvailability(*snapshot, memory_.get(), big);
  EXPECT_FALSE(refused[0].available);
  EXPECT_EQ(refused[0].reasons[0].code, "insufficientMemory");

  AvailabilityRequirements busy;
  busy.maxUtilization = 0.05;
  busy.type = "cpu";
  auto both = evaluateAvailability(*snapshot, memory_.get(), busy);
  ASSERT_EQ(both[0].reasons.size(), 2u);
  EXPECT_EQ(both[0].reasons[0].code, "typeMismatch");
  EXPECT_EQ(both[0].reasons[1].code, "utilizationTooHigh");
}

}  // namespace
}  // namespace deviceops::telemetry
