#include "telemetry/item_codec.h"

#include <gtest/gtest.h>

namespace deviceops::telemetry {
namespace {

TEST(ItemCodecTest, SampleRoundTripsEveryField) {
  DeviceSample s;
  s.node = "n";
  s.deviceId = "gpu-0000-01-00-0";
  s.time = fromMillis(1'767'225'600'123);
  s.intervalSeconds = 0.5;
  s.temperatureCelsius = 70.25;
  s.memoryUsedBytes = 1ull << 40;
  s.memoryTotalBytes = 80ull << 30;
  s.powerWatts = 301.5;
  s.throttled = true;
  s.throttleReasons = {"thermal"};
  s.eccDoubleBitErrors = 2;
  s.health = "critical";
  s.healthReasons = nlohmann::json::array({{{"code", "eccDoubleBitErrors"}}});
  s.stale = true;
  s.heldBytesByKind = {{"model", 5}};
  const auto decoded = decodeItem(nlohmann::json::parse(encodeItem(s).dump()));
  ASSERT_TRUE(decoded.has_value());
  const DeviceSample& d = std::get<DeviceSample>(*decoded);
  EXPECT_EQ(encodeItem(d), encodeItem(s));
  EXPECT_EQ(toMillis(d.time), 1'767'225'600'123);
  EXPECT_FALSE(d.utilizationRatio.has_value());
  EXPECT_EQ(d.memoryUsedBytes, 1ull << 40);
}

TEST(ItemCodecTest, EventsNodesAndDevicesRoundTrip) {
  StoredEvent event{0, "n", {}};
  event.event.type = "model.evicted";
  event.event.details = {{"bytes", 7}};
  NodeInfo node{"n", "host", "0.1.0", 5.0, fromMillis(9)};
  DeviceInfo device;
  device.deviceId = "sim-0";
  device.simulated = true;
  for (const BufferedItem& item : {BufferedItem(event), BufferedItem(node), BufferedItem(device)}) {
    const auto decoded = decodeItem(encodeItem(item));
    ASSERT_TRUE(decoded.has_value());
    EXPECT_EQ(decoded->index(), item.index());
    EXPECT_EQ(encodeItem(*decoded), encodeItem(item));
  }
}

TEST(ItemCodecTest, TornOrForeignLinesAreRejected) {
  EXPECT_FALSE(decodeItem(nlohmann::json::object()).has_value());
  EXPECT_FALSE(decodeItem({{"k", "sample"}, {"node", "n"}}).has_value());
  EXPECT_FALSE(decodeItem({{"k", "bogus"}}).has_value());
  EXPECT_FALSE(decodeItem(nlohmann::json::array()).has_value());
}

}  // namespace
}  // namespace deviceops::telemetry
