// A small RAII wrapper over one SQLite connection: the SQLite engine under store::Connection
// (store/connection.h), which is what components use; migrations are store::migrate's.
//
// Thread-safety: a SqliteDatabase may be shared by any number of threads. Every call takes the
// database's own (recursive) mutex, so calls are serialised and a transaction() body runs with
// no other thread's statements interleaved. A Statement holds that mutex from prepare() until it
// is destroyed: keep Statements short-lived, and use and destroy each on the thread that
// prepared it. The same thread may prepare further statements and nest transactions while it
// holds one.
//
// Errors: every SQLite failure becomes an Error whose message carries sqlite3_errmsg() and whose
// details carry {"sqlite_code", "sqlite_error", "sql" (first 80 characters)}. Codes:
// full disk, I/O errors, busy/locked and unopenable files -> kUnavailable; a corrupt file or one
// that is not a database -> kInternal; constraint violations -> kConflict; anything else ->
// kInternal. Nothing here throws.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace deviceops::store {

// A prepared statement. Binds take 1-based parameter indexes; columns are 0-based (as in SQLite).
// Holds the connection's mutex for its lifetime (see the file comment). Move-only.
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Status bind(int index, std::int64_t value);
  Status bind(int index, double value);
  Status bind(int index, std::string_view value);  // copied; UTF-8, may contain NUL bytes
  Status bind(int index, std::nullptr_t);
  // bool, int, std::uint64_t, ...: stored as INTEGER. Unsigned values above INT64_MAX are
  // rejected with kInvalidArgument rather than wrapped.
  template <std::integral T>
  Status bind(int index, T value);
  // std::nullopt binds NULL.
  template <class T>
  Status bind(int index, const std::optional<T>& value);
  // Binds args to parameters 1..N in order; stops at the first failure.
  template <class... Args>
  Status bindAll(const Args&... args);

  // Advances to the next row: true when a row is available, false when the statement is done.
  Result<bool> step();
  // Steps until done, ignoring rows (for INSERT/UPDATE/DELETE/DDL).
  Status run();
  // Makes the statement runnable again; bindings are kept.
  Status reset();
  // Rows changed by the most recent completed INSERT/UPDATE/DELETE on this connection.
  std::int64_t changes() const;

  // Column access for the current row (valid after step() returned true).
  int columnCount() const;
  bool isNull(int column) const;
  std::int64_t columnInt64(int column) const;  // NULL reads as 0
  double columnDouble(int column) const;       // NULL reads as 0.0
  std::string columnText(int column) const;    // NULL reads as ""; all bytes, NULs included
  std::optional<std::int64_t> columnOptionalInt64(int column) const;
  std::optional<double> columnOptionalDouble(int column) const;
  std::optional<std::string> columnOptionalText(int column) const;

 private:
  friend class SqliteDatabase;
  Statement(std::unique_lock<std::recursive_mutex> lock, sqlite3* db, sqlite3_stmt* statement,
            std::string_view sql);
  Status bindResult(int rc, int index);
  void finalize();

  std::unique_lock<std::recursive_mutex> lock_;  // declared first: released after finalize()
  sqlite3* db_ = nullptr;
  sqlite3_stmt* statement_ = nullptr;
  std::string sql_;  // for error details
};

class SqliteDatabase {
 public:
  // Opens (creating if needed) the database file at `path`; its directory must exist. Sets
  // busy_timeout=5000 ms, journal_mode=WAL, synchronous=NORMAL, foreign_keys=ON. A file that is
  // not a SQLite database fails here with kInternal.
  static Result<std::unique_ptr<SqliteDatabase>> open(const std::filesystem::path& path);

  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;
  // Closes the connection. Precondition: no Statement of this database is alive.
  ~SqliteDatabase();

  // Runs one or more statements with no parameters and no results.
  Status exec(const std::string& sql);
  // Prepares one statement; the returned Statement holds this database's mutex.
  Result<Statement> prepare(std::string_view sql);
  // Runs `body` in a transaction: BEGIN IMMEDIATE, then COMMIT if it returns OK, ROLLBACK if it
  // fails (its error is returned) or throws (kInternal). Nested calls on the same thread become
  // savepoints, so an inner failure undoes only the inner body.
  Status transaction(const std::function<Status()>& body);

  const std::filesystem::path& path() const { return path_; }

 private:
  SqliteDatabase(std::filesystem::path path, sqlite3* db);
  Status configure();

  const std::filesystem::path path_;
  sqlite3* const db_;
  std::recursive_mutex mutex_;  // guards all use of db_ and transactionDepth_
  int transactionDepth_ = 0;    // nesting level of transaction() on the owning thread
};

// Converts a failed SQLite call into an Error (see the file comment). `db` may be null.
Error sqliteError(sqlite3* db, int rc, std::string_view context, std::string_view sql);

template <std::integral T>
Status Statement::bind(int index, T value) {
  if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
    if (value > static_cast<T>(std::numeric_limits<std::int64_t>::max())) {
      return makeError(
          ErrorCode::kInvalidArgument,
          "integer " + std::to_string(value) + " does not fit in a signed 64-bit column",
          {{"parameter", index}});
    }
  }
  return bind(index, static_cast<std::int64_t>(value));
}

template <class T>
Status Statement::bind(int index, const std::optional<T>& value) {
  if (!value) return bind(index, nullptr);
  return bind(index, *value);
}

template <class... Args>
Status Statement::bindAll(const Args&... args) {
  Status status;
  int index = 0;
  ((status = bind(++index, args), status.ok()) && ...);
  return status;
}

}  // namespace deviceops::store
