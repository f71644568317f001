// The one migration runner: every component's schema is a numbered list of Migrations, applied
// by migrate() over a store::Connection, the same on SQLite and PostgreSQL.
//
// Contract: migrations are applied in ascending version order, each in its own transaction
// together with the row that records it, so a failing migration leaves nothing behind and the
// version where it was. Which versions are applied is read inside that (write) transaction, and
// on PostgreSQL under an advisory lock, so two processes migrating one database at once apply
// each migration once. A database whose highest recorded version is above the highest in the
// list was written by a newer deviceopsd and is refused with kConflict. A released migration is
// never edited: changes go in a new one with the next number.
//
// Thread-safety: as the Connection's; run it before the store is shared.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/connection.h"

namespace deviceops::store {

// One schema change. Versions are positive and unique within a list.
struct Migration {
  int version = 0;
  std::string name;  // short description, recorded with the version
  std::string sql;   // one or more statements separated by ';'
};

// The table that records applied versions. Two layouts exist on disk and both are kept so that
// existing databases open unchanged:
//   schema_migrations(version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT ISO 8601 UTC)
//     deviceops.db, models.db, jobs.db, datasets.db
//   schema_version(version INTEGER PRIMARY KEY, name TEXT, applied_at_ms BIGINT ms since epoch)
//     telemetry (telemetry.db or PostgreSQL; docs/DEVICE_MONITOR_SCHEMA.md)
struct MigrationLog {
  enum class AppliedAt { kIso8601Text, kMillis };
  std::string table;
  AppliedAt appliedAt = AppliedAt::kIso8601Text;
  std::string subject;  // names the schema in error messages: "database", "telemetry"
};
const MigrationLog& schemaMigrationsLog();
const MigrationLog& schemaVersionLog();

// Applies every migration of `migrations` with version <= `upTo` (all when nullopt) that is not
// yet recorded in `log`. kInternal for versions that are not positive and unique (nothing is
// applied), kConflict for a newer database, else the failing statement's error with the
// migration's version and name in the message.
Status migrate(Connection& connection, const std::vector<Migration>& migrations,
               const MigrationLog& log, std::optional<int> upTo = std::nullopt);

// Highest applied version recorded in `log`; 0 for a database never migrated.
Result<int> schemaVersion(Connection& connection, const MigrationLog& log);

}  // namespace deviceops::store
