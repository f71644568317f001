#include "generation/suite_store.h"

#include <spdlog/spdlog.h>

#include "store/migrations.h"

namespace deviceops::generation {
namespace {

const std::vector<store::Migration>& suiteMigrations() {
  static const std::vector<store::Migration> kMigrations = {
      {1, "model suites",
       "CREATE TABLE suites (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_ms INTEGER "
       "NOT NULL, record TEXT NOT NULL);"},
      {2, "custom VAEs of suites",
       "CREATE TABLE vaes (suite_id TEXT NOT NULL, name TEXT NOT NULL, created_ms INTEGER NOT "
       "NULL, record TEXT NOT NULL, PRIMARY KEY (suite_id, name));"},
      {3, "per-suite state: default VAE and the last comparison",
       "CREATE TABLE suite_state (suite_id TEXT PRIMARY KEY, default_vae TEXT NOT NULL, "
       "comparison TEXT);"},
  };
  return kMigrations;
}

}  // namespace

SuiteStore::SuiteStore(std::unique_ptr<store::Connection> connection)
    : connection_(std::move(connection)) {}

Result<std::unique_ptr<SuiteStore>> SuiteStore::open(const std::filesystem::path& file) {
  ASSIGN_OR_RETURN(std::unique_ptr<store::Connection> connection,
                   store::openSqliteConnection(file.string()));
  RETURN_IF_ERROR(store::migrate(*connection, suiteMigrations(), store::schemaMigrationsLog()));
  return std::unique_ptr<SuiteStore>(new SuiteStore(std::move(connection)));
}

Status SuiteStore::insert(const StoredSuite& suite) {
  const std::int64_t created =
      std::chrono::duration_cast<std::chrono::milliseconds>(suite.createdAt.time_since_epoch())
          .count();
  Result<std::uint64_t> inserted = connection_->execute(
      "INSERT INTO suites (id, name, created_ms, record) VALUES ($1, $2, $3, $4)",
      {suite.id, suite.definition.name, created, toJson(suite.definition).dump()});
  if (!inserted.ok()) return inserted.error();
  return Status::success();
}

Status SuiteStore::remove(const std::string& id) {
  for (const char* statement :
       {"DELETE FROM vaes WHERE suite_id = $1", "DELETE FROM suite_state WHERE suite_id = $1",
        "DELETE FROM suites WHERE id = $1"}) {
    Result<std::uint64_t> removed = connection_->execute(statement, {id});
    if (!removed.ok()) return removed.error();
  }
  return Status::success();
}

Status SuiteStore::insertVae(const std::string& suiteId, const VaeRecord& record) {
  const std::int64_t created =
      std::chrono::duration_cast<std::chrono::milliseconds>(record.createdAt.time_since_epoch())
          .count();
  Result<std::uint64_t> inserted = connection_->execute(
      "INSERT INTO vaes (suite_id, name, created_ms, record) VALUES ($1, $2, $3, $4)",
      {suiteId, record.name, created, toJson(record).dump()});
  if (!inserted.ok()) return inserted.error();
  return Status::success();
}

Status SuiteStore::updateVae(const std::string& suiteId, const VaeRecord& record) {
  Result<std::uint64_t> updated =
      connection_->execute("UPDATE vaes SET record = $3 WHERE suite_id = $1 AND name = $2",
                           {suiteId, record.name, toJson(record).dump()});
  if (!updated.ok()) return updated.error();
  return Status::success();
}

Status SuiteStore::removeVae(const std::string& suiteId, const std::string& name) {
  Result<std::uint64_t> removed =
      connection_->execute("DELETE FROM vaes WHERE suite_id = $1 AND name = $2", {suiteId, name});
  if (!removed.ok()) return removed.error();
  return Status::success();
}

Result<std::vector<VaeRecord>> SuiteStore::listVaes(const std::string& suiteId) const {
  std::vector<VaeRecord> records;
  RETURN_IF_ERROR(connection_->query(
      "SELECT name, record FROM vaes WHERE suite_id = $1 ORDER BY created_ms, name", {suiteId},
      [&](const store::Row& row) {
        nlohmann::json json = nlohmann::json::parse(row.textAt(1), nullptr, false);
        Result<VaeRecord> record =
            json.is_discarded() ? Result<VaeRecord>(makeError(ErrorCode::kInternal, "not JSON"))
                                : vaeRecordFromJson(json);
        if (!record.ok()) {
          spdlog::error("suites: skipping stored VAE {} of {}: {}", row.textAt(0), suiteId,
                        record.error().message);
          return;
        }
        records.push_back(std::move(record.value()));
      }));
  return records;
}

Status SuiteStore::saveState(const std::string& suiteId, const SuiteState& state) {
  Result<std::uint64_t> saved = connection_->execute(
      "INSERT INTO suite_state (suite_id, default_vae, comparison) VALUES ($1, $2, $3) "
      "ON CONFLICT (suite_id) DO UPDATE SET default_vae = excluded.default_vae, "
      "comparison = excluded.comparison",
      {suiteId, state.defaultVae, state.comparison.is_null() ? "" : state.comparison.dump()});
  if (!saved.ok()) return saved.error();
  return Status::success();
}

Result<SuiteState> SuiteStore::state(const std::string& suiteId) const {
  SuiteState state;
  RETURN_IF_ERROR(connection_->query(
      "SELECT default_vae, comparison FROM suite_state WHERE suite_id = $1", {suiteId},
      [&](const store::Row& row) {
        state.defaultVae = row.textAt(0);
        const nlohmann::json comparison = nlohmann::json::parse(row.textAt(1), nullptr, false);
        state.comparison = comparison.is_discarded() ? nlohmann::json(nullptr) : comparison;
      }));
  return state;
}

Result<std::vector<StoredSuite>> SuiteStore::list() const {
  std::vector<StoredSuite> suites;
  RETURN_IF_ERROR(connection_->query(
      "SELECT id, created_ms, record FROM suites ORDER BY created_ms, id", {},
      [&](const store::Row& row) {
        nlohmann::json json = nlohmann::json::parse(row.textAt(2), nullptr, false);
        Result<SuiteDefinition> definition =
            json.is_discarded()
                ? Result<SuiteDefinition>(makeError(ErrorCode::kInternal, "not JSON"))
                : definitionFromJson(json);
        if (!definition.ok()) {
          spdlog::error("suites: skipping stored suite {}: {}", row.textAt(0),
                        definition.error().message);
          return;
        }
        StoredSuite suite;
        suite.id = row.textAt(0);
        suite.createdAt =
            std::chrono::system_clock::time_point(std::chrono::milliseconds(row.int64At(1)));
        suite.definition = std::move(definition.value());
        suites.push_back(std::move(suite));
      }));
  return suites;
}

}  // namespace deviceops::generation
