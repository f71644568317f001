// Faults of simulated devices (simulated_backend.h), as the allocator and the backend act them
// out. The hang fault's effect on the Inventory is in inventory_test.cc.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <vector>

#include "devices/health.h"
#include "devices/simulated/simulated_backend.h"
#include "devices/simulated/simulated_fleet.h"

namespace deviceops::devices {
namespace {

constexpr std::uint64_t kMiB = 1ULL << 20;

std::shared_ptr<SimulatedFleet> fleetOf(std::vector<SimulatedDeviceSpec> specs) {
  SimulatedBackendOptions options;
  options.devices = std::move(specs);
  return std::make_shared<SimulatedFleet>(std::move(options));
}

std::shared_ptr<SimulatedFleet> fleetWith(const SimulatedFaults& faults) {
  SimulatedDeviceSpec spec;
  spec.memoryBytes = 1ULL << 30;
  spec.faults = faults;
  return fleetOf({spec});
}

std::unique_ptr<DeviceAllocator> allocatorFor(std::shared_ptr<SimulatedFleet> fleet,
                                              std::size_t index = 0) {
  auto allocator = makeSimulatedAllocator(std::move(fleet), index);
  EXPECT_TRUE(allocator.ok()) << allocator.error().message;
  return allocator.ok() ? std::move(allocator).value() : nullptr;
}

Status writeWord(DeviceAllocator& allocator, const Block& block, std::uint64_t offset,
                 std::uint64_t word) {
  return allocator.write(block, offset, &word, sizeof word);
}

std::uint64_t readWord(DeviceAllocator& allocator, const Block& block, std::uint64_t offset) {
  std::uint64_t word = 0;
  Status read = allocator.read(block, offset, &word, sizeof word);
  EXPECT_TRUE(read.ok()) << read.error().message;
  return word;
}

TEST(SimulatedFaultsTest, StuckBitReadsItsValueWhateverWasWritten) {
  struct Case {
    const char* name;
    unsigned bit;
    unsigned value;
    std::uint64_t written;
    std::uint64_t expected;
  };
  const Case cases[] = {
      {"bit 3 stuck at 0", 3, 0, ~0ULL, ~0ULL ^ 0x8},
      {"bit 3 stuck at 1", 3, 1, 0, 0x8},
      {"bit 43 stuck at 1 (byte 5 of the word)", 43, 1, 0x0102030405060708ULL,
       0x0102030405060708ULL | (1ULL << 43)},
      {"stuck at what was written", 3, 1, 0x8, 0x8},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    SimulatedFaults faults;
    faults.stuckBit = SimulatedBit{kMiB, c.bit};
    faults.stuckValue = c.value;
    auto allocator = allocatorFor(fleetWith(faults));
    ASSERT_NE(allocator, nullptr);
    auto block = allocator->allocate(4 * kMiB, {});
    ASSERT_TRUE(block.ok());
    ASSERT_TRUE(writeWord(*allocator, *block, kMiB, c.written).ok());
    EXPECT_EQ(readWord(*allocator, *block, kMiB), c.expected);
    EXPECT_EQ(readWord(*allocator, *block, kMiB), c.expected);  // every time
    // Neighbouring words are untouched; a read that ends before the bit does not see it.
    ASSERT_TRUE(writeWord(*allocator, *block, kMiB + 8, c.written).ok());
    EXPECT_EQ(readWord(*allocator, *block, kMiB + 8), c.written);
    unsigned char head[3] = {};
    ASSERT_TRUE(allocator->read(*block, kMiB - 3, head, 3).ok());
    EXPECT_EQ(head[0] | head[1] | head[2], 0);
    // A long read that covers the bit sees it at the right place.
    std::vector<unsigned char> span(64);
    ASSERT_TRUE(allocator->read(*block, kMiB - 24, span.data(), span.size()).ok());
    std::uint64_t inSpan = 0;
    std::memcpy(&inSpan, span.data() + 24, 8);
    EXPECT_EQ(inSpan, c.expected);
    // Every block of the device has the fault.
    auto other = allocator->allocate(2 * kMiB, {});
    ASSERT_TRUE(other.ok());
    ASSERT_TRUE(writeWord(*allocator, *other, kMiB, c.written).ok());
    EXPECT_EQ(readWord(*allocator, *other, kMiB), c.expected);
    allocator->release(*block);
    allocator->release(*other);
  }
}

TEST(SimulatedFaultsTest, FlippingBitAlternatesFromTheFirstRead) {
  SimulatedFaults faults;
  faults.flippingBit = SimulatedBit{2 * kMiB, 7};
  auto allocator = allocatorFor(fleetWith(faults));
  ASSERT_NE(allocator, nullptr);
  auto block = allocator->allocate(4 * kMiB, {});
  ASSERT_TRUE(block.ok());
  constexpr std::uint64_t kWord = 0x1111111111111111ULL;
  ASSERT_TRUE(writeWord(*allocator, *block, 2 * kMiB, kWord).ok());
  EXPECT_EQ(readWord(*allocator, *block, 2 * kMiB), kWord ^ 0x80);
  EXPECT_EQ(readWord(*allocator, *block, 2 * kMiB), kWord);
  // Reads that do not cover the bit neither see nor advance it.
  EXPECT_EQ(readWord(*allocator, *block, 2 * kMiB + 8), 0u);
  EXPECT_EQ(readWord(*allocator, *block, 2 * kMiB), kWord ^ 0x80);
  EXPECT_EQ(readWord(*allocator, *block, 2 * kMiB), kWord);
  // Another block counts its own reads.
  auto other = allocator->allocate(4 * kMiB, {});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(readWord(*allocator, *other, 2 * kMiB), 0x80u);
  EXPECT_EQ(readWord(*allocator, *block, 2 * kMiB), kWord ^ 0x80);
  allocator->release(*block);
  allocator->release(*other);
}

TEST(SimulatedFaultsTest, BandwidthCapSlowsTransfersDown) {
  SimulatedFaults faults;
  faults.bandwidthCapBytesPerSecond = 256e6;
  auto allocator = allocatorFor(fleetWith(faults));
  ASSERT_NE(allocator, nullptr);
  auto block = allocator->allocate(64 * kMiB, {});
  ASSERT_TRUE(block.ok());
  std::vector<unsigned char> data(64 * kMiB, 0x5A);
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  auto start = Clock::now();
  ASSERT_TRUE(allocator->write(*block, 0, data.data(), data.size()).ok());
  EXPECT_GE(seconds(start), 0.26);  // 64 MiB at 256 MB/s: 0.262 s
  start = Clock::now();
  ASSERT_TRUE(allocator->read(*block, 0, data.data(), 16 * kMiB).ok());
  EXPECT_GE(seconds(start), 0.065);  // 16 MiB: 0.0655 s
  start = Clock::now();
  ASSERT_TRUE(allocator->copy(*block, 32 * kMiB, *block, 0, 16 * kMiB).ok());
  EXPECT_GE(seconds(start), 0.065);
  EXPECT_EQ(data[0], 0x5A);
  allocator->release(*block);
}

TEST(SimulatedFaultsTest, DeviceVanishesAfterItsTransfers) {
  SimulatedDeviceSpec faulty;
  faulty.faults.vanishAfterTransfers = 3;
  auto fleet = fleetOf({SimulatedDeviceSpec{}, faulty});
  auto backend = makeSimulatedBackend(fleet);
  ASSERT_TRUE(backend->open().ok());
  auto before = backend->poll();
  ASSERT_TRUE(before.ok());
  ASSERT_EQ(before->size(), 2u);
  EXPECT_EQ(before->at(1).properties["faults"], nlohmann::json::array({"vanishAfterTransfers"}));

  auto allocator = allocatorFor(fleet, 1);
  ASSERT_NE(allocator, nullptr);
  auto block = allocator->allocate(kMiB, {});
  ASSERT_TRUE(block.ok());
  std::uint64_t word = 7;
  ASSERT_TRUE(allocator->write(*block, 0, &word, 8).ok());
  ASSERT_TRUE(allocator->read(*block, 0, &word, 8).ok());
  ASSERT_TRUE(allocator->copy(*block, 8, *block, 0, 8).ok());  // the third: now gone
  EXPECT_EQ(allocator->driverFreeBytes(), std::nullopt);
  Status write = allocator->write(*block, 0, &word, 8);
  ASSERT_FALSE(write.ok());
  EXPECT_EQ(write.error().code, ErrorCode::kUnavailable);
  EXPECT_NE(write.error().message.find("vanished"), std::string::npos) << write.error().message;
  EXPECT_EQ(allocator->read(*block, 0, &word, 8).error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(allocator->copy(*block, 8, *block, 0, 8).error().code, ErrorCode::kUnavailable);
  auto allocated = allocator->allocate(kMiB, {});
  ASSERT_FALSE(allocated.ok());
  EXPECT_EQ(allocated.error().code, ErrorCode::kUnavailable);
  auto verified = allocator->verify(*block);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.error().code, ErrorCode::kUnavailable);
  allocator->release(*block);  // still allowed
  EXPECT_EQ(allocator->liveBytes(), 0u);

  // The backend no longer reports it; the other device is unaffected.
  auto after = backend->poll();
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(after->at(0).localKey, "0");
  auto healthy = allocatorFor(fleet, 0);
  ASSERT_NE(healthy, nullptr);
  EXPECT_TRUE(healthy->allocate(kMiB, {}).ok());
}

TEST(SimulatedFaultsTest, EccErrorsMakeTheDeviceCritical) {
  SimulatedFaults faults;
  faults.eccDoubleBitErrors = 2;
  auto backend = makeSimulatedBackend(fleetWith(faults));
  ASSERT_TRUE(backend->open().ok());
  auto records = backend->poll();
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ(records->at(0).readings.eccVolatileDoubleBit, 2u);
  const Health health = evaluateHealth(records->at(0), HealthThresholds{}, false);
  EXPECT_EQ(health.status, HealthStatus::kCritical);
  ASSERT_EQ(health.reasons.size(), 1u);
  EXPECT_EQ(health.reasons[0].code, "eccDoubleBitErrors");

  auto clean = makeSimulatedBackend(fleetWith(SimulatedFaults{}));
  ASSERT_TRUE(clean->open().ok());
  auto cleanRecords = clean->poll();
  ASSERT_TRUE(cleanRecords.ok());
  EXPECT_EQ(cleanRecords->at(0).readings.eccVolatileDoubleBit, std::nullopt);
  EXPECT_FALSE(cleanRecords->at(0).properties.contains("faults"));
}

TEST(SimulatedFaultsTest, PeakBandwidthAndBackingAreReported) {
  SimulatedDeviceSpec spec;
  spec.peakBandwidthBytesPerSecond = 100e9;
  spec.backingBytes = 8 * kMiB;
  auto fleet = fleetOf({spec, SimulatedDeviceSpec{}});
  auto backend = makeSimulatedBackend(fleet);
  ASSERT_TRUE(backend->open().ok());
  auto records = backend->poll();
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ(records->at(0).memory.peakBandwidthBytesPerSecond, 100e9);
  EXPECT_EQ(records->at(0).properties["backingBytes"], 8 * kMiB);
  EXPECT_EQ(records->at(1).memory.peakBandwidthBytesPerSecond, std::nullopt);
  auto allocator = allocatorFor(fleet, 0);
  ASSERT_NE(allocator, nullptr);
  EXPECT_EQ(allocator->transferLimitBytes(), 8 * kMiB);
  auto block = allocator->allocate(16 * kMiB, {});
  ASSERT_TRUE(block.ok());
  unsigned char byte = 0;
  EXPECT_TRUE(allocator->read(*block, 8 * kMiB - 1, &byte, 1).ok());
  EXPECT_EQ(allocator->read(*block, 8 * kMiB, &byte, 1).error().code, ErrorCode::kInvalidArgument);
  allocator->release(*block);
}

TEST(SimulatedFaultsTest, AllocatorForAnIndexOutsideTheFleetIsRefused) {
  auto fleet = fleetOf({SimulatedDeviceSpec{}});
  auto missing = makeSimulatedAllocator(fleet, 1);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kInvalidArgument);
  auto none = makeSimulatedAllocator(nullptr, 0);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace deviceops::devices
