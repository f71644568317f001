// LedgerStore on the embedded SQLite database (<dataDir>/deviceops.db). Schema: docs/STORE.md.
//
// Every method is one autocommit statement, so it is atomic and, in WAL mode, on disk (in the
// WAL) when it returns: a crash of the process right after loses nothing. Thread-safety:
// SqliteDatabase serialises all calls.
#include <chrono>
#include <limits>
#include <system_error>
#include <utility>

#include "memory/ledger_store.h"
#include "store/sqlite.h"

namespace deviceops::memory {
namespace {

using store::Migration;
using store::SqliteDatabase;
using store::Statement;

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

// Reads the row `statement` is on, columns in kColumns order.
Result<AllocationRecord> readRecord(const Statement& statement) {
  AllocationRecord record;
  record.id = statement.columnText(0);
  record.deviceId = statement.columnText(1);
  const std::int64_t bytes = statement.columnInt64(2);
  const std::string kind = statement.columnText(3);
  record.label = statement.columnText(4);
  record.owner = statement.columnText(5);
  record.createdAt = fromMillis(statement.columnInt64(6));
  if (auto expires = statement.columnOptionalInt64(7)) record.expiresAt = fromMillis(*expires);
  record.pinned = statement.columnInt64(8) != 0;
  record.simulated = statement.columnInt64(9) != 0;
  const std::string state = statement.columnText(10);
  if (auto released = statement.columnOptionalInt64(11)) record.releasedAt = fromMillis(*released);
  record.releaseReason = statement.columnText(12);

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

class SqliteLedgerStore final : public LedgerStore {
 public:
  explicit SqliteLedgerStore(std::unique_ptr<SqliteDatabase> database)
      : database_(std::move(database)) {}

  Status insert(const AllocationRecord& record) override {
    Result<Statement> statement = database_->prepare(
        std::string("INSERT INTO allocations(") + kColumns + ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!statement.ok()) return statement.error();
    Status bound = statement->bindAll(
        record.id, record.deviceId, record.bytes, allocationKindName(record.kind), record.label,
        record.owner, toMillis(record.createdAt), toMillis(record.expiresAt), record.pinned,
        record.simulated, allocationStateName(record.state), toMillis(record.releasedAt),
        record.releaseReason);
    if (!bound.ok()) return bound;
    Status inserted = statement->run();
    if (!inserted.ok() && inserted.error().code == ErrorCode::kConflict) {
      Error error = inserted.error();
      error.message = "allocation " + record.id + " is already recorded";
      return error;
    }
    return inserted;
  }

  Status markReleased(const std::string& id, SystemTime at, const std::string& reason) override {
    Result<Statement> statement = database_->prepare(
        "UPDATE allocations SET state = 'released', released_at_ms = ?, release_reason = ?"
        " WHERE id = ? AND state = 'held'");
    if (!statement.ok()) return statement.error();
    if (Status bound = statement->bindAll(toMillis(at), reason, id); !bound.ok()) return bound;
    if (Status updated = statement->run(); !updated.ok()) return updated;
    if (statement->changes() == 0) {
      return makeError(ErrorCode::kNotFound, "no held allocation with id " + id, {{"id", id}});
    }
    return Status::success();
  }

  Result<std::vector<AllocationRecord>> list(const AllocationFilter& filter) override {
    std::string sql = std::string("SELECT ") + kColumns + " FROM allocations WHERE 1";
    if (filter.deviceId) sql += " AND device_id = ?";
    if (filter.label) sql += " AND label = ?";
    if (filter.kind) sql += " AND kind = ?";
    if (filter.state) sql += " AND state = ?";
    // rowid breaks ties between equal timestamps: the later insert is the newer one.
    sql += " ORDER BY created_at_ms DESC, rowid DESC LIMIT ?";

    Result<Statement> statement = database_->prepare(sql);
    if (!statement.ok()) return statement.error();
    int index = 0;
    Status bound;
    if (filter.deviceId && bound.ok()) bound = statement->bind(++index, *filter.deviceId);
    if (filter.label && bound.ok()) bound = statement->bind(++index, *filter.label);
    if (filter.kind && bound.ok())
      bound = statement->bind(++index, allocationKindName(*filter.kind));
    if (filter.state && bound.ok()) {
      bound = statement->bind(++index, allocationStateName(*filter.state));
    }
    const auto limit = std::min<std::size_t>(
        filter.limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()));
    if (bound.ok()) bound = statement->bind(++index, limit);
    if (!bound.ok()) return bound.error();
    return readAll(*statement);
  }

  Result<std::optional<AllocationRecord>> find(const std::string& id) override {
    Result<Statement> statement =
        database_->prepare(std::string("SELECT ") + kColumns + " FROM allocations WHERE id = ?");
    if (!statement.ok()) return statement.error();
    if (Status bound = statement->bind(1, id); !bound.ok()) return bound.error();
    Result<std::vector<AllocationRecord>> rows = readAll(*statement);
    if (!rows.ok()) return rows.error();
    if (rows->empty()) return std::optional<AllocationRecord>();
    return std::optional<AllocationRecord>(std::move(rows->front()));
  }

  Result<std::size_t> releaseAllHeld(SystemTime at, const std::string& reason) override {
    Result<Statement> statement = database_->prepare(
        "UPDATE allocations SET state = 'released', released_at_ms = ?, release_reason = ?"
        " WHERE state = 'held'");
    if (!statement.ok()) return statement.error();
    if (Status bound = statement->bindAll(toMillis(at), reason); !bound.ok()) return bound.error();
    if (Status updated = statement->run(); !updated.ok()) return updated.error();
    return static_cast<std::size_t>(statement->changes());
  }

 private:
  static Result<std::vector<AllocationRecord>> readAll(Statement& statement) {
    std::vector<AllocationRecord> records;
    for (;;) {
      Result<bool> row = statement.step();
      if (!row.ok()) return row.error();
      if (!*row) return records;
      Result<AllocationRecord> record = readRecord(statement);
      if (!record.ok()) return record.error();
      records.push_back(std::move(*record));
    }
  }

  std::unique_ptr<SqliteDatabase> database_;  // thread-safe; serialises calls
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
  Result<std::unique_ptr<SqliteDatabase>> database = SqliteDatabase::open(dataDir / "deviceops.db");
  if (!database.ok()) return database.error();
  if (Status migrated = (*database)->migrate(ledgerMigrations()); !migrated.ok()) {
    return migrated.error();
  }
  return std::unique_ptr<LedgerStore>(std::make_unique<SqliteLedgerStore>(std::move(*database)));
}

}  // namespace deviceops::memory
