// The one connection/row API of deviceops: every component's store class reaches SQLite and
// PostgreSQL through a store::Connection. SQL is written once with $1..$N placeholders (the
// SQLite engine rewrites them to ?); dialect() covers the few differences (DDL types, advisory
// locks). Two real engines implement it: SQLite (over store::SqliteDatabase: WAL, busy timeout;
// docs/STORE.md) and PostgreSQL (libpqxx; its exceptions stop in postgres_connection.cc).
//
// Thread-safety: a Connection may be shared by any number of threads. Each serialises its calls
// with its own (recursive) mutex; a transaction() body runs with no other thread's statements
// interleaved. A Row is valid only inside the callback it is passed to.
//
// Errors: the server or file cannot be reached, the connection broke, disk full or busy ->
// kUnavailable; constraint violations -> kConflict; anything else -> kInternal. Details carry the
// engine's code (sqlite_code / sqlstate). Nothing here throws.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"

namespace deviceops::store {

enum class Dialect { kSqlite, kPostgresql };

// A parameter value. bool and unsigned integers are not alternatives: convert explicitly
// (std::int64_t{flag ? 1 : 0}, static_cast<std::int64_t>(bytes)).
using Value = std::variant<std::nullptr_t, std::int64_t, double, std::string>;

// std::nullopt -> NULL; integers -> INTEGER/BIGINT; floating point -> DOUBLE; text -> TEXT.
template <class T>
Value optionalValue(const std::optional<T>& value) {
  if (!value) return nullptr;
  if constexpr (std::is_floating_point_v<T>) {
    return static_cast<double>(*value);
  } else if constexpr (std::is_integral_v<T>) {
    return static_cast<std::int64_t>(*value);
  } else {
    return std::string(*value);
  }
}

// The current row of a query. Column indexes are 0-based.
class Row {
 public:
  virtual ~Row() = default;
  virtual bool isNull(int column) const = 0;
  virtual std::int64_t int64At(int column) const = 0;  // NULL reads as 0
  virtual double doubleAt(int column) const = 0;       // NULL reads as 0
  virtual std::string textAt(int column) const = 0;    // NULL reads as ""; all bytes
  std::optional<std::int64_t> optionalInt64(int column) const {
    if (isNull(column)) return std::nullopt;
    return int64At(column);
  }
  std::optional<double> optionalDouble(int column) const {
    if (isNull(column)) return std::nullopt;
    return doubleAt(column);
  }
  // Negative values read as 0.
  std::optional<std::uint64_t> optionalUint64(int column) const {
    if (isNull(column)) return std::nullopt;
    const std::int64_t value = int64At(column);
    return value < 0 ? 0 : static_cast<std::uint64_t>(value);
  }
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  // Where it writes, without secrets: a file path, or "postgresql: host=... dbname=...".
  virtual std::string description() const = 0;

  // Runs statements without parameters (DDL, several separated by ';').
  virtual Status executeScript(const std::string& sql) = 0;
  // Runs one statement; returns the rows an INSERT/UPDATE/DELETE changed.
  virtual Result<std::uint64_t> execute(const std::string& sql,
                                        const std::vector<Value>& params) = 0;
  // Calls `onRow` for each result row, in order. `onRow` must not throw.
  virtual Status query(const std::string& sql, const std::vector<Value>& params,
                       const std::function<void(const Row&)>& onRow) = 0;
  // Runs `body` in a transaction (SQLite: BEGIN IMMEDIATE, so it holds the write lock from the
  // start), COMMIT if it returns OK, ROLLBACK if it fails (its error is returned). Calls of the
  // same thread inside `body` join the transaction. Nesting: SQLite makes an inner transaction()
  // a savepoint; PostgreSQL does not support nesting (do not nest on a PostgreSQL connection).
  virtual Status transaction(const std::function<Status()>& body) = 0;
};

// Opens (creating if needed) a SQLite file; its directory must exist. A file that is not a
// SQLite database is kInternal; a read-only file or one where WAL cannot be enabled kUnavailable.
Result<std::unique_ptr<Connection>> openSqliteConnection(const std::string& path);
// Never fails for an unreachable server: the connection is (re)established on each call while
// it is down. Fails (kInvalidArgument) for a malformed connection string.
Result<std::unique_ptr<Connection>> openPostgresConnection(const std::string& connection);

}  // namespace deviceops::store
