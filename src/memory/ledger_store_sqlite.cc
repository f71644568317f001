// LedgerStore on the embedded SQLite database (<dataDir>/deviceops.db) through the shared
// store::Connection. Schema: docs/STORE.md.
//
// Every method is one autocommit statement, so it is atomic and, in WAL mode, on disk (in the
// WAL) when it returns: a crash of the process right after loses nothing. Thread-safety: the
// Connection serialises all calls.
#include <chrono>
#include <limits>
#include <system_error>
#include <utility>

#include "memory/ledger_store.h"
#include "store/connection.h"
#include "store/migrations.h"

namespace deviceops::memory {
namespace {

using store::Connection;
using store::Migration;
using store::Row;
using store::Value;

const std::vector<Migration>& ledgerMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "memory allocations",
       "CREATE TABLE allocations("
       "  id TEXT PRIMARY KEY,"
       "  device_id TEXT NOT NULL,"
       "  bytes INTEGER NOT NULL,"
       "  kind TEXT NOT NULL,"
       "  label TEXT NOT NULL,"
       "  owner TEXT NOT NULL,"
       "  created_at_ms INTEGER NOT NULL,"
       "  expires_at_ms INTEGER,"
       "  pinned INTEGER NOT NULL,"
       "  simulated INTEGER NOT NULL,"
       "  state TEXT NOT NULL,"
       "  released_at_ms INTEGER,"
       "  release_reason TEXT NOT NULL DEFAULT '');"
       "CREATE INDEX allocations_state ON allocations(state);"
       "CREATE INDEX allocations_device_state ON allocations(device_id, state);"
       "CREATE INDEX allocations_created ON allocations(created_at_ms);"},
  };
  return kMigrations;
}

constexpr const char* kColumns =
    "id, device_id, bytes, kind, label, owner, created_at_ms, expires_at_ms, pinned, simulated, "
    "state, released_at_ms, release_reason";

// Milliseconds since the Unix epoch; sub-millisecond precision is dropped (rounded down).
std::int64_t toMillis(SystemTime time) {
  return std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

SystemTime fromMillis(std::int64_t millis) {
  return SystemTime(
      std::chrono::duration_cast<SystemTime::duration>(std::chrono::milliseconds(millis)));
}

std::optional<std::int64_t> toMillis(const std::optional<SystemTime>& time) {
  if (!time) return std::nullopt;
  return toMillis(*time);
}

// Reads a row of kColumns, in that order.
Result<AllocationRecord> readRecord(const Row& row) {
  AllocationRecord record;
  record.id = row.textAt(0);
  record.deviceId = row.textAt(1);
  const std::int64_t bytes = row.int64At(2);
  const std::string kind = row.textAt(3);
  record.label = row.textAt(4);
  record.owner = row.textAt(5);
  record.createdAt = fromMillis(row.int64At(6));
  if (auto expires = row.optionalInt64(7)) record.expiresAt = fromMillis(*expires);
  record.pinned = row.int64At(8) != 0;
  record.simulated = row.int64At(9) != 0;
  const std::string state = row.textAt(10);
  if (auto released = row.optionalInt64(11)) record.releasedAt = fromMillis(*released);
  record.releaseReason = row.textAt(12);

  std::optional<AllocationKind> parsedKind = parseAllocationKind(kind);
  std::optional<AllocationState> parsedState = parseAllocationState(state);
  if (!parsedKind || !parsedState || bytes < 0) {
    return makeError(ErrorCode::kInternal,
                     "allocation " + record.id + " in the store has an invalid kind, state or size",
                     {{"id", record.id}, {"kind", kind}, {"state", state}, {"bytes", bytes}});
  }
  record.bytes = static_cast<std::uint64_t>(bytes);
  record.kind = *parsedKind;
  record.state = *parsedState;
  return record;
}

Value flag(bool value) { return std::int64_t{value ? 1 : 0}; }

class SqliteLedgerStore final : public LedgerStore {
 public:
  explicit SqliteLedgerStore(std::unique_ptr<Connection> connection)
      : connection_(std::move(connection)) {}

  Status insert(const AllocationRecord& record) override {
    if (record.bytes > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return makeError(
          ErrorCode::kInvalidArgument,
          "integer " + std::to_string(record.bytes) + " does not fit in a signed 64-bit column",
          {{"parameter", 3}});
    }
    Result<std::uint64_t> inserted = connection_->execute(
        std::string("INSERT INTO allocations(") + kColumns +
            ") VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        {record.id, record.deviceId, static_cast<std::int64_t>(record.bytes),
         std::string(allocationKindName(record.kind)), record.label, record.owner,
         toMillis(record.createdAt), store::optionalValue(toMillis(record.expiresAt)),
         flag(record.pinned), flag(record.simulated),
         std::string(allocationStateName(record.state)),
         store::optionalValue(toMillis(record.releasedAt)), record.releaseReason});
    if (!inserted.ok() && inserted.error().code == ErrorCode::kConflict) {
      Error error = inserted.error();
      error.message = "allocation " + record.id + " is already recorded";
      return error;
    }
    if (!inserted.ok()) return inserted.error();
    return Status::success();
  }

  Status markReleased(const std::string& id, SystemTime at, const std::string& reason) override {
    Result<std::uint64_t> updated = connection_->execute(
        "UPDATE allocations SET state = 'released', released_at_ms = $1, release_reason = $2"
        " WHERE id = $3 AND state = 'held'",
        {toMillis(at), reason, id});
    if (!updated.ok()) return updated.error();
    if (*updated == 0) {
      return makeError(ErrorCode::kNotFound, "no held allocation with id " + id, {{"id", id}});
    }
    return Status::success();
  }

  Result<std::vector<AllocationRecord>> list(const AllocationFilter& filter) override {
    std::string sql = std::string("SELECT ") + kColumns + " FROM allocations WHERE 1";
    std::vector<Value> params;
    const auto where = [&](const char* column, std::string value) {
      params.emplace_back(std::move(value));
      sql += std::string(" AND ") + column + " = $" + std::to_string(params.size());
    };
    if (filter.deviceId) where("device_id", *filter.deviceId);
    if (filter.label) where("label", *filter.label);
    if (filter.kind) where("kind", std::string(allocationKindName(*filter.kind)));
    if (filter.state) where("state", std::string(allocationStateName(*filter.state)));
    const auto limit = std::min<std::size_t>(
        filter.limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()));
    params.emplace_back(static_cast<std::int64_t>(limit));
    // rowid breaks ties between equal timestamps: the later insert is the newer one.
    sql += " ORDER BY created_at_ms DESC, rowid DESC LIMIT $" + std::to_string(params.size());
    return readAll(sql, params);
  }

  Result<std::optional<AllocationRecord>> find(const std::string& id) override {
    Result<std::vector<AllocationRecord>> rows =
        readAll(std::string("SELECT ") + kColumns + " FROM allocations WHERE id = $1", {id});
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<AllocationRecord>();
    return std::optional<AllocationRecord>(std::move(rows->front()));
  }

  Result<std::size_t> releaseAllHeld(SystemTime at, const std::string& reason) override {
    Result<std::uint64_t> updated = connection_->execute(
        "UPDATE allocations SET state = 'released', released_at_ms = $1, release_reason = $2"
        " WHERE state = 'held'",
        {toMillis(at), reason});
    if (!updated.ok()) return updated.error();
    return static_cast<std::size_t>(*updated);
  }

 private:
  Result<std::vector<AllocationRecord>> readAll(const std::string& sql,
                                                const std::vector<Value>& params) {
    std::vector<AllocationRecord> records;
    std::optional<Error> invalid;
    Status status = connection_->query(sql, params, [&](const Row& row) {
      if (invalid) return;
      Result<AllocationRecord> record = readRecord(row);
      if (!record.ok()) {
        invalid = record.error();
        return;
      }
      records.push_back(std::move(*record));
    });
    if (!status.ok()) return status.error();
    if (invalid) return *invalid;
    return records;
  }

  const std::unique_ptr<Connection> connection_;  // thread-safe; serialises calls
};

}  // namespace

Result<std::unique_ptr<LedgerStore>> openSqliteLedgerStore(const std::filesystem::path& dataDir) {
  std::error_code error;
  std::filesystem::create_directories(dataDir, error);
  if (error) {
    return makeError(ErrorCode::kUnavailable,
                     "cannot create data directory " + dataDir.string() + ": " + error.message(),
                     {{"path", dataDir.string()}});
  }
  Result<std::unique_ptr<Connection>> connection =
      store::openSqliteConnection((dataDir / "deviceops.db").string());
  if (!connection.ok()) return connection.error();
  if (Status migrated =
          store::migrate(**connection, ledgerMigrations(), store::schemaMigrationsLog());
      !migrated.ok()) {
    return migrated.error();
  }
  return std::unique_ptr<LedgerStore>(std::make_unique<SqliteLedgerStore>(std::move(*connection)));
}

}  // namespace deviceops::memory
