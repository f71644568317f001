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
  Result<std::uint64_t> removed = connection_->execute("DELETE FROM suites WHERE id = $1", {id});
  if (!removed.ok()) return removed.error();
  return Status::success();
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
