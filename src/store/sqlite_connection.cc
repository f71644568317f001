// Connection over SqliteDatabase (WAL, busy timeout; see docs/STORE.md).
#include <cctype>
#include <vector>

#include "store/connection.h"
#include "store/sqlite.h"

namespace deviceops::store {
namespace {

// "$2 ... $1 ... $2" -> "? ... ? ... ?" and the 0-based parameter index of each "?", in order.
// (Numbered "?NNN" parameters would do, but SQLite looks their names up linearly, which makes a
// multi-row INSERT with thousands of them quadratic.)
struct Rewritten {
  std::string sql;
  std::vector<std::size_t> order;
};

Rewritten toSqlitePlaceholders(const std::string& sql) {
  Rewritten out;
  out.sql.reserve(sql.size());
  for (std::size_t i = 0; i < sql.size();) {
    if (sql[i] == '$' && i + 1 < sql.size() &&
        std::isdigit(static_cast<unsigned char>(sql[i + 1]))) {
      std::size_t end = i + 1;
      std::size_t number = 0;
      while (end < sql.size() && std::isdigit(static_cast<unsigned char>(sql[end]))) {
        number = number * 10 + static_cast<std::size_t>(sql[end] - '0');
        ++end;
      }
      out.sql += '?';
      out.order.push_back(number - 1);
      i = end;
    } else {
      out.sql += sql[i++];
    }
  }
  return out;
}

class SqliteRow final : public Row {
 public:
  explicit SqliteRow(const Statement& statement) : statement_(statement) {}
  bool isNull(int column) const override { return statement_.isNull(column); }
  std::int64_t int64At(int column) const override { return statement_.columnInt64(column); }
  double doubleAt(int column) const override { return statement_.columnDouble(column); }
  std::string textAt(int column) const override { return statement_.columnText(column); }

 private:
  const Statement& statement_;
};

class SqliteConnection final : public Connection {
 public:
  explicit SqliteConnection(std::unique_ptr<SqliteDatabase> database)
      : database_(std::move(database)) {}

  Dialect dialect() const override { return Dialect::kSqlite; }
  std::string description() const override { return database_->path().string(); }

  Status executeScript(const std::string& sql) override { return database_->exec(sql); }

  Result<std::uint64_t> execute(const std::string& sql, const std::vector<Value>& params) override {
    Result<Statement> statement = prepare(sql, params);
    if (!statement.ok()) return statement.error();
    if (Status ran = statement->run(); !ran.ok()) return ran.error();
    return static_cast<std::uint64_t>(statement->changes());
  }

  Status query(const std::string& sql, const std::vector<Value>& params,
               const std::function<void(const Row&)>& onRow) override {
    Result<Statement> statement = prepare(sql, params);
    if (!statement.ok()) return statement.error();
    SqliteRow row(*statement);
    while (true) {
      Result<bool> stepped = statement->step();
      if (!stepped.ok()) return stepped.error();
      if (!*stepped) return Status::success();
      onRow(row);
    }
  }

  Status transaction(const std::function<Status()>& body) override {
    return database_->transaction(body);
  }

 private:
  Result<Statement> prepare(const std::string& sql, const std::vector<Value>& params) {
    const Rewritten rewritten = toSqlitePlaceholders(sql);
    Result<Statement> statement = database_->prepare(rewritten.sql);
    if (!statement.ok()) return statement.error();
    for (std::size_t position = 0; position < rewritten.order.size(); ++position) {
      const std::size_t i = rewritten.order[position];
      if (i >= params.size()) {
        return makeError(ErrorCode::kInternal,
                         "SQL parameter $" + std::to_string(i + 1) + " has no value");
      }
      const int index = static_cast<int>(position) + 1;
      Status bound = std::visit(
          [&](const auto& value) -> Status {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, std::string>) {
              return statement->bind(index, std::string_view(value));
            } else {
              return statement->bind(index, value);
            }
          },
          params[i]);
      if (!bound.ok()) return bound.error();
    }
    return statement;
  }

  std::unique_ptr<SqliteDatabase> database_;
};

}  // namespace

Result<std::unique_ptr<Connection>> openSqliteConnection(const std::string& path) {
  Result<std::unique_ptr<SqliteDatabase>> database = SqliteDatabase::open(path);
  if (!database.ok()) return database.error();
  return std::unique_ptr<Connection>(
      std::make_unique<SqliteConnection>(std::move(database.value())));
}

}  // namespace deviceops::store
