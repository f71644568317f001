// store::Connection over libpqxx 6.4 (PostgreSQL 15). libpqxx exceptions stop here and become
// Errors: a broken or refused connection, an admin shutdown or a commit in doubt -> kUnavailable
// (the connection is dropped and re-opened by the next call), constraint violations ->
// kConflict, anything else -> kInternal.
#include <fmt/format.h>
#include <libpq-fe.h>

#include <mutex>
#include <pqxx/pqxx>

#include "store/connection.h"

namespace deviceops::store {
namespace {

using Params = std::vector<std::optional<std::string>>;

Params toText(const std::vector<Value>& params) {
  Params text;
  text.reserve(params.size());
  for (const Value& value : params) {
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::nullptr_t>) {
            text.emplace_back(std::nullopt);
          } else if constexpr (std::is_same_v<T, std::string>) {
            text.emplace_back(v);
          } else if constexpr (std::is_same_v<T, double>) {
            text.emplace_back(fmt::format("{}", v));
          } else {
            text.emplace_back(std::to_string(v));
          }
        },
        value);
  }
  return text;
}

class PostgresRow final : public Row {
 public:
  explicit PostgresRow(const pqxx::row& row) : row_(row) {}
  bool isNull(int column) const override { return row_[column].is_null(); }
  std::int64_t int64At(int column) const override {
    const pqxx::field field = row_[column];
    if (field.is_null()) return 0;
    const std::string text = field.c_str();
    if (text.find_first_of(".eE") != std::string::npos) {
      return static_cast<std::int64_t>(std::stod(text));  // a numeric aggregate
    }
    return std::stoll(text);
  }
  double doubleAt(int column) const override {
    const pqxx::field field = row_[column];
    return field.is_null() ? 0.0 : field.as<double>();
  }
  std::string textAt(int column) const override {
    const pqxx::field field = row_[column];
    return field.is_null() ? std::string() : std::string(field.c_str(), field.size());
  }

 private:
  const pqxx::row& row_;
};

// The connection string without secrets: "host=... port=... dbname=... user=...".
std::string describe(const std::string& connection) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(connection.c_str(), &error);
  if (error != nullptr) PQfreemem(error);
  if (options == nullptr) return "postgresql (unparsable connection string)";
  std::string text = "postgresql:";
  for (PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    const std::string keyword = option->keyword;
    if (option->val != nullptr && *option->val != '\0' &&
        (keyword == "host" || keyword == "hostaddr" || keyword == "port" || keyword == "dbname" ||
         keyword == "user")) {
      text += fmt::format(" {}={}", keyword, option->val);
    }
  }
  PQconninfoFree(options);
  return text;
}

class PostgresConnection final : public Connection {
 public:
  explicit PostgresConnection(std::string connection)
      : connectionString_(std::move(connection)), description_(describe(connectionString_)) {}

  Dialect dialect() const override { return Dialect::kPostgresql; }
  std::string description() const override { return description_; }

  Status executeScript(const std::string& sql) override {
    return run([&](pqxx::transaction_base& work) { work.exec(sql); });
  }

  Result<std::uint64_t> execute(const std::string& sql, const std::vector<Value>& params) override {
    const Params text = toText(params);
    std::uint64_t changed = 0;
    Status status = run([&](pqxx::transaction_base& work) {
      changed = work.exec_params(sql, pqxx::prepare::make_dynamic_params(text)).affected_rows();
    });
    if (!status.ok()) return status.error();
    return changed;
  }

  Status query(const std::string& sql, const std::vector<Value>& params,
               const std::function<void(const Row&)>& onRow) override {
    const Params text = toText(params);
    return run([&](pqxx::transaction_base& work) {
      const pqxx::result result = work.exec_params(sql, pqxx::prepare::make_dynamic_params(text));
      for (const pqxx::row& row : result) {
        PostgresRow wrapped(row);
        onRow(wrapped);
      }
    });
  }

  Status transaction(const std::function<Status()>& body) override {
    std::lock_guard lock(mutex_);
    if (Status connected = connect(); !connected.ok()) return connected;
    Status outcome;
    Status caught = guard([&] {
      pqxx::work work(*connection_);
      current_ = &work;
      outcome = body();
      current_ = nullptr;
      if (outcome.ok()) work.commit();  // else: rolled back when `work` goes out of scope
    });
    current_ = nullptr;
    if (resetPending_) {
      resetPending_ = false;
      connection_.reset();
    }
    if (!caught.ok()) return caught;
    return outcome;
  }

 private:
  // Runs `action` in the open transaction, or in an autocommit one of its own.
  template <class Action>
  Status run(Action&& action) {
    std::lock_guard lock(mutex_);
    if (current_ != nullptr) return guard([&] { action(*current_); });
    if (Status connected = connect(); !connected.ok()) return connected;
    return guard([&] {
      pqxx::nontransaction work(*connection_);
      action(work);
    });
  }

  Status connect() {
    if (connection_ && connection_->is_open()) return Status::success();
    connection_.reset();
    return guard([&] { connection_ = std::make_unique<pqxx::connection>(connectionString_); });
  }

  template <class Body>
  Status guard(Body&& body) {
    try {
      body();
      return Status::success();
    } catch (const pqxx::broken_connection& error) {
      return dropped(error.what());
    } catch (const pqxx::in_doubt_error& error) {
      return dropped(error.what());
    } catch (const pqxx::sql_error& error) {
      const std::string state = error.sqlstate();
      nlohmann::json details = {{"sqlstate", state}, {"database", description_}};
      const std::string message = fmt::format("PostgreSQL: {}", firstLine(error.what()));
      if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0 || state.rfind("53", 0) == 0 ||
          state == "40001" || state == "40P01") {
        if (state.rfind("08", 0) == 0 || state.rfind("57P", 0) == 0) dropConnection();
        return makeError(ErrorCode::kUnavailable, message, details);
      }
      if (state.rfind("23", 0) == 0) return makeError(ErrorCode::kConflict, message, details);
      return makeError(ErrorCode::kInternal, message, details);
    } catch (const std::exception& error) {
      // pqxx::failure without a connection state: check whether the connection survived.
      if (!connection_ || !connection_->is_open()) return dropped(error.what());
      return makeError(ErrorCode::kInternal, fmt::format("PostgreSQL: {}", firstLine(error.what())),
                       {{"database", description_}});
    }
  }

  // Inside a transaction the pqxx::work still refers to the connection: drop it afterwards.
  void dropConnection() {
    if (current_ != nullptr) {
      resetPending_ = true;
    } else {
      connection_.reset();
    }
  }

  Error dropped(const std::string& what) {
    dropConnection();
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("PostgreSQL unavailable: {}", firstLine(what)),
                     {{"database", description_}});
  }

  static std::string firstLine(const std::string& text) {
    const std::size_t end = text.find('\n');
    return end == std::string::npos ? text : text.substr(0, end);
  }

  const std::string connectionString_;
  const std::string description_;
  std::recursive_mutex mutex_;  // guards connection_, current_, resetPending_
  std::unique_ptr<pqxx::connection> connection_;
  pqxx::transaction_base* current_ = nullptr;  // the open transaction() of the owning thread
  bool resetPending_ = false;
};

}  // namespace

Result<std::unique_ptr<Connection>> openPostgresConnection(const std::string& connection) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(connection.c_str(), &error);
  if (options == nullptr) {
    std::string reason = error != nullptr ? error : "cannot parse";
    if (error != nullptr) PQfreemem(error);
    while (!reason.empty() && reason.back() == '\n') reason.pop_back();
    return makeError(ErrorCode::kInvalidArgument,
                     "telemetry.postgresqlUrl is not a valid libpq connection string: " + reason);
  }
  PQconninfoFree(options);
  return std::unique_ptr<Connection>(std::make_unique<PostgresConnection>(connection));
}

}  // namespace deviceops::store
