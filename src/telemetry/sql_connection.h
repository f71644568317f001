// Internal to telemetry: the few operations the SQL store needs from a database, implemented for
// SQLite (store::SqliteDatabase) and PostgreSQL (libpqxx). SQL is written once with $1..$N
// placeholders (the SQLite adapter rewrites them to ?1..?N); dialect() covers the few
// differences (DDL types, advisory locks).
//
// Thread-safety: each connection serialises its calls with its own (recursive) mutex; a
// transaction() body runs with no other thread's statements interleaved.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/result.h"

namespace deviceops::telemetry {

enum class SqlDialect { kSqlite, kPostgresql };

using SqlValue = std::variant<std::nullptr_t, std::int64_t, double, std::string>;

template <class T>
SqlValue sqlValue(const std::optional<T>& value) {
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
class SqlRow {
 public:
  virtual ~SqlRow() = default;
  virtual bool isNull(int column) const = 0;
  virtual std::int64_t int64At(int column) const = 0;  // NULL reads as 0
  virtual double doubleAt(int column) const = 0;       // NULL reads as 0
  virtual std::string textAt(int column) const = 0;    // NULL reads as ""
  std::optional<double> optionalDouble(int column) const {
    if (isNull(column)) return std::nullopt;
    return doubleAt(column);
  }
  std::optional<std::uint64_t> optionalUint64(int column) const {
    if (isNull(column)) return std::nullopt;
    const std::int64_t value = int64At(column);
    return value < 0 ? 0 : static_cast<std::uint64_t>(value);
  }
};

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual SqlDialect dialect() const = 0;
  virtual std::string description() const = 0;

  // Runs statements without parameters (DDL, several separated by ';').
  virtual Status executeScript(const std::string& sql) = 0;
  // Returns the rows an INSERT/UPDATE/DELETE changed.
  virtual Result<std::uint64_t> execute(const std::string& sql,
                                        const std::vector<SqlValue>& params) = 0;
  // Calls `onRow` for each result row, in order.
  virtual Status query(const std::string& sql, const std::vector<SqlValue>& params,
                       const std::function<void(const SqlRow&)>& onRow) = 0;
  // BEGIN; body; COMMIT (ROLLBACK when body fails). Not nestable.
  virtual Status transaction(const std::function<Status()>& body) = 0;
};

Result<std::unique_ptr<SqlConnection>> openSqliteConnection(const std::string& path);
// Never fails for an unreachable server: the connection is (re)established on each call while
// it is down. Fails (kInvalidArgument) for a malformed connection string.
Result<std::unique_ptr<SqlConnection>> openPostgresConnection(const std::string& connection);

}  // namespace deviceops::telemetry
