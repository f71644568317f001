// Internal to telemetry: the versioned schema (docs/DEVICE_MONITOR_SCHEMA.md), applied by
// store::migrate. Both dialects share table and column names; only types of generated ids differ.
#pragma once

#include <string>
#include <vector>

#include "store/connection.h"
#include "store/migrations.h"

namespace deviceops::telemetry {

// Columns of `samples`, in the order the store writes and reads them.
extern const std::vector<std::string> kSampleColumns;
// Columns of rollups_1m / rollups_1h, in order (key, sums, then 5 per rollup metric).
std::vector<std::string> rollupColumns();

// The telemetry schema, recorded in schema_version (store::schemaVersionLog()).
std::vector<store::Migration> schemaMigrations(store::Dialect dialect);

}  // namespace deviceops::telemetry
