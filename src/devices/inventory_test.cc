#include "devices/inventory.h"

#include <gtest/gtest.h>

#include "devices/simulated/simulated_backend.h"
#include "devices/simulated/simulated_fleet.h"

namespace deviceops::devices {
namespace {

using namespace std::chrono_literals;

// Test double: a backend whose answers the test controls.
class ScriptedBackendDouble final : public Backend {
 public:
  struct Script {
    std::mutex mutex;
    bool failOpen = false;
    bool hang = false;
    std::vector<std::string> keys = {"a", "b"};
    int polls = 0;
  };
  explicit ScriptedBackendDouble(std::shared_ptr<Script> script) : script_(std::move(script)) {}
  std::string_view name() const override { return "scripted"; }
  Status open() override {
    std::lock_guard lock(script_->mutex);
    if (script_->failOpen) return makeError(ErrorCode::kUnavailable, "scripted open failure");
    return Status::success();
  }
  Result<std::vector<DeviceRecord>> poll() override {
    std::vector<std::string> keys;
    {
      std::lock_guard lock(script_->mutex);
      ++script_->polls;
      while (script_->hang) {
        script_->mutex.unlock();
        std::this_thread::sleep_for(5ms);
        script_->mutex.lock();
      }
      keys = script_->keys;
    }
    std::vector<DeviceRecord> records;
    for (const std::string& key : keys) {
      DeviceRecord record;
      record.backend = "scripted";
      record.localKey = key;
      record.name = "device " + key;
      record.memory.totalBytes = 1 << 20;
      records.push_back(record);
    }
    return records;
  }

 private:
  std::shared_ptr<Script> script_;
};

template <class Predicate>
bool eventually(Predicate predicate) {
  for (int i = 0; i < 400; ++i) {
    if (predicate()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

InventoryOptions fastOptions() {
  InventoryOptions options;
  options.pollInterval = 10ms;
  options.staleAfter = 200ms;
  return options;
}

TEST(InventoryTest, StartPublishesDevicesOfEveryBackend) {
  SimulatedBackendOptions simulated;
  simulated.devices.resize(5);
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(makeSimulatedBackend(simulated));
  backends.push_back(
      std::make_unique<ScriptedBackendDouble>(std::make_shared<ScriptedBackendDouble::Script>()));
  Inventory inventory(std::move(backends), fastOptions());
  inventory.start();
  auto snapshot = inventory.snapshot();
  ASSERT_EQ(snapshot->devices.size(), 7u);
  ASSERT_NE(snapshot->find("sim-4"), nullptr);
  EXPECT_TRUE(snapshot->find("sim-4")->record.simulated);
  EXPECT_EQ(snapshot->find("nope"), nullptr);
  ASSERT_EQ(snapshot->backends.size(), 2u);
  EXPECT_TRUE(snapshot->backends[0].available);
}

TEST(InventoryTest, UnavailableBackendIsReportedWithItsReason) {
  auto script = std::make_shared<ScriptedBackendDouble::Script>();
  script->failOpen = true;
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(std::make_unique<ScriptedBackendDouble>(script));
  Inventory inventory(std::move(backends), fastOptions());
  inventory.start();
  auto snapshot = inventory.snapshot();
  EXPECT_TRUE(snapshot->devices.empty());
  ASSERT_EQ(snapshot->backends.size(), 1u);
  EXPECT_FALSE(snapshot->backends[0].available);
  EXPECT_EQ(snapshot->backends[0].reason, "scripted open failure");
}

TEST(InventoryTest, VanishedDeviceIsReportedLostNotDropped) {
  auto script = std::make_shared<ScriptedBackendDouble::Script>();
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(std::make_unique<ScriptedBackendDouble>(script));
  Inventory inventory(std::move(backends), fastOptions());
  inventory.start();
  ASSERT_EQ(inventory.snapshot()->devices.size(), 2u);
  {
    std::lock_guard lock(script->mutex);
    script->keys = {"a"};
  }
  ASSERT_TRUE(eventually([&] {
    auto snapshot = inventory.snapshot();
    const DeviceView* b = snapshot->find("scripted-b");
    return b != nullptr && b->health.status == HealthStatus::kLost;
  }));
  EXPECT_EQ(inventory.snapshot()->find("scripted-a")->health.status, HealthStatus::kHealthy);
}

TEST(InventoryTest, HungBackendMakesItsDevicesLostWhileOthersStayFresh) {
  auto script = std::make_shared<ScriptedBackendDouble::Script>();
  SimulatedBackendOptions simulated;
  simulated.devices.resize(1);
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(std::make_unique<ScriptedBackendDouble>(script));
  backends.push_back(makeSimulatedBackend(simulated));
  Inventory inventory(std::move(backends), fastOptions());
  inventory.start();
  {
    std::lock_guard lock(script->mutex);
    script->hang = true;
  }
  ASSERT_TRUE(eventually([&] {
    const DeviceView* a = inventory.snapshot()->find("scripted-a");
    return a != nullptr && a->health.status == HealthStatus::kLost &&
           a->health.reasons.at(0).code == "backendNotResponding";
  }));
  EXPECT_EQ(inventory.snapshot()->find("sim-0")->health.status, HealthStatus::kHealthy);
  {
    std::lock_guard lock(script->mutex);
    script->hang = false;
  }
  ASSERT_TRUE(eventually([&] {
    return inventory.snapshot()->find("scripted-a")->health.status == HealthStatus::kHealthy;
  }));
}

// A simulated hangAfterPolls fault: the backend's 4th poll blocks; its device becomes lost
// (backendNotResponding) while the other backend stays fresh, and stop() still returns, because
// it interrupts the hung poll.
TEST(InventoryTest, SimulatedHangMakesTheDeviceLostAndStopStillReturns) {
  SimulatedBackendOptions simulated;
  simulated.devices.resize(1);
  simulated.devices[0].faults.hangAfterPolls = 3;
  auto fleet = std::make_shared<SimulatedFleet>(simulated);
  auto script = std::make_shared<ScriptedBackendDouble::Script>();
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(makeSimulatedBackend(fleet));
  backends.push_back(std::make_unique<ScriptedBackendDouble>(script));
  Inventory inventory(std::move(backends), fastOptions());
  inventory.start();
  ASSERT_TRUE(eventually([&] {
    const DeviceView* device = inventory.snapshot()->find("sim-0");
    return device != nullptr && device->health.status == HealthStatus::kLost &&
           device->health.reasons.at(0).code == "backendNotResponding";
  }));
  EXPECT_EQ(fleet->polls(), 4u);
  EXPECT_EQ(inventory.snapshot()->find("scripted-a")->health.status, HealthStatus::kHealthy);
  inventory.stop();
  EXPECT_EQ(fleet->polls(), 4u);
}

// A simulated vanishAfterTransfers fault seen through the inventory: the device is lost.
TEST(InventoryTest, SimulatedDeviceThatVanishesIsReportedLost) {
  SimulatedBackendOptions simulated;
  simulated.devices.resize(2);
  simulated.devices[1].faults.vanishAfterTransfers = 1;
  auto fleet = std::make_shared<SimulatedFleet>(simulated);
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(makeSimulatedBackend(fleet));
  Inventory inventory(std::move(backends), fastOptions());
  inventory.start();
  ASSERT_EQ(inventory.snapshot()->find("sim-1")->health.status, HealthStatus::kHealthy);
  auto allocator = makeSimulatedAllocator(fleet, 1);
  ASSERT_TRUE(allocator.ok());
  auto block = (*allocator)->allocate(64, {});
  ASSERT_TRUE(block.ok());
  std::uint64_t word = 1;
  ASSERT_TRUE((*allocator)->write(*block, 0, &word, 8).ok());
  ASSERT_TRUE(eventually(
      [&] { return inventory.snapshot()->find("sim-1")->health.status == HealthStatus::kLost; }));
  EXPECT_EQ(inventory.snapshot()->find("sim-0")->health.status, HealthStatus::kHealthy);
  (*allocator)->release(*block);
}

// The daemon finds a simulated device's fleet index in the snapshot form of its record.
TEST(InventoryTest, SimulatedFleetIndexSurvivesMerging) {
  SimulatedBackendOptions simulated;
  simulated.devices.resize(3);
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(makeSimulatedBackend(simulated));
  backends.push_back(
      std::make_unique<ScriptedBackendDouble>(std::make_shared<ScriptedBackendDouble::Script>()));
  Inventory inventory(std::move(backends), fastOptions());
  inventory.start();
  auto snapshot = inventory.snapshot();
  for (std::size_t index = 0; index < 3; ++index) {
    const DeviceView* view = snapshot->find("sim-" + std::to_string(index));
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(simulatedFleetIndex(view->record), index);
  }
  EXPECT_EQ(simulatedFleetIndex(snapshot->find("scripted-a")->record), std::nullopt);
  DeviceRecord odd = snapshot->find("sim-1")->record;
  for (const char* key : {"", "x", "1x", "-1"}) {
    SCOPED_TRACE(key);
    odd.localKey = key;
    EXPECT_EQ(simulatedFleetIndex(odd), std::nullopt);
  }
}

}  // namespace
}  // namespace deviceops::devices
