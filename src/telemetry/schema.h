// Internal to telemetry: the versioned schema (docs/DEVICE_MONITOR_SCHEMA.md) and its migration
// runner. Both dialects share table and column names; only types of generated ids differ.
#pragma once

#include <string>
#include <vector>

#include "telemetry/sql_connection.h"

namespace deviceops::telemetry {

// Columns of `samples`, in the order the store writes and reads them.
extern const std::vector<std::string> kSampleColumns;
// Columns of rollups_1m / rollups_1h, in order (key, sums, then 5 per rollup metric).
std::vector<std::string> rollupColumns();

struct SchemaMigration {
  int version = 0;
  std::string name;
  std::string sql;  // statements separated by ';'
};

std::vector<SchemaMigration> schemaMigrations(SqlDialect dialect);

// Highest applied version (0 for an empty database).
Result<int> readSchemaVersion(SqlConnection& connection);

// Applies every migration up to `target` not yet applied, each in its own transaction together
// with its schema_version row. PostgreSQL: an advisory lock makes concurrent nodes apply each
// migration once. kConflict when the database is newer than this build (kSchemaVersion).
Status migrateSchema(SqlConnection& connection, int target);

}  // namespace deviceops::telemetry
