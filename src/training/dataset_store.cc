#include "training/dataset_store.h"

#include "store/migrations.h"

namespace deviceops::training {
namespace {

const std::vector<store::Migration>& datasetMigrations() {
  static const std::vector<store::Migration> kMigrations = {
      {1, "training datasets",
       "CREATE TABLE datasets("
       "  id TEXT PRIMARY KEY,"
       "  name TEXT NOT NULL UNIQUE,"
       "  format TEXT NOT NULL,"
       "  state TEXT NOT NULL,"
       "  missing_part TEXT NOT NULL,"
       "  schema_json TEXT NOT NULL,"
       "  size_bytes INTEGER NOT NULL,"
       "  sha256 TEXT NOT NULL,"
       "  created_at TEXT NOT NULL,"
       "  path TEXT NOT NULL);"},
  };
  return kMigrations;
}

constexpr const char* kSelect =
    "SELECT id, name, format, state, missing_part, schema_json, size_bytes, sha256, created_at, "
    "path FROM datasets";

Result<DatasetInfo> readRow(const store::Row& row) {
  DatasetInfo info;
  info.id = row.textAt(0);
  info.name = row.textAt(1);
  info.format = row.textAt(2);
  info.state = row.textAt(3);
  info.missingPart = row.textAt(4);
  const nlohmann::json schema = nlohmann::json::parse(row.textAt(5), nullptr, false);
  Result<DatasetSchema> parsed = DatasetSchema::fromJson(schema);
  if (!parsed.ok()) {
    return makeError(ErrorCode::kInternal, "dataset " + info.id + ": stored schema unreadable: " +
                                               parsed.error().message);
  }
  info.schema = std::move(parsed).value();
  info.sizeBytes = static_cast<std::uint64_t>(row.int64At(6));
  info.sha256 = row.textAt(7);
  info.createdAt = row.textAt(8);
  info.path = row.textAt(9);
  return info;
}

Status done(const Result<std::uint64_t>& changed) {
  if (!changed.ok()) return changed.error();
  return Status::success();
}

}  // namespace

DatasetStore::DatasetStore(std::unique_ptr<store::Connection> connection)
    : connection_(std::move(connection)) {}

Result<std::unique_ptr<DatasetStore>> DatasetStore::open(const std::filesystem::path& file) {
  Result<std::unique_ptr<store::Connection>> connection =
      store::openSqliteConnection(file.string());
  if (!connection.ok()) return connection.error();
  if (Status migrated =
          store::migrate(**connection, datasetMigrations(), store::schemaMigrationsLog());
      !migrated.ok()) {
    return migrated.error();
  }
  return std::unique_ptr<DatasetStore>(new DatasetStore(std::move(connection).value()));
}

Status DatasetStore::insert(const DatasetInfo& info) {
  return done(connection_->execute(
      "INSERT INTO datasets(id, name, format, state, missing_part, schema_json, size_bytes, "
      "sha256, created_at, path) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
      {info.id, info.name, info.format, info.state, info.missingPart, info.schema.toJson().dump(),
       static_cast<std::int64_t>(info.sizeBytes), info.sha256, info.createdAt, info.path}));
}

Status DatasetStore::update(const DatasetInfo& info) {
  return done(connection_->execute(
      "UPDATE datasets SET state = $1, missing_part = $2, schema_json = $3, size_bytes = $4, "
      "sha256 = $5, path = $6 WHERE id = $7",
      {info.state, info.missingPart, info.schema.toJson().dump(),
       static_cast<std::int64_t>(info.sizeBytes), info.sha256, info.path, info.id}));
}

Status DatasetStore::remove(const std::string& id) {
  return done(connection_->execute("DELETE FROM datasets WHERE id = $1", {id}));
}

Result<DatasetInfo> DatasetStore::find(const std::string& idOrName) const {
  std::optional<Result<DatasetInfo>> found;
  // An id match wins over a name match.
  Status status = connection_->query(
      std::string(kSelect) + " WHERE id = $1 OR name = $1 ORDER BY id = $1 DESC LIMIT 1",
      {idOrName}, [&](const store::Row& row) { found = readRow(row); });
  if (!status.ok()) return status.error();
  if (!found) {
    return makeError(ErrorCode::kNotFound, "no dataset \"" + idOrName + "\"",
                     {{"dataset", idOrName}});
  }
  return std::move(*found);
}

Result<std::vector<DatasetInfo>> DatasetStore::list() const {
  std::vector<DatasetInfo> all;
  Status status = connection_->query(std::string(kSelect) + " ORDER BY created_at, rowid", {},
                                     [&](const store::Row& row) {
                                       Result<DatasetInfo> info = readRow(row);
                                       if (info.ok()) all.push_back(std::move(info).value());
                                     });
  if (!status.ok()) return status.error();
  return all;
}

}  // namespace deviceops::training
