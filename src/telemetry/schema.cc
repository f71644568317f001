#include "telemetry/schema.h"

#include <fmt/format.h>

#include "telemetry/rollup.h"

namespace deviceops::telemetry {
namespace {

std::string samplesTable(store::Dialect dialect) {
  return std::string(
             "CREATE TABLE samples("
             "  node TEXT NOT NULL,"
             "  device_id TEXT NOT NULL,"
             "  time_ms BIGINT NOT NULL,"
             "  interval_seconds DOUBLE PRECISION NOT NULL,"
             "  temperature_celsius DOUBLE PRECISION,"
             "  utilization_ratio DOUBLE PRECISION,"
             "  memory_utilization_ratio DOUBLE PRECISION,"
             "  memory_used_bytes BIGINT,"
             "  memory_free_bytes BIGINT,"
             "  memory_total_bytes BIGINT NOT NULL,"
             "  power_watts DOUBLE PRECISION,"
             "  power_limit_watts DOUBLE PRECISION,"
             "  clock_mhz DOUBLE PRECISION,"
             "  memory_clock_mhz DOUBLE PRECISION,"
             "  throttled INTEGER NOT NULL,"
             "  throttle_reasons TEXT NOT NULL DEFAULT '',"
             "  ecc_single_bit_errors BIGINT,"
             "  ecc_double_bit_errors BIGINT,"
             "  xid_errors BIGINT,"
             "  health TEXT NOT NULL,"
             "  health_reasons TEXT NOT NULL DEFAULT '[]',"
             "  stale INTEGER NOT NULL DEFAULT 0,"
             "  reading_age_seconds DOUBLE PRECISION NOT NULL DEFAULT 0,"
             "  held_bytes BIGINT NOT NULL DEFAULT 0,"
             "  held_bytes_by_kind TEXT NOT NULL DEFAULT '{}',"
             "  PRIMARY KEY (node, device_id, time_ms))") +
         (dialect == store::Dialect::kSqlite ? " WITHOUT ROWID;" : ";");
}

std::string rollupTable(const std::string& name) {
  std::string sql = "CREATE TABLE " + name +
                    "("
                    "  node TEXT NOT NULL,"
                    "  device_id TEXT NOT NULL,"
                    "  bucket_start_ms BIGINT NOT NULL,"
                    "  sample_count BIGINT NOT NULL,"
                    "  covered_seconds DOUBLE PRECISION NOT NULL,"
                    "  energy_joules DOUBLE PRECISION NOT NULL,"
                    "  throttled_seconds DOUBLE PRECISION NOT NULL,"
                    "  healthy_seconds DOUBLE PRECISION NOT NULL,"
                    "  degraded_seconds DOUBLE PRECISION NOT NULL,"
                    "  critical_seconds DOUBLE PRECISION NOT NULL,"
                    "  lost_seconds DOUBLE PRECISION NOT NULL,"
                    "  last_sample_ms BIGINT NOT NULL,";
  for (const char* metric : kRollupMetricColumns) {
    sql += fmt::format(
        "  {0}_min DOUBLE PRECISION, {0}_max DOUBLE PRECISION, {0}_avg DOUBLE PRECISION,"
        "  {0}_count BIGINT NOT NULL DEFAULT 0, {0}_last DOUBLE PRECISION,",
        metric);
  }
  sql += "  PRIMARY KEY (node, device_id, bucket_start_ms));";
  sql += fmt::format("CREATE INDEX {0}_bucket ON {0}(bucket_start_ms);", name);
  return sql;
}

// Rebuilds rollups of `bucketMs` from every existing sample (the v1 -> v2 backfill).
std::string rollupBackfill(const std::string& table, std::int64_t bucketMs) {
  std::string aggregates = fmt::format(
      "node, device_id, time_ms - (time_ms % {0}) AS bucket, count(*) AS n,"
      " sum(interval_seconds) AS covered,"
      " sum(COALESCE(power_watts * interval_seconds, 0)) AS energy,"
      " sum(CASE WHEN throttled <> 0 THEN interval_seconds ELSE 0 END) AS throttled_s,",
      bucketMs);
  for (const char* state : kHealthStates) {
    aggregates += fmt::format(
        " sum(CASE WHEN health = '{0}' THEN interval_seconds ELSE 0 END)"
        " AS {0}_s,",
        state);
  }
  std::string outer =
      "a.node, a.device_id, a.bucket, a.n, a.covered, a.energy, a.throttled_s,"
      " a.healthy_s, a.degraded_s, a.critical_s, a.lost_s, a.last_ms";
  for (const char* metric : kRollupMetricColumns) {
    aggregates += fmt::format(
        " min({0}) AS {0}_min, max({0}) AS {0}_max, avg({0}) AS {0}_avg,"
        " count({0}) AS {0}_count,",
        metric);
    outer += fmt::format(", a.{0}_min, a.{0}_max, a.{0}_avg, a.{0}_count, s.{0}", metric);
  }
  aggregates += " max(time_ms) AS last_ms";
  std::string columns;
  for (const std::string& column : rollupColumns()) {
    columns += (columns.empty() ? "" : ", ") + column;
  }
  return fmt::format(
      "INSERT INTO {0} ({1}) SELECT {2} FROM (SELECT {3} FROM samples GROUP BY 1, 2, 3) a"
      " JOIN samples s ON s.node = a.node AND s.device_id = a.device_id AND s.time_ms = a.last_ms;",
      table, columns, outer, aggregates);
}

}  // namespace

const std::vector<std::string> kSampleColumns = {"node",
                                                 "device_id",
                                                 "time_ms",
                                                 "interval_seconds",
                                                 "temperature_celsius",
                                                 "utilization_ratio",
                                                 "memory_utilization_ratio",
                                                 "memory_used_bytes",
                                                 "memory_free_bytes",
                                                 "memory_total_bytes",
                                                 "power_watts",
                                                 "power_limit_watts",
                                                 "clock_mhz",
                                                 "memory_clock_mhz",
                                                 "throttled",
                                                 "throttle_reasons",
                                                 "ecc_single_bit_errors",
                                                 "ecc_double_bit_errors",
                                                 "xid_errors",
                                                 "health",
                                                 "health_reasons",
                                                 "stale",
                                                 "reading_age_seconds",
                                                 "held_bytes",
                                                 "held_bytes_by_kind"};

std::vector<std::string> rollupColumns() {
  std::vector<std::string> columns = {"node",
                                      "device_id",
                                      "bucket_start_ms",
                                      "sample_count",
                                      "covered_seconds",
                                      "energy_joules",
                                      "throttled_seconds",
                                      "healthy_seconds",
                                      "degraded_seconds",
                                      "critical_seconds",
                                      "lost_seconds",
                                      "last_sample_ms"};
  for (const char* metric : kRollupMetricColumns) {
    for (const char* suffix : {"_min", "_max", "_avg", "_count", "_last"}) {
      columns.push_back(std::string(metric) + suffix);
    }
  }
  return columns;
}

std::vector<store::Migration> schemaMigrations(store::Dialect dialect) {
  const std::string eventId = dialect == store::Dialect::kSqlite
                                  ? "INTEGER PRIMARY KEY AUTOINCREMENT"
                                  : "BIGSERIAL PRIMARY KEY";
  return {
      {1, "nodes, devices, samples, events",
       "CREATE TABLE nodes("
       "  node TEXT PRIMARY KEY,"
       "  hostname TEXT NOT NULL,"
       "  version TEXT NOT NULL,"
       "  sample_interval_seconds DOUBLE PRECISION NOT NULL,"
       "  first_seen_ms BIGINT NOT NULL,"
       "  last_seen_ms BIGINT NOT NULL);"
       "CREATE TABLE devices("
       "  node TEXT NOT NULL,"
       "  device_id TEXT NOT NULL,"
       "  name TEXT NOT NULL,"
       "  vendor TEXT NOT NULL,"
       "  type TEXT NOT NULL,"
       "  uuid TEXT NOT NULL DEFAULT '',"
       "  pci_bus_id TEXT NOT NULL DEFAULT '',"
       "  memory_total_bytes BIGINT NOT NULL,"
       "  simulated INTEGER NOT NULL DEFAULT 0,"
       "  first_seen_ms BIGINT NOT NULL,"
       "  last_seen_ms BIGINT NOT NULL,"
       "  PRIMARY KEY (node, device_id));" +
           samplesTable(dialect) +
           "CREATE INDEX samples_time ON samples(time_ms);"
           "CREATE TABLE events("
           "  id " +
           eventId +
           ","
           "  node TEXT NOT NULL,"
           "  time_ms BIGINT NOT NULL,"
           "  type TEXT NOT NULL,"
           "  device_id TEXT NOT NULL DEFAULT '',"
           "  severity TEXT NOT NULL,"
           "  message TEXT NOT NULL,"
           "  details TEXT NOT NULL DEFAULT '{}');"
           "CREATE INDEX events_time ON events(time_ms);"
           "CREATE INDEX events_device_time ON events(device_id, time_ms);"},
      {2, "1-minute and 1-hour rollups, backfilled from samples",
       rollupTable("rollups_1m") + rollupTable("rollups_1h") +
           rollupBackfill("rollups_1m", kMinuteMs) + rollupBackfill("rollups_1h", kHourMs)},
  };
}

}  // namespace deviceops::telemetry
