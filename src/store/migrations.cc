#include "store/migrations.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "common/time_format.h"

namespace deviceops::store {
namespace {

// An arbitrary constant: the PostgreSQL advisory lock that serialises migrations across nodes.
// Unchanged from the telemetry runner it replaces, so old and new daemons exclude each other.
constexpr std::int64_t kMigrationLock = 0x7e1e3e77;

std::string createLogTable(const MigrationLog& log) {
  const char* appliedAt = log.appliedAt == MigrationLog::AppliedAt::kMillis
                              ? "applied_at_ms BIGINT NOT NULL"
                              : "applied_at TEXT NOT NULL";
  return fmt::format(
      "CREATE TABLE IF NOT EXISTS {}(version INTEGER PRIMARY KEY, name TEXT NOT NULL, {})",
      log.table, appliedAt);
}

Value appliedNow(const MigrationLog& log) {
  const auto now = std::chrono::system_clock::now();
  if (log.appliedAt == MigrationLog::AppliedAt::kMillis) {
    return std::int64_t{
        std::chrono::floor<std::chrono::milliseconds>(now.time_since_epoch()).count()};
  }
  return formatIso8601(now);
}

Status checkVersions(const std::vector<const Migration*>& ordered) {
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    if (ordered[i]->version <= 0 || (i > 0 && ordered[i]->version == ordered[i - 1]->version)) {
      return makeError(ErrorCode::kInternal,
                       "migration versions must be positive and unique; got " +
                           std::to_string(ordered[i]->version));
    }
  }
  return Status::success();
}

// Inside a transaction: on PostgreSQL takes the advisory lock (released at COMMIT/ROLLBACK),
// then makes sure the log table exists.
Status lockAndCreateLog(Connection& connection, const MigrationLog& log) {
  if (connection.dialect() == Dialect::kPostgresql) {
    Status locked = connection.query(
        fmt::format("SELECT pg_advisory_xact_lock({})", kMigrationLock), {}, [](const Row&) {});
    if (!locked.ok()) return locked;
  }
  return connection.executeScript(createLogTable(log));
}

Result<int> maxVersion(Connection& connection, const MigrationLog& log) {
  int version = 0;
  Status status =
      connection.query("SELECT COALESCE(MAX(version), 0) FROM " + log.table, {},
                       [&](const Row& row) { version = static_cast<int>(row.int64At(0)); });
  if (!status.ok()) return status.error();
  return version;
}

Status refuseNewer(Connection& connection, const MigrationLog& log, int known) {
  Result<int> current = maxVersion(connection, log);
  if (!current.ok()) return current.error();
  if (*current <= known) return Status::success();
  return makeError(ErrorCode::kConflict,
                   fmt::format("{} schema version {} is newer than this deviceopsd supports ({}); "
                               "upgrade deviceopsd or point it at another database",
                               log.subject, *current, known),
                   {{"database", connection.description()},
                    {"schema_version", *current},
                    {"supported_version", known}});
}

Result<bool> isApplied(Connection& connection, const MigrationLog& log, int version) {
  bool found = false;
  Status status = connection.query("SELECT 1 FROM " + log.table + " WHERE version = $1",
                                   {std::int64_t{version}}, [&](const Row&) { found = true; });
  if (!status.ok()) return status.error();
  return found;
}

Status applyMigration(Connection& connection, const MigrationLog& log, const Migration& migration,
                      int known) {
  return connection.transaction([&]() -> Status {
    if (Status ready = lockAndCreateLog(connection, log); !ready.ok()) return ready;
    if (Status newer = refuseNewer(connection, log, known); !newer.ok()) return newer;
    Result<bool> applied = isApplied(connection, log, migration.version);
    if (!applied.ok()) return applied.error();
    if (*applied) return Status::success();
    if (Status changed = connection.executeScript(migration.sql); !changed.ok()) {
      Error error = changed.error();
      error.message = fmt::format("{} migration {} ({}) failed: {}", log.subject, migration.version,
                                  migration.name, error.message);
      error.details["migration"] = migration.version;
      return error;
    }
    const std::string appliedAtColumn =
        log.appliedAt == MigrationLog::AppliedAt::kMillis ? "applied_at_ms" : "applied_at";
    Result<std::uint64_t> recorded =
        connection.execute(fmt::format("INSERT INTO {}(version, name, {}) VALUES ($1, $2, $3)",
                                       log.table, appliedAtColumn),
                           {std::int64_t{migration.version}, migration.name, appliedNow(log)});
    if (!recorded.ok()) return recorded.error();
    return Status::success();
  });
}

}  // namespace

const MigrationLog& schemaMigrationsLog() {
  static const MigrationLog kLog{"schema_migrations", MigrationLog::AppliedAt::kIso8601Text,
                                 "database"};
  return kLog;
}

const MigrationLog& schemaVersionLog() {
  static const MigrationLog kLog{"schema_version", MigrationLog::AppliedAt::kMillis, "telemetry"};
  return kLog;
}

Status migrate(Connection& connection, const std::vector<Migration>& migrations,
               const MigrationLog& log, std::optional<int> upTo) {
  std::vector<const Migration*> ordered;
  for (const Migration& migration : migrations) ordered.push_back(&migration);
  std::sort(ordered.begin(), ordered.end(),
            [](const Migration* a, const Migration* b) { return a->version < b->version; });
  if (Status valid = checkVersions(ordered); !valid.ok()) return valid;
  const int known = ordered.empty() ? 0 : ordered.back()->version;

  // Refused before anything is applied, even when nothing is left to apply.
  Status checked = connection.transaction([&]() -> Status {
    if (Status ready = lockAndCreateLog(connection, log); !ready.ok()) return ready;
    return refuseNewer(connection, log, known);
  });
  if (!checked.ok()) return checked;
  for (const Migration* migration : ordered) {
    if (upTo && migration->version > *upTo) break;
    if (Status applied = applyMigration(connection, log, *migration, known); !applied.ok()) {
      return applied;
    }
  }
  return Status::success();
}

Result<int> schemaVersion(Connection& connection, const MigrationLog& log) {
  const std::string exists =
      connection.dialect() == Dialect::kSqlite
          ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
          : "SELECT COUNT(*) FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name = $1";
  std::int64_t tables = 0;
  Status status =
      connection.query(exists, {log.table}, [&](const Row& row) { tables = row.int64At(0); });
  if (!status.ok()) return status.error();
  if (tables == 0) return 0;  // never migrated
  return maxVersion(connection, log);
}

}  // namespace deviceops::store
