// TelemetryStore over a store::Connection: one implementation for SQLite and PostgreSQL. Writes are
// multi-row statements inside one transaction; rollups are merged into the stored rows with
// INSERT ... ON CONFLICT DO UPDATE, using the same rules as Rollup::merge.
#include "telemetry/store.h"

#include <fmt/format.h>

#include "store/migrations.h"
#include "telemetry/schema.h"
#include "telemetry/statistics.h"

namespace deviceops::telemetry {
namespace {

using store::Row;
using store::Value;
using Values = std::vector<Value>;

constexpr std::size_t kRowsPerStatement = 200;

std::string joined(const std::vector<std::string>& columns, const std::string& prefix = "") {
  std::string text;
  for (const std::string& column : columns) text += (text.empty() ? "" : ", ") + prefix + column;
  return text;
}

// "($1, $2), ($3, $4)" for `rows` rows of `columns` parameters.
std::string placeholders(std::size_t rows, std::size_t columns) {
  std::string text;
  std::size_t index = 1;
  for (std::size_t row = 0; row < rows; ++row) {
    text += row == 0 ? "(" : ", (";
    for (std::size_t column = 0; column < columns; ++column) {
      text += fmt::format("{}${}", column == 0 ? "" : ", ", index++);
    }
    text += ")";
  }
  return text;
}

std::string reasonsText(const std::vector<std::string>& reasons) {
  std::string text;
  for (const std::string& reason : reasons) text += (text.empty() ? "" : ",") + reason;
  return text;
}

std::vector<std::string> splitReasons(const std::string& text) {
  std::vector<std::string> reasons;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) reasons.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return reasons;
}

nlohmann::json parseJson(const std::string& text, nlohmann::json fallback) {
  nlohmann::json parsed = nlohmann::json::parse(text, nullptr, false);
  return parsed.is_discarded() ? fallback : parsed;
}

void appendSample(Values& values, const DeviceSample& s) {
  nlohmann::json byKind = nlohmann::json::object();
  for (const auto& [kind, bytes] : s.heldBytesByKind) byKind[kind] = bytes;
  values.insert(values.end(), {s.node,
                               s.deviceId,
                               toMillis(s.time),
                               s.intervalSeconds,
                               store::optionalValue(s.temperatureCelsius),
                               store::optionalValue(s.utilizationRatio),
                               store::optionalValue(s.memoryUtilizationRatio),
                               store::optionalValue(s.memoryUsedBytes),
                               store::optionalValue(s.memoryFreeBytes),
                               static_cast<std::int64_t>(s.memoryTotalBytes),
                               store::optionalValue(s.powerWatts),
                               store::optionalValue(s.powerLimitWatts),
                               store::optionalValue(s.clockMhz),
                               store::optionalValue(s.memoryClockMhz),
                               std::int64_t{s.throttled ? 1 : 0},
                               reasonsText(s.throttleReasons),
                               store::optionalValue(s.eccSingleBitErrors),
                               store::optionalValue(s.eccDoubleBitErrors),
                               store::optionalValue(s.xidErrors),
                               s.health,
                               s.healthReasons.dump(),
                               std::int64_t{s.stale ? 1 : 0},
                               s.readingAgeSeconds,
                               static_cast<std::int64_t>(s.heldBytes),
                               byKind.dump()});
}

DeviceSample readSample(const Row& row) {
  DeviceSample s;
  s.node = row.textAt(0);
  s.deviceId = row.textAt(1);
  s.time = fromMillis(row.int64At(2));
  s.intervalSeconds = row.doubleAt(3);
  s.temperatureCelsius = row.optionalDouble(4);
  s.utilizationRatio = row.optionalDouble(5);
  s.memoryUtilizationRatio = row.optionalDouble(6);
  s.memoryUsedBytes = row.optionalUint64(7);
  s.memoryFreeBytes = row.optionalUint64(8);
  s.memoryTotalBytes = row.optionalUint64(9).value_or(0);
  s.powerWatts = row.optionalDouble(10);
  s.powerLimitWatts = row.optionalDouble(11);
  s.clockMhz = row.optionalDouble(12);
  s.memoryClockMhz = row.optionalDouble(13);
  s.throttled = row.int64At(14) != 0;
  s.throttleReasons = splitReasons(row.textAt(15));
  s.eccSingleBitErrors = row.optionalUint64(16);
  s.eccDoubleBitErrors = row.optionalUint64(17);
  s.xidErrors = row.optionalUint64(18);
  s.health = row.textAt(19);
  s.healthReasons = parseJson(row.textAt(20), nlohmann::json::array());
  s.stale = row.int64At(21) != 0;
  s.readingAgeSeconds = row.doubleAt(22);
  s.heldBytes = row.optionalUint64(23).value_or(0);
  const nlohmann::json byKind = parseJson(row.textAt(24), nlohmann::json::object());
  if (byKind.is_object()) {
    for (const auto& [kind, bytes] : byKind.items()) {
      if (bytes.is_number_unsigned()) s.heldBytesByKind[kind] = bytes.get<std::uint64_t>();
    }
  }
  return s;
}

void appendRollup(Values& values, const Rollup& r) {
  values.insert(values.end(),
                {r.node, r.deviceId, r.bucketStartMs, static_cast<std::int64_t>(r.sampleCount),
                 r.coveredSeconds, r.energyJoules, r.throttledSeconds, r.healthSeconds[0],
                 r.healthSeconds[1], r.healthSeconds[2], r.healthSeconds[3], r.lastSampleMs});
  for (const MetricAggregate& m : r.metrics) {
    const bool any = m.count > 0;
    values.insert(values.end(), {store::optionalValue(m.min), store::optionalValue(m.max),
                                 any ? Value(m.avg) : Value(nullptr),
                                 static_cast<std::int64_t>(m.count), store::optionalValue(m.last)});
  }
}

Rollup readRollup(const Row& row) {
  Rollup r;
  r.node = row.textAt(0);
  r.deviceId = row.textAt(1);
  r.bucketStartMs = row.int64At(2);
  r.sampleCount = row.optionalUint64(3).value_or(0);
  r.coveredSeconds = row.doubleAt(4);
  r.energyJoules = row.doubleAt(5);
  r.throttledSeconds = row.doubleAt(6);
  for (int i = 0; i < 4; ++i) r.healthSeconds[static_cast<std::size_t>(i)] = row.doubleAt(7 + i);
  r.lastSampleMs = row.int64At(11);
  int column = 12;
  for (MetricAggregate& m : r.metrics) {
    m.min = row.optionalDouble(column);
    m.max = row.optionalDouble(column + 1);
    m.avg = row.doubleAt(column + 2);
    m.count = row.optionalUint64(column + 3).value_or(0);
    m.last = row.optionalDouble(column + 4);
    column += 5;
  }
  return r;
}

// The ON CONFLICT update that merges a partial rollup (excluded) into the stored row (r).
std::string rollupMergeClause() {
  std::string set = "sample_count = r.sample_count + excluded.sample_count";
  for (const char* sum :
       {"covered_seconds", "energy_joules", "throttled_seconds", "healthy_seconds",
        "degraded_seconds", "critical_seconds", "lost_seconds"}) {
    set += fmt::format(", {0} = r.{0} + excluded.{0}", sum);
  }
  const std::string newer = "excluded.last_sample_ms >= r.last_sample_ms";
  set += fmt::format(
      ", last_sample_ms = CASE WHEN {} THEN excluded.last_sample_ms "
      "ELSE r.last_sample_ms END",
      newer);
  for (const char* m : kRollupMetricColumns) {
    set += fmt::format(
        ", {0}_min = CASE WHEN r.{0}_min IS NULL OR excluded.{0}_min < r.{0}_min "
        "THEN excluded.{0}_min ELSE r.{0}_min END"
        ", {0}_max = CASE WHEN r.{0}_max IS NULL OR excluded.{0}_max > r.{0}_max "
        "THEN excluded.{0}_max ELSE r.{0}_max END"
        ", {0}_avg = CASE WHEN r.{0}_count + excluded.{0}_count = 0 THEN NULL "
        "ELSE (COALESCE(r.{0}_avg, 0) * r.{0}_count + COALESCE(excluded.{0}_avg, 0) * "
        "excluded.{0}_count) / (r.{0}_count + excluded.{0}_count) END"
        ", {0}_count = r.{0}_count + excluded.{0}_count"
        ", {0}_last = CASE WHEN {1} THEN excluded.{0}_last ELSE r.{0}_last END",
        m, newer);
  }
  return set;
}

const std::string& rollupTableFor(Resolution resolution) {
  static const std::string kMinute = "rollups_1m";
  static const std::string kHour = "rollups_1h";
  return resolution == Resolution::kHour ? kHour : kMinute;
}

Result<std::unique_ptr<TelemetryStore>> openStore(
    Result<std::unique_ptr<store::Connection>> connection, int version, bool tolerateUnavailable) {
  if (!connection.ok()) return connection.error();
  auto opened = std::make_unique<TelemetryStore>(std::move(connection.value()), version);
  if (Status ready = opened->ensureReady(); !ready.ok()) {
    if (!(tolerateUnavailable && ready.error().code == ErrorCode::kUnavailable)) {
      return ready.error();
    }
  }
  return opened;
}

}  // namespace

TelemetryStore::TelemetryStore(std::unique_ptr<store::Connection> connection, int targetVersion)
    : connection_(std::move(connection)), targetVersion_(targetVersion) {}

std::string_view TelemetryStore::kind() const {
  return connection_->dialect() == store::Dialect::kSqlite ? "sqlite" : "postgresql";
}
std::string TelemetryStore::description() const { return connection_->description(); }

Status TelemetryStore::ensureReady() {
  std::lock_guard lock(mutex_);
  if (version_ > 0) return Status::success();
  if (Status migrated = store::migrate(*connection_, schemaMigrations(connection_->dialect()),
                                       store::schemaVersionLog(), targetVersion_);
      !migrated.ok()) {
    return migrated;
  }
  Result<int> version = store::schemaVersion(*connection_, store::schemaVersionLog());
  if (!version.ok()) return version.error();
  version_ = *version;
  return Status::success();
}

Result<int> TelemetryStore::schemaVersion() {
  if (Status ready = ensureReady(); !ready.ok()) return ready.error();
  return store::schemaVersion(*connection_, store::schemaVersionLog());
}

Status TelemetryStore::write(const WriteBatch& batch) {
  if (Status ready = ensureReady(); !ready.ok()) return ready;
  if (batch.empty()) return Status::success();
  return connection_->transaction([&]() -> Status {
    if (batch.node) {
      if (Status s = writeNode(*batch.node); !s.ok()) return s;
    }
    if (Status s = writeDevices(batch.devices); !s.ok()) return s;
    if (Status s = writeSamples(batch.samples); !s.ok()) return s;
    if (version_ >= 2) {
      for (Resolution resolution : {Resolution::kMinute, Resolution::kHour}) {
        const std::int64_t bucket = resolution == Resolution::kHour ? kHourMs : kMinuteMs;
        if (Status s = writeRollups(resolution, aggregate(batch.samples, bucket)); !s.ok()) {
          return s;
        }
      }
    }
    return writeEvents(batch.events);
  });
}

Result<std::vector<DeviceInfo>> TelemetryStore::devices(const std::string& node) {
  if (Status ready = ensureReady(); !ready.ok()) return ready.error();
  std::vector<DeviceInfo> devices;
  Status status = connection_->query(
      "SELECT node, device_id, name, vendor, type, uuid, pci_bus_id, memory_total_bytes,"
      " simulated, last_seen_ms FROM devices WHERE node = $1 ORDER BY device_id",
      {node}, [&](const Row& row) {
        DeviceInfo d;
        d.node = row.textAt(0);
        d.deviceId = row.textAt(1);
        d.name = row.textAt(2);
        d.vendor = row.textAt(3);
        d.type = row.textAt(4);
        d.uuid = row.textAt(5);
        d.pciBusId = row.textAt(6);
        d.memoryTotalBytes = row.optionalUint64(7).value_or(0);
        d.simulated = row.int64At(8) != 0;
        d.seenAt = fromMillis(row.int64At(9));
        devices.push_back(std::move(d));
      });
  if (!status.ok()) return status.error();
  return devices;
}

Result<std::vector<DeviceSample>> TelemetryStore::latestSamples(const std::string& node) {
  Result<std::vector<DeviceInfo>> known = devices(node);
  if (!known.ok()) return known.error();
  std::vector<DeviceSample> latest;
  const std::string sql = "SELECT " + joined(kSampleColumns) +
                          " FROM samples WHERE node = $1 AND device_id = $2"
                          " ORDER BY time_ms DESC LIMIT 1";
  for (const DeviceInfo& device : *known) {
    Status status = connection_->query(sql, {node, device.deviceId},
                                       [&](const Row& row) { latest.push_back(readSample(row)); });
    if (!status.ok()) return status.error();
  }
  return latest;
}

Result<std::vector<DeviceSample>> TelemetryStore::samples(const std::string& node,
                                                          const std::string& deviceId,
                                                          SystemTime from, SystemTime to) {
  if (Status ready = ensureReady(); !ready.ok()) return ready.error();
  std::vector<DeviceSample> samples;
  Status status = connection_->query(
      "SELECT " + joined(kSampleColumns) +
          " FROM samples WHERE node = $1 AND device_id = $2 AND time_ms >= $3 AND time_ms < $4"
          " ORDER BY time_ms",
      {node, deviceId, toMillis(from), toMillis(to)},
      [&](const Row& row) { samples.push_back(readSample(row)); });
  if (!status.ok()) return status.error();
  return samples;
}

Result<std::vector<Rollup>> TelemetryStore::rollups(const std::string& node,
                                                    const std::string& deviceId,
                                                    Resolution resolution, SystemTime from,
                                                    SystemTime to) {
  if (Status ready = ensureReady(); !ready.ok()) return ready.error();
  if (resolution != Resolution::kMinute && resolution != Resolution::kHour) {
    return makeError(ErrorCode::kInvalidArgument, "rollups exist at 1m and 1h only");
  }
  if (version_ < 2) return std::vector<Rollup>{};
  std::vector<Rollup> rollups;
  Status status = connection_->query(
      "SELECT " + joined(rollupColumns()) + " FROM " + rollupTableFor(resolution) +
          " WHERE node = $1 AND device_id = $2 AND bucket_start_ms >= $3"
          " AND bucket_start_ms < $4 ORDER BY bucket_start_ms",
      {node, deviceId, toMillis(from), toMillis(to)},
      [&](const Row& row) { rollups.push_back(readRollup(row)); });
  if (!status.ok()) return status.error();
  return rollups;
}

Result<Statistics> TelemetryStore::statistics(const std::string& node, const std::string& deviceId,
                                              SystemTime from, SystemTime to,
                                              Resolution resolution) {
  if (Status ready = ensureReady(); !ready.ok()) return ready.error();
  if (version_ < 2 && resolution == Resolution::kAuto) resolution = Resolution::kRaw;
  if (resolution != Resolution::kRaw) return windowStatistics(node, deviceId, from, to, resolution);
  return rawStatistics(node, deviceId, from, to);
}

// Raw: only the columns statistics need, so that long windows stay cheap.
Result<Statistics> TelemetryStore::rawStatistics(const std::string& node,
                                                 const std::string& deviceId, SystemTime from,
                                                 SystemTime to) {
  std::vector<DeviceSample> samples;
  Status status = connection_->query(
      "SELECT time_ms, interval_seconds, temperature_celsius, utilization_ratio,"
      " memory_used_bytes, power_watts, throttled, health FROM samples"
      " WHERE node = $1 AND device_id = $2 AND time_ms >= $3 AND time_ms < $4 ORDER BY time_ms",
      {node, deviceId, toMillis(from), toMillis(to)}, [&](const Row& row) {
        DeviceSample& s = samples.emplace_back();
        s.time = fromMillis(row.int64At(0));
        s.intervalSeconds = row.doubleAt(1);
        s.temperatureCelsius = row.optionalDouble(2);
        s.utilizationRatio = row.optionalDouble(3);
        s.memoryUsedBytes = row.optionalUint64(4);
        s.powerWatts = row.optionalDouble(5);
        s.throttled = row.int64At(6) != 0;
        s.health = row.textAt(7);
      });
  if (!status.ok()) return status.error();
  Statistics statistics = statisticsFromSamples(samples, from, to);
  statistics.node = node;
  statistics.deviceId = deviceId;
  return statistics;
}

Result<std::vector<StoredEvent>> TelemetryStore::events(const EventQuery& query) {
  if (Status ready = ensureReady(); !ready.ok()) return ready.error();
  std::string sql =
      "SELECT id, node, time_ms, type, device_id, severity, message, details FROM events"
      " WHERE 1 = 1";
  Values params;
  const auto add = [&](const std::string& condition, Value value) {
    params.push_back(std::move(value));
    sql += " AND " + fmt::format(fmt::runtime(condition), params.size());
  };
  if (query.node) add("node = ${}", *query.node);
  if (query.deviceId) add("device_id = ${}", *query.deviceId);
  if (query.since) add("time_ms >= ${}", toMillis(*query.since));
  if (query.type) {
    params.push_back(*query.type);
    sql += fmt::format(
        " AND (type = CAST(${0} AS TEXT) OR substr(type, 1, length(CAST(${0} AS "
        "TEXT)) + 1) = CAST(${0} AS TEXT) || '.')",
        params.size());
  }
  params.push_back(static_cast<std::int64_t>(query.limit));
  sql += fmt::format(" ORDER BY time_ms DESC, id DESC LIMIT ${}", params.size());
  std::vector<StoredEvent> events;
  Status status = connection_->query(sql, params, [&](const Row& row) {
    StoredEvent e;
    e.id = row.int64At(0);
    e.node = row.textAt(1);
    e.event.time = fromMillis(row.int64At(2));
    e.event.type = row.textAt(3);
    e.event.deviceId = row.textAt(4);
    e.event.severity = row.textAt(5);
    e.event.message = row.textAt(6);
    e.event.details = parseJson(row.textAt(7), nlohmann::json::object());
    events.push_back(std::move(e));
  });
  if (!status.ok()) return status.error();
  return events;
}

Result<std::uint64_t> TelemetryStore::applyRetention(SystemTime now,
                                                     std::chrono::seconds rawRetention,
                                                     std::chrono::seconds rollupRetention) {
  if (Status ready = ensureReady(); !ready.ok()) return ready.error();
  const std::int64_t rawCutoff = toMillis(now - rawRetention);
  const std::int64_t rollupCutoff = toMillis(now - rollupRetention);
  std::uint64_t deleted = 0;
  std::vector<std::pair<std::string, std::int64_t>> deletes = {
      {"DELETE FROM samples WHERE time_ms < $1", rawCutoff},
      {"DELETE FROM events WHERE time_ms < $1", rollupCutoff}};
  if (version_ >= 2) {
    deletes.emplace_back("DELETE FROM rollups_1m WHERE bucket_start_ms < $1", rollupCutoff);
    deletes.emplace_back("DELETE FROM rollups_1h WHERE bucket_start_ms < $1", rollupCutoff);
  }
  for (const auto& [sql, cutoff] : deletes) {
    Result<std::uint64_t> changed = connection_->execute(sql, {cutoff});
    if (!changed.ok()) return changed.error();
    deleted += *changed;
  }
  return deleted;
}

Status TelemetryStore::writeNode(const NodeInfo& node) {
  Result<std::uint64_t> done = connection_->execute(
      "INSERT INTO nodes (node, hostname, version, sample_interval_seconds, first_seen_ms,"
      " last_seen_ms) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (node) DO UPDATE SET"
      " hostname = excluded.hostname, version = excluded.version,"
      " sample_interval_seconds = excluded.sample_interval_seconds,"
      " last_seen_ms = excluded.last_seen_ms",
      {node.node, node.hostname, node.version, node.sampleIntervalSeconds, toMillis(node.seenAt)});
  return done.ok() ? Status::success() : Status(done.error());
}

Status TelemetryStore::writeDevices(const std::vector<DeviceInfo>& devices) {
  static const std::vector<std::string> kColumns = {
      "node",       "device_id",          "name",      "vendor",        "type",        "uuid",
      "pci_bus_id", "memory_total_bytes", "simulated", "first_seen_ms", "last_seen_ms"};
  return writeChunks(
      devices, kColumns,
      " ON CONFLICT (node, device_id) DO UPDATE SET name = excluded.name,"
      " vendor = excluded.vendor, type = excluded.type, uuid = excluded.uuid,"
      " pci_bus_id = excluded.pci_bus_id,"
      " memory_total_bytes = excluded.memory_total_bytes,"
      " simulated = excluded.simulated, last_seen_ms = excluded.last_seen_ms",
      "devices", [](Values& values, const DeviceInfo& d) {
        values.insert(values.end(),
                      {d.node, d.deviceId, d.name, d.vendor, d.type, d.uuid, d.pciBusId,
                       static_cast<std::int64_t>(d.memoryTotalBytes),
                       std::int64_t{d.simulated ? 1 : 0}, toMillis(d.seenAt), toMillis(d.seenAt)});
      });
}

Status TelemetryStore::writeSamples(const std::vector<DeviceSample>& samples) {
  return writeChunks(samples, kSampleColumns, " ON CONFLICT (node, device_id, time_ms) DO NOTHING",
                     "samples", appendSample);
}

Status TelemetryStore::writeRollups(Resolution resolution, const std::vector<Rollup>& rollups) {
  static const std::vector<std::string> kColumns = rollupColumns();
  static const std::string kMerge = rollupMergeClause();
  return writeChunks(rollups, kColumns,
                     " ON CONFLICT (node, device_id, bucket_start_ms) DO UPDATE SET " + kMerge,
                     rollupTableFor(resolution) + " AS r", appendRollup);
}

Status TelemetryStore::writeEvents(const std::vector<StoredEvent>& events) {
  static const std::vector<std::string> kColumns = {"node",     "time_ms", "type",   "device_id",
                                                    "severity", "message", "details"};
  return writeChunks(events, kColumns, "", "events", [](Values& values, const StoredEvent& e) {
    values.insert(values.end(),
                  {e.node, toMillis(e.event.time), e.event.type, e.event.deviceId, e.event.severity,
                   e.event.message,
                   e.event.details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)});
  });
}

template <class Item, class Append>
Status TelemetryStore::writeChunks(const std::vector<Item>& rows,
                                   const std::vector<std::string>& columns,
                                   const std::string& suffix, const std::string& table,
                                   Append append) {
  for (std::size_t start = 0; start < rows.size(); start += kRowsPerStatement) {
    const std::size_t count = std::min(kRowsPerStatement, rows.size() - start);
    Values values;
    values.reserve(count * columns.size());
    for (std::size_t i = start; i < start + count; ++i) append(values, rows[i]);
    const std::string sql = "INSERT INTO " + table + " (" + joined(columns) + ") VALUES " +
                            placeholders(count, columns.size()) + suffix;
    Result<std::uint64_t> done = connection_->execute(sql, values);
    if (!done.ok()) return done.error();
  }
  return Status::success();
}

// A window at a rollup resolution, or kAuto resolved by the window's length.
Result<Statistics> TelemetryStore::windowStatistics(const std::string& node,
                                                    const std::string& deviceId, SystemTime from,
                                                    SystemTime to, Resolution resolution) {
  if (to <= from) {
    return makeError(ErrorCode::kInvalidArgument, "the window is empty: 'to' must be after 'from'");
  }
  if (resolution == Resolution::kAuto) {
    resolution = chooseResolution(std::chrono::duration_cast<std::chrono::milliseconds>(to - from));
  }
  if (resolution == Resolution::kRaw) {
    Result<std::vector<DeviceSample>> raw = samples(node, deviceId, from, to);
    if (!raw.ok()) return raw.error();
    Statistics statistics = statisticsFromSamples(*raw, from, to);
    statistics.node = node;
    statistics.deviceId = deviceId;
    return statistics;
  }
  const std::int64_t bucket = resolution == Resolution::kHour ? kHourMs : kMinuteMs;
  const std::int64_t fromMs = toMillis(from);
  const SystemTime aligned = fromMillis(fromMs - ((fromMs % bucket) + bucket) % bucket);
  Result<std::vector<Rollup>> rows = rollups(node, deviceId, resolution, aligned, to);
  if (!rows.ok()) return rows.error();
  Statistics statistics = statisticsFromRollups(*rows, aligned, to, resolution);
  statistics.node = node;
  statistics.deviceId = deviceId;
  return statistics;
}

Result<std::unique_ptr<TelemetryStore>> openSqliteTelemetryStore(
    const std::filesystem::path& path) {
  return openStore(store::openSqliteConnection(path.string()), kSchemaVersion, false);
}

Result<std::unique_ptr<TelemetryStore>> openPostgresTelemetryStore(const std::string& connection) {
  return openStore(store::openPostgresConnection(connection), kSchemaVersion, true);
}

Result<std::unique_ptr<TelemetryStore>> openSqliteTelemetryStoreAtVersion(
    const std::filesystem::path& path, int version) {
  return openStore(store::openSqliteConnection(path.string()), version, false);
}

Result<std::unique_ptr<TelemetryStore>> openPostgresTelemetryStoreAtVersion(
    const std::string& connection, int version) {
  return openStore(store::openPostgresConnection(connection), version, false);
}

}  // namespace deviceops::telemetry
