// The TelemetryStore contract, run against both real stores: SQLite (a temp file) and
// PostgreSQL 15 (a server this test process starts; a fresh database per test).
#include "telemetry/store.h"

#include <gtest/gtest.h>

#include <thread>

#include "store/sqlite.h"
#include "telemetry/testing/store_fixture.h"

namespace deviceops::telemetry {
namespace {

using testing::makeSample;

class SqliteBackend {
 public:
  Result<std::unique_ptr<TelemetryStore>> open(int version = kSchemaVersion) {
    return openSqliteTelemetryStoreAtVersion(path(), version);
  }
  Status executeSql(const std::string& sql) {
    auto database = store::SqliteDatabase::open(path());
    if (!database.ok()) return database.error();
    return (*database)->exec(sql);
  }
  std::filesystem::path path() const { return directory_.root() / "telemetry.db"; }

 private:
  testing::TempDir directory_;
};

class PostgresBackend {
 public:
  PostgresBackend() {
    server_ = testing::sharedPostgres();
    if (server_ == nullptr) return;
    name_ = testing::uniqueName("contract");
    auto created = server_->createDatabase(name_);
    if (!created.ok()) {
      ADD_FAILURE() << created.error().message;
      return;
    }
    connection_ = *created;
  }
  Result<std::unique_ptr<TelemetryStore>> open(int version = kSchemaVersion) {
    if (connection_.empty()) return makeError(ErrorCode::kUnavailable, "no PostgreSQL server");
    return openPostgresTelemetryStoreAtVersion(connection_, version);
  }
  Status executeSql(const std::string& sql) { return server_->execute(name_, sql); }

 private:
  deviceops::testing::PostgresServer* server_ = nullptr;
  std::string name_;
  std::string connection_;
};

template <class Backend>
class StoreContractTest : public ::testing::Test {
 protected:
  std::unique_ptr<TelemetryStore> open(int version = kSchemaVersion) {
    auto store = backend_.open(version);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store.value()) : nullptr;
  }
  Backend backend_;
};

using Backends = ::testing::Types<SqliteBackend, PostgresBackend>;
class BackendNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, SqliteBackend> ? "Sqlite" : "Postgres";
  }
};
TYPED_TEST_SUITE(StoreContractTest, Backends, BackendNames);

WriteBatch samplesBatch(std::vector<DeviceSample> samples) {
  WriteBatch batch;
  batch.samples = std::move(samples);
  return batch;
}

// 150 one-second samples from t0 across three minute buckets, varying everything.
std::vector<DeviceSample> series(const std::string& node, const std::string& device,
                                 std::int64_t t0, int count = 150) {
  std::vector<DeviceSample> samples;
  for (int i = 0; i < count; ++i) {
    DeviceSample s = makeSample(node, device, t0 + i * 1000, 40 + (i * 7) % 23, 50 + i % 11,
                                i % 40 < 5 ? "degraded" : "healthy", i % 9 == 0);
    if (i % 13 == 0) s.powerWatts.reset();  // absent readings are skipped, not zero
    samples.push_back(s);
  }
  return samples;
}

constexpr std::int64_t kT0 = 1'767'225'600'000;  // 2026-01-01T00:00:00Z, on an hour boundary

EventQuery query(std::optional<std::string> node = {}, std::optional<std::string> device = {},
                 std::optional<SystemTime> since = {}, std::optional<std::string> type = {},
                 std::size_t limit = 100) {
  EventQuery q;
  q.node = std::move(node);
  q.deviceId = std::move(device);
  q.since = since;
  q.type = std::move(type);
  q.limit = limit;
  return q;
}

TYPED_TEST(StoreContractTest, MigratesAnEmptyDatabaseAndReopens) {
  auto store = this->open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->schemaVersion(), kSchemaVersion);
  store.reset();
  auto again = this->open();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(*again->schemaVersion(), kSchemaVersion);
}

TYPED_TEST(StoreContractTest, MigratesFromVersion1AndBackfillsRollups) {
  const auto samples = series("node-a", "sim-0", kT0);
  {
    auto v1 = this->open(1);
    ASSERT_NE(v1, nullptr);
    EXPECT_EQ(*v1->schemaVersion(), 1);
    ASSERT_TRUE(v1->write(samplesBatch(samples)).ok());
  }
  auto v2 = this->open();
  ASSERT_NE(v2, nullptr);
  EXPECT_EQ(*v2->schemaVersion(), 2);
  auto minutes = v2->rollups("node-a", "sim-0", Resolution::kMinute, fromMillis(kT0),
                             fromMillis(kT0 + kHourMs));
  ASSERT_TRUE(minutes.ok()) << minutes.error().message;
  const auto expected = aggregate(samples, kMinuteMs);
  ASSERT_EQ(minutes->size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(i);
    const Rollup& got = (*minutes)[i];
    EXPECT_EQ(got.bucketStartMs, expected[i].bucketStartMs);
    EXPECT_EQ(got.sampleCount, expected[i].sampleCount);
    EXPECT_DOUBLE_EQ(got.coveredSeconds, expected[i].coveredSeconds);
    EXPECT_NEAR(got.energyJoules, expected[i].energyJoules, 1e-6);
    EXPECT_DOUBLE_EQ(got.healthSeconds[1], expected[i].healthSeconds[1]);
    for (std::size_t m = 0; m < kRollupMetricCount; ++m) {
      EXPECT_EQ(got.metrics[m].count, expected[i].metrics[m].count);
      EXPECT_EQ(got.metrics[m].min, expected[i].metrics[m].min);
      EXPECT_EQ(got.metrics[m].max, expected[i].metrics[m].max);
      EXPECT_NEAR(got.metrics[m].avg, expected[i].metrics[m].avg, 1e-9);
      EXPECT_EQ(got.metrics[m].last, expected[i].metrics[m].last);
    }
  }
  auto hours =
      v2->rollups("node-a", "sim-0", Resolution::kHour, fromMillis(kT0), fromMillis(kT0 + kHourMs));
  ASSERT_TRUE(hours.ok());
  ASSERT_EQ(hours->size(), 1u);
  EXPECT_EQ((*hours)[0].sampleCount, 150u);
  // New samples after the migration merge into the backfilled buckets.
  ASSERT_TRUE(v2->write(samplesBatch({makeSample("node-a", "sim-0", kT0 + 150'000, 99, 1)})).ok());
  hours =
      v2->rollups("node-a", "sim-0", Resolution::kHour, fromMillis(kT0), fromMillis(kT0 + kHourMs));
  EXPECT_EQ((*hours)[0].sampleCount, 151u);
  EXPECT_DOUBLE_EQ(*(*hours)[0].metrics[kTemperature].max, 99);
}

TYPED_TEST(StoreContractTest, RefusesASchemaNewerThanThisBuild) {
  ASSERT_NE(this->open(), nullptr);
  ASSERT_TRUE(this->backend_
                  .executeSql("INSERT INTO schema_version(version, name, applied_at_ms) "
                              "VALUES (99, 'from the future', 0)")
                  .ok());
  auto refused = this->backend_.open();
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_NE(refused.error().message.find("newer"), std::string::npos);
}

TYPED_TEST(StoreContractTest, RoundTripsEverySampleFieldAndDevices) {
  auto store = this->open();
  ASSERT_NE(store, nullptr);
  DeviceSample s =
      makeSample("node-a", "gpu-0000-01-00-0", kT0 + 123, 61.5, 250.25, "degraded", true);
  s.intervalSeconds = 0.75;
  s.memoryUtilizationRatio = 0.25;
  s.memoryFreeBytes = 12345;
  s.powerLimitWatts = 300;
  s.clockMhz = 1410;
  s.memoryClockMhz = 1215;
  s.throttleReasons = {"thermal", "powerCap"};
  s.eccSingleBitErrors = 4;
  s.eccDoubleBitErrors = 0;
  s.healthReasons = nlohmann::json::array(
      {{{"code", "thermalThrottling"}, {"severity", "degraded"}, {"message", "hot"}}});
  s.stale = true;
  s.readingAgeSeconds = 12.5;
  s.heldBytes = 1 << 20;
  s.heldBytesByKind = {{"model", 1 << 20}, {"raw", 0}};
  WriteBatch batch = samplesBatch({s});
  batch.node = NodeInfo{"node-a", "host-a", "0.1.0", 5.0, fromMillis(kT0)};
  DeviceInfo device;
  device.node = "node-a";
  device.deviceId = s.deviceId;
  device.name = "NVIDIA H100";
  device.vendor = "NVIDIA";
  device.type = "gpu";
  device.pciBusId = "0000:01:00.0";
  device.memoryTotalBytes = 80ull << 30;
  device.seenAt = fromMillis(kT0);
  batch.devices = {device};
  ASSERT_TRUE(store->write(batch).ok());

  auto devices = store->devices("node-a");
  ASSERT_TRUE(devices.ok());
  ASSERT_EQ(devices->size(), 1u);
  EXPECT_EQ((*devices)[0].name, "NVIDIA H100");
  EXPECT_EQ((*devices)[0].memoryTotalBytes, 80ull << 30);
  EXPECT_TRUE(store->devices("node-b")->empty());

  auto latest = store->latestSamples("node-a");
  ASSERT_TRUE(latest.ok()) << latest.error().message;
  ASSERT_EQ(latest->size(), 1u);
  const DeviceSample& got = (*latest)[0];
  EXPECT_EQ(toMillis(got.time), kT0 + 123);
  EXPECT_DOUBLE_EQ(got.intervalSeconds, 0.75);
  EXPECT_EQ(got.temperatureCelsius, 61.5);
  EXPECT_EQ(got.powerWatts, 250.25);
  EXPECT_EQ(got.memoryUsedBytes, s.memoryUsedBytes);
  EXPECT_EQ(got.memoryFreeBytes, 12345u);
  EXPECT_EQ(got.clockMhz, 1410);
  EXPECT_EQ(got.throttleReasons, s.throttleReasons);
  EXPECT_TRUE(got.throttled);
  EXPECT_EQ(got.eccSingleBitErrors, 4u);
  EXPECT_EQ(got.eccDoubleBitErrors, 0u);
  EXPECT_FALSE(got.xidErrors.has_value());
  EXPECT_EQ(got.health, "degraded");
  EXPECT_EQ(got.healthReasons, s.healthReasons);
  EXPECT_TRUE(got.stale);
  EXPECT_EQ(got.heldBytesByKind, s.heldBytesByKind);
}

TYPED_TEST(StoreContractTest, RollupsAreMaintainedAsSamplesArrive) {
  auto store = this->open();
  ASSERT_NE(store, nullptr);
  const auto samples = series("node-a", "sim-0", kT0 + 30'000, 200);
  for (std::size_t start = 0; start < samples.size(); start += 7) {  // batches split buckets
    std::vector<DeviceSample> part(
        samples.begin() + static_cast<std::ptrdiff_t>(start),
        samples.begin() + static_cast<std::ptrdiff_t>(std::min(start + 7, samples.size())));
    ASSERT_TRUE(store->write(samplesBatch(part)).ok());
  }
  for (auto [resolution, bucket] :
       {std::pair{Resolution::kMinute, kMinuteMs}, std::pair{Resolution::kHour, kHourMs}}) {
    auto stored = store->rollups("node-a", "sim-0", resolution, fromMillis(kT0),
                                 fromMillis(kT0 + 2 * kHourMs));
    ASSERT_TRUE(stored.ok());
    const auto expected = aggregate(samples, bucket);
    ASSERT_EQ(stored->size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ((*stored)[i].sampleCount, expected[i].sampleCount);
      EXPECT_EQ((*stored)[i].lastSampleMs, expected[i].lastSampleMs);
      for (std::size_t m = 0; m < kRollupMetricCount; ++m) {
        EXPECT_EQ((*stored)[i].metrics[m].min, expected[i].metrics[m].min);
        EXPECT_EQ((*stored)[i].metrics[m].max, expected[i].metrics[m].max);
        EXPECT_NEAR((*stored)[i].metrics[m].avg, expected[i].metrics[m].avg, 1e-9);
        EXPECT_EQ((*stored)[i].metrics[m].last, expected[i].metrics[m].last);
      }
    }
  }
}

TYPED_TEST(StoreContractTest, StatisticsMatchHandComputedValues) {
  auto store = this->open();
  ASSERT_NE(store, nullptr);
  // 120 samples, one per second from kT0: temperature 60 for the first 60 s and 80 after,
  // power 100 W throughout, throttled and degraded in the second minute.
  std::vector<DeviceSample> samples;
  for (int i = 0; i < 120; ++i) {
    samples.push_back(makeSample("node-a", "sim-0", kT0 + i * 1000, i < 60 ? 60 : 80, 100,
                                 i < 60 ? "healthy" : "degraded", i >= 60));
  }
  ASSERT_TRUE(store->write(samplesBatch(samples)).ok());
  for (Resolution resolution : {Resolution::kRaw, Resolution::kMinute, Resolution::kHour}) {
    SCOPED_TRACE(std::string(resolutionName(resolution)));
    auto s = store->statistics("node-a", "sim-0", fromMillis(kT0), fromMillis(kT0 + 240'000),
                               resolution);
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_EQ(s->resolution, resolution);
    EXPECT_EQ(s->sampleCount, 120u);
    EXPECT_DOUBLE_EQ(*s->temperatureCelsius.min, 60);
    EXPECT_DOUBLE_EQ(*s->temperatureCelsius.max, 80);
    EXPECT_NEAR(*s->temperatureCelsius.avg, 70, 1e-9);
    // Exact from raw samples; from rollups the 95th percentile of bucket averages: the two
    // minutes average 60 and 80, the one hour 70.
    EXPECT_NEAR(*s->temperatureCelsius.p95, resolution == Resolution::kHour ? 70 : 80, 1e-9);
    EXPECT_NEAR(*s->powerWatts.avg, 100, 1e-9);
    EXPECT_DOUBLE_EQ(*s->energyJoules, 120 * 100.0);  // 12 kJ = 3.333 Wh
    EXPECT_DOUBLE_EQ(s->throttledSeconds, 60);
    EXPECT_DOUBLE_EQ(s->healthSeconds.at("healthy"), 60);
    EXPECT_DOUBLE_EQ(s->healthSeconds.at("degraded"), 60);
    EXPECT_DOUBLE_EQ(s->coveredSeconds, 120);
  }
  auto raw = store->statistics("node-a", "sim-0", fromMillis(kT0), fromMillis(kT0 + 240'000));
  EXPECT_EQ(raw->resolution, Resolution::kRaw);  // auto: 4 minutes
  EXPECT_DOUBLE_EQ(raw->coverageRatio(), 0.5);
  auto day = store->statistics("node-a", "sim-0", fromMillis(kT0), fromMillis(kT0 + 24 * kHourMs));
  EXPECT_EQ(day->resolution, Resolution::kMinute);  // auto: 24 h
  EXPECT_EQ(day->sampleCount, 120u);
  auto other = store->statistics("node-a", "sim-9", fromMillis(kT0), fromMillis(kT0 + 60'000));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->sampleCount, 0u);
  EXPECT_FALSE(other->temperatureCelsius.avg.has_value());
  EXPECT_FALSE(other->energyJoules.has_value());
  auto empty = store->statistics("node-a", "sim-0", fromMillis(kT0), fromMillis(kT0));
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);
}

TYPED_TEST(StoreContractTest, EventsFilterByDeviceTypeSinceAndNode) {
  auto store = this->open();
  ASSERT_NE(store, nullptr);
  WriteBatch batch;
  const auto event = [](std::string node, std::int64_t t, std::string type, std::string device) {
    StoredEvent e;
    e.node = std::move(node);
    e.event.time = fromMillis(t);
    e.event.type = std::move(type);
    e.event.deviceId = std::move(device);
    e.event.message = "m";
    e.event.details = {{"n", t}};
    return e;
  };
  batch.events = {event("a", kT0, "health.changed", "sim-0"),
                  event("a", kT0 + 1000, "throttling.started", "sim-0"),
                  event("a", kT0 + 2000, "health.changed", "sim-1"),
                  event("a", kT0 + 3000, "model.loaded", ""),
                  event("b", kT0 + 4000, "health.changed", "sim-0"),
                  event("a", kT0 + 5000, "healthy.bogus", "sim-0")};
  ASSERT_TRUE(store->write(batch).ok());
  const auto count = [&](EventQuery query) {
    auto events = store->events(query);
    EXPECT_TRUE(events.ok());
    return events.ok() ? events->size() : 0;
  };
  EXPECT_EQ(count(query()), 6u);
  EXPECT_EQ(count(query("a")), 5u);
  EXPECT_EQ(count(query("a", "sim-0")), 3u);
  EXPECT_EQ(count(query({}, {}, {}, "health")), 3u);  // prefix match on the dot: not healthy.bogus
  EXPECT_EQ(count(query({}, {}, {}, "health.changed")), 3u);
  EXPECT_EQ(count(query({}, {}, fromMillis(kT0 + 2000))), 4u);
  EXPECT_EQ(count(query({}, {}, {}, {}, 2)), 2u);
  auto newest = store->events(query({}, {}, {}, {}, 1));
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].event.type, "healthy.bogus");
  EXPECT_EQ((*newest)[0].event.details["n"], kT0 + 5000);
  EXPECT_GT((*newest)[0].id, 0);
}

TYPED_TEST(StoreContractTest, RetentionKeepsRollupsLongerThanRawSamples) {
  auto store = this->open();
  ASSERT_NE(store, nullptr);
  const std::int64_t day = 24 * kHourMs;
  std::vector<DeviceSample> samples;
  for (int d : {100, 30, 1}) {  // days before "now"
    samples.push_back(makeSample("a", "sim-0", kT0 - d * day, 50, 1));
  }
  WriteBatch batch = samplesBatch(samples);
  StoredEvent old;
  old.node = "a";
  old.event.time = fromMillis(kT0 - 100 * day);
  old.event.type = "health.changed";
  batch.events = {old};
  ASSERT_TRUE(store->write(batch).ok());
  auto deleted = store->applyRetention(fromMillis(kT0), std::chrono::hours(24 * 7),
                                       std::chrono::hours(24 * 90));
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  // raw: 100 d and 30 d; 1m + 1h rollups: the 100 d ones; events: the 100 d one.
  EXPECT_EQ(*deleted, 2u + 2u + 1u);
  auto raw = store->samples("a", "sim-0", fromMillis(0), fromMillis(kT0 + day));
  ASSERT_EQ(raw->size(), 1u);
  auto hours =
      store->rollups("a", "sim-0", Resolution::kHour, fromMillis(0), fromMillis(kT0 + day));
  EXPECT_EQ(hours->size(), 2u);  // 30 d and 1 d
  EXPECT_TRUE(store->events(query())->empty());
}

TYPED_TEST(StoreContractTest, TwoNodesWriteOneDatabase) {
  auto first = this->open();
  auto second = this->open();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  const auto writeNode = [](TelemetryStore& store, const std::string& node, double temperature) {
    for (int batch = 0; batch < 20; ++batch) {
      std::vector<DeviceSample> samples;
      for (int device = 0; device < 4; ++device) {
        samples.push_back(
            makeSample(node, "sim-" + std::to_string(device), kT0 + batch * 1000, temperature, 10));
      }
      WriteBatch write = samplesBatch(samples);
      write.node = NodeInfo{node, node + ".example", "0.1.0", 1.0, fromMillis(kT0)};
      StoredEvent event;
      event.node = node;
      event.event.time = fromMillis(kT0 + batch * 1000);
      event.event.type = "test.tick";
      write.events = {event};
      Status status = store.write(write);
      EXPECT_TRUE(status.ok()) << status.error().message;
    }
  };
  std::thread a([&] { writeNode(*first, "node-a", 50); });
  std::thread b([&] { writeNode(*second, "node-b", 70); });
  a.join();
  b.join();
  for (auto [node, temperature] : {std::pair{"node-a", 50.0}, std::pair{"node-b", 70.0}}) {
    SCOPED_TRACE(node);
    auto stats = first->statistics(node, "sim-2", fromMillis(kT0), fromMillis(kT0 + 60'000));
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->sampleCount, 20u);
    EXPECT_DOUBLE_EQ(*stats->temperatureCelsius.max, temperature);
    EXPECT_EQ(second->latestSamples(node)->size(), 0u);  // no device rows written
    EXPECT_EQ(first->events(query(node))->size(), 20u);
  }
  EXPECT_EQ(first->events(query({}, {}, {}, {}, 1000))->size(), 40u);
}

}  // namespace
}  // namespace deviceops::telemetry
