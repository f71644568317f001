// TelemetryStore: where samples, rollups, devices, nodes and events are kept. One class, one
// schema (docs/DEVICE_MONITOR_SCHEMA.md) and one SQL code path over a store::Connection: SQLite
// (<dataDir>/telemetry.db, WAL) or PostgreSQL 15 (libpqxx, a connection string). Several nodes
// may write one PostgreSQL database; every row carries its node name.
//
// Contract: write() is one transaction (samples, their rollups, devices, node, events): all or
// nothing. Migrations run on open (PostgreSQL: on the first successful connection, so a daemon
// may start while the server is down). Errors: the server or file cannot be reached or the
// connection broke -> kUnavailable (retry later); a schema newer than this build -> kConflict;
// bad arguments -> kInvalidArgument. Nothing throws.
//
// Thread-safety: every method may be called from any thread; calls are serialised internally.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/connection.h"
#include "telemetry/rollup.h"
#include "telemetry/sample.h"

namespace deviceops::telemetry {

// The schema version this build writes (schema_version table). 1: nodes, devices, samples,
// events. 2: rollups_1m, rollups_1h (backfilled from existing samples).
inline constexpr int kSchemaVersion = 2;

class TelemetryStore {
 public:
  // Use the open* functions below; `targetVersion` limits migrations (tests of migrations).
  TelemetryStore(std::unique_ptr<store::Connection> connection, int targetVersion);
  TelemetryStore(const TelemetryStore&) = delete;
  TelemetryStore& operator=(const TelemetryStore&) = delete;

  // "sqlite" | "postgresql".
  std::string_view kind() const;
  // Where it writes, without secrets: a file path, or host/port/database.
  std::string description() const;

  // Connects (when needed) and applies pending migrations.
  Status ensureReady();
  Result<int> schemaVersion();

  Status write(const WriteBatch& batch);

  // Devices known for `node` (rows of `devices`), by id.
  Result<std::vector<DeviceInfo>> devices(const std::string& node);
  // The newest sample of each of `node`'s devices.
  Result<std::vector<DeviceSample>> latestSamples(const std::string& node);
  // Raw samples of one device in [from, to), oldest first.
  Result<std::vector<DeviceSample>> samples(const std::string& node, const std::string& deviceId,
                                            SystemTime from, SystemTime to);
  // Rollup rows (resolution kMinute or kHour) whose bucket starts in [from, to), oldest first.
  Result<std::vector<Rollup>> rollups(const std::string& node, const std::string& deviceId,
                                      Resolution resolution, SystemTime from, SystemTime to);
  // Statistics over [from, to); kAuto picks the resolution by window (chooseResolution). For
  // rollup resolutions `from` is aligned down to the bucket.
  Result<Statistics> statistics(const std::string& node, const std::string& deviceId,
                                SystemTime from, SystemTime to,
                                Resolution resolution = Resolution::kAuto);
  Result<std::vector<StoredEvent>> events(const EventQuery& query);

  // Deletes raw samples older than now - rawRetention, rollups and events older than
  // now - rollupRetention, for every node. Returns the rows deleted.
  Result<std::uint64_t> applyRetention(SystemTime now, std::chrono::seconds rawRetention,
                                       std::chrono::seconds rollupRetention);

 private:
  Result<Statistics> rawStatistics(const std::string& node, const std::string& deviceId,
                                   SystemTime from, SystemTime to);
  Result<Statistics> windowStatistics(const std::string& node, const std::string& deviceId,
                                      SystemTime from, SystemTime to, Resolution resolution);
  Status writeNode(const NodeInfo& node);
  Status writeDevices(const std::vector<DeviceInfo>& devices);
  Status writeSamples(const std::vector<DeviceSample>& samples);
  Status writeRollups(Resolution resolution, const std::vector<Rollup>& rollups);
  Status writeEvents(const std::vector<StoredEvent>& events);
  template <class Item, class Append>
  Status writeChunks(const std::vector<Item>& rows, const std::vector<std::string>& columns,
                     const std::string& suffix, const std::string& table, Append append);

  const std::unique_ptr<store::Connection> connection_;  // thread-safe; serialises calls
  const int targetVersion_;
  std::mutex mutex_;             // guards version_ during ensureReady()
  std::atomic<int> version_{0};  // applied schema version once ready; 0 before
};

// Opens (creating if needed) the SQLite file and migrates it. `path` is usually
// <dataDir>/telemetry.db; its directory must exist.
Result<std::unique_ptr<TelemetryStore>> openSqliteTelemetryStore(const std::filesystem::path& path);

// A PostgreSQL store for a libpq connection string ("postgresql://user@host:5432/db" or
// "host=/run/postgresql dbname=deviceops"). Connects now and migrates when the server answers;
// when it does not, the store is returned anyway and connects on a later call (kUnavailable
// until then). A malformed connection string is kInvalidArgument; a newer schema kConflict.
Result<std::unique_ptr<TelemetryStore>> openPostgresTelemetryStore(const std::string& connection);

// For tests of migrations: opens without migrating beyond `version`.
Result<std::unique_ptr<TelemetryStore>> openSqliteTelemetryStoreAtVersion(
    const std::filesystem::path& path, int version);
Result<std::unique_ptr<TelemetryStore>> openPostgresTelemetryStoreAtVersion(
    const std::string& connection, int version);

}  // namespace deviceops::telemetry
