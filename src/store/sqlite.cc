#include "store/sqlite.h"

#include <sqlite3.h>

#include <exception>
#include <utility>

namespace deviceops::store {
namespace {

constexpr std::size_t kSqlInDetails = 80;  // characters of SQL quoted in error details

std::string sqlPrefix(std::string_view sql) { return std::string(sql.substr(0, kSqlInDetails)); }

ErrorCode errorCodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return ErrorCode::kUnavailable;
    case SQLITE_CONSTRAINT:
      return ErrorCode::kConflict;
    default:
      return ErrorCode::kInternal;
  }
}

}  // namespace

Error sqliteError(sqlite3* db, int rc, std::string_view context, std::string_view sql) {
  const int primary = rc & 0xff;
  std::string sqliteMessage = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string message = std::string(context) + ": " + sqliteMessage;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) {
    message = std::string(context) + ": the file is not a valid SQLite database (" + sqliteMessage +
              "); restore it from a backup or move it aside";
  }
  nlohmann::json details = {
      {"sqlite_code", rc}, {"sqlite_error", sqlite3_errstr(rc)}, {"sqlite_message", sqliteMessage}};
  if (!sql.empty()) details["sql"] = sqlPrefix(sql);
  return makeError(errorCodeFor(rc), std::move(message), std::move(details));
}

// ---- Statement ----------------------------------------------------------------------------

Statement::Statement(std::unique_lock<std::recursive_mutex> lock, sqlite3* db,
                     sqlite3_stmt* statement, std::string_view sql)
    : lock_(std::move(lock)), db_(db), statement_(statement), sql_(sqlPrefix(sql)) {}

Statement::Statement(Statement&& other) noexcept
    : lock_(std::move(other.lock_)),
      db_(std::exchange(other.db_, nullptr)),
      statement_(std::exchange(other.statement_, nullptr)),
      sql_(std::move(other.sql_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    finalize();  // while our lock is still held
    lock_ = std::move(other.lock_);
    db_ = std::exchange(other.db_, nullptr);
    statement_ = std::exchange(other.statement_, nullptr);
    sql_ = std::move(other.sql_);
  }
  return *this;
}

Statement::~Statement() { finalize(); }

void Statement::finalize() {
  if (statement_ != nullptr) sqlite3_finalize(statement_);
  statement_ = nullptr;
}

Status Statement::bindResult(int rc, int index) {
  if (rc == SQLITE_OK) return Status::success();
  Error error = sqliteError(db_, rc, "cannot bind parameter " + std::to_string(index), sql_);
  return error;
}

Status Statement::bind(int index, std::int64_t value) {
  return bindResult(sqlite3_bind_int64(statement_, index, value), index);
}

Status Statement::bind(int index, double value) {
  return bindResult(sqlite3_bind_double(statement_, index, value), index);
}

Status Statement::bind(int index, std::string_view value) {
  // A non-null pointer even for "" so that the empty string is bound as text, not NULL.
  const char* data = value.data() != nullptr ? value.data() : "";
  return bindResult(
      sqlite3_bind_text64(statement_, index, data, value.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
      index);
}

Status Statement::bind(int index, std::nullptr_t) {
  return bindResult(sqlite3_bind_null(statement_, index), index);
}

Result<bool> Statement::step() {
  const int rc = sqlite3_step(statement_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return sqliteError(db_, rc, "statement failed", sql_);
}

Status Statement::run() {
  for (;;) {
    Result<bool> row = step();
    if (!row.ok()) return row.error();
    if (!*row) return Status::success();
  }
}

Status Statement::reset() {
  const int rc = sqlite3_reset(statement_);
  if (rc != SQLITE_OK) return sqliteError(db_, rc, "cannot reset statement", sql_);
  return Status::success();
}

std::int64_t Statement::changes() const { return sqlite3_changes64(db_); }

int Statement::columnCount() const { return sqlite3_column_count(statement_); }

bool Statement::isNull(int column) const {
  return sqlite3_column_type(statement_, column) == SQLITE_NULL;
}

std::int64_t Statement::columnInt64(int column) const {
  return sqlite3_column_int64(statement_, column);
}

double Statement::columnDouble(int column) const {
  return sqlite3_column_double(statement_, column);
}

std::string Statement::columnText(int column) const {
  const unsigned char* text = sqlite3_column_text(statement_, column);
  if (text == nullptr) return {};
  const int size = sqlite3_column_bytes(statement_, column);  // after column_text, as documented
  return std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size));
}

std::optional<std::int64_t> Statement::columnOptionalInt64(int column) const {
  if (isNull(column)) return std::nullopt;
  return columnInt64(column);
}

std::optional<double> Statement::columnOptionalDouble(int column) const {
  if (isNull(column)) return std::nullopt;
  return columnDouble(column);
}

std::optional<std::string> Statement::columnOptionalText(int column) const {
  if (isNull(column)) return std::nullopt;
  return columnText(column);
}

// ---- SqliteDatabase -----------------------------------------------------------------------

SqliteDatabase::SqliteDatabase(std::filesystem::path path, sqlite3* db)
    : path_(std::move(path)), db_(db) {}

SqliteDatabase::~SqliteDatabase() { sqlite3_close_v2(db_); }

Result<std::unique_ptr<SqliteDatabase>> SqliteDatabase::open(const std::filesystem::path& path) {
  // FULLMUTEX is a safety net only: our own mutex is what keeps transactions and error messages
  // consistent. Its cost (an uncontended lock per call) is negligible next to the I/O.
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error error = sqliteError(db, rc, "cannot open database " + path.string(), "");
    sqlite3_close_v2(db);  // a handle is returned even on failure (null only when out of memory)
    return error;
  }
  sqlite3_extended_result_codes(db, 1);
  std::unique_ptr<SqliteDatabase> database(new SqliteDatabase(path, db));
  if (Status configured = database->configure(); !configured.ok()) {
    Error error = configured.error();
    error.details["path"] = path.string();
    return error;
  }
  return database;
}

Status SqliteDatabase::configure() {
  std::lock_guard lock(mutex_);
  // Wait up to 5 s for another process's write lock instead of failing with SQLITE_BUSY.
  sqlite3_busy_timeout(db_, 5000);
  // The first statement reads the file header, so a non-database file fails here.
  std::string mode;
  {
    Result<Statement> journal = prepare("PRAGMA journal_mode=WAL");
    if (!journal.ok()) return journal.error();
    Result<bool> row = journal->step();
    if (!row.ok()) return row.error();
    if (*row) mode = journal->columnText(0);
  }
  if (mode != "wal") {
    return makeError(ErrorCode::kUnavailable,
                     "cannot enable write-ahead logging on " + path_.string() +
                         " (journal mode is '" + mode + "'); is the file system local?",
                     {{"journal_mode", mode}});
  }
  // SQLite silently falls back to read-only for a write-protected file; every write would fail.
  if (sqlite3_db_readonly(db_, "main") == 1) {
    return makeError(ErrorCode::kUnavailable,
                     "database " + path_.string() + " is read-only; deviceopsd needs to write it");
  }
  // NORMAL in WAL mode: a commit survives a crash of the process (the WAL is written before
  // COMMIT returns); only a power loss or kernel crash can lose the last commits, never corrupt.
  return exec("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
}

Status SqliteDatabase::exec(const std::string& sql) {
  std::lock_guard lock(mutex_);
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqliteError(db_, rc, "statement failed", sql);
  return Status::success();
}

Result<Statement> SqliteDatabase::prepare(std::string_view sql) {
  std::unique_lock lock(mutex_);
  sqlite3_stmt* statement = nullptr;
  const int rc =
      sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &statement, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(statement);
    return sqliteError(db_, rc, "cannot prepare statement", sql);
  }
  if (statement == nullptr) {
    return makeError(ErrorCode::kInternal, "cannot prepare an empty statement",
                     {{"sql", sqlPrefix(sql)}});
  }
  return Statement(std::move(lock), db_, statement, sql);
}

Status SqliteDatabase::transaction(const std::function<Status()>& body) {
  std::lock_guard lock(mutex_);
  const bool outermost = transactionDepth_ == 0;
  const std::string savepoint = "deviceops_" + std::to_string(transactionDepth_);
  Status begun = exec(outermost ? "BEGIN IMMEDIATE" : "SAVEPOINT " + savepoint);
  if (!begun.ok()) return begun;

  ++transactionDepth_;
  Status result;
  try {
    result = body();
  } catch (const std::exception& exception) {
    result =
        makeError(ErrorCode::kInternal, std::string("transaction body threw: ") + exception.what());
  } catch (...) {
    result = makeError(ErrorCode::kInternal, "transaction body threw a non-standard exception");
  }
  --transactionDepth_;

  if (result.ok()) {
    Status committed = exec(outermost ? "COMMIT" : "RELEASE " + savepoint);
    if (committed.ok()) return committed;
    result = committed;  // e.g. disk full at commit: undo below
  }
  // Rolling back can fail only if SQLite already rolled back by itself (e.g. after an I/O error);
  // either way the body's error is the one worth reporting.
  if (outermost) {
    if (sqlite3_get_autocommit(db_) == 0) (void)exec("ROLLBACK");
  } else {
    (void)exec("ROLLBACK TO " + savepoint + "; RELEASE " + savepoint);
  }
  return result;
}

}  // namespace deviceops::store
