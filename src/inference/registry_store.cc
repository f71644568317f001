#include "inference/registry_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <system_error>

#include "store/migrations.h"

namespace deviceops::inference {
namespace {

using store::Migration;

const std::vector<Migration>& registryMigrations() {
  static const std::vector<Migration> kMigrations = {
      {1, "inference models",
       "CREATE TABLE models("
       "  id TEXT PRIMARY KEY,"
       "  name TEXT NOT NULL,"
       "  version TEXT NOT NULL,"
       "  path TEXT NOT NULL,"
       "  sha256 TEXT NOT NULL,"
       "  size INTEGER NOT NULL,"
       "  options_json TEXT NOT NULL,"
       "  persist INTEGER NOT NULL,"
       "  pinned INTEGER NOT NULL,"
       "  created_at INTEGER NOT NULL);"
       "CREATE UNIQUE INDEX models_name_version ON models(name, version);"},
  };
  return kMigrations;
}

std::int64_t toMillis(SystemTime time) {
  return std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

SystemTime fromMillis(std::int64_t millis) {
  return SystemTime(
      std::chrono::duration_cast<SystemTime::duration>(std::chrono::milliseconds(millis)));
}

Status done(const Result<std::uint64_t>& changed) {
  if (!changed.ok()) return changed.error();
  return Status::success();
}

}  // namespace

RegistryStore::RegistryStore(std::unique_ptr<store::Connection> connection)
    : connection_(std::move(connection)) {}

RegistryStore::~RegistryStore() = default;

Result<std::unique_ptr<RegistryStore>> RegistryStore::open(const std::filesystem::path& file) {
  std::error_code error;
  if (file.has_parent_path()) std::filesystem::create_directories(file.parent_path(), error);
  if (error) {
    return makeError(ErrorCode::kUnavailable, fmt::format("cannot create the directory of {}: {}",
                                                          file.string(), error.message()));
  }
  Result<std::unique_ptr<store::Connection>> connection =
      store::openSqliteConnection(file.string());
  if (!connection.ok()) return connection.error();
  if (Status migrated =
          store::migrate(**connection, registryMigrations(), store::schemaMigrationsLog());
      !migrated.ok()) {
    return migrated.error();
  }
  return std::unique_ptr<RegistryStore>(new RegistryStore(std::move(connection.value())));
}

Status RegistryStore::put(const PersistedModel& model) {
  return connection_->transaction([&]() -> Status {
    Status removed = done(
        connection_->execute("DELETE FROM models WHERE (name = $1 AND version = $2) OR id = $3",
                             {model.name, model.version, model.id}));
    if (!removed.ok()) return removed;
    return done(connection_->execute(
        "INSERT INTO models(id, name, version, path, sha256, size, options_json, persist, "
        "pinned, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        {model.id, model.name, model.version, model.path, model.sha256,
         static_cast<std::int64_t>(model.sizeBytes), model.optionsJson,
         std::int64_t{model.persist ? 1 : 0}, std::int64_t{model.pinned ? 1 : 0},
         toMillis(model.createdAt)}));
  });
}

Status RegistryStore::remove(const std::string& id) {
  return done(connection_->execute("DELETE FROM models WHERE id = $1", {id}));
}

Result<std::vector<PersistedModel>> RegistryStore::list() {
  std::vector<PersistedModel> models;
  Status status = connection_->query(
      "SELECT id, name, version, path, sha256, size, options_json, persist, pinned, created_at "
      "FROM models ORDER BY created_at, id",
      {}, [&](const store::Row& row) {
        PersistedModel model;
        model.id = row.textAt(0);
        model.name = row.textAt(1);
        model.version = row.textAt(2);
        model.path = row.textAt(3);
        model.sha256 = row.textAt(4);
        model.sizeBytes = row.optionalUint64(5).value_or(0);
        model.optionsJson = row.textAt(6);
        model.persist = row.int64At(7) != 0;
        model.pinned = row.int64At(8) != 0;
        model.createdAt = fromMillis(row.int64At(9));
        models.push_back(std::move(model));
      });
  if (!status.ok()) return status.error();
  return models;
}

std::string encodeLoadOptions(const LoadRequest& request) {
  const SessionOptions& session = request.runner.session;
  nlohmann::json json = {
      {"uploaded", request.uploaded},
      {"devices", request.devices},
      {"replicas", request.replicas},
      {"owner", request.owner},
      {"runner",
       {{"instances", request.runner.instances},
        {"maxQueue", request.runner.maxQueue},
        {"batching",
         {{"enabled", request.runner.batching.enabled},
          {"maxBatchSize", request.runner.batching.maxBatchSize},
          {"maxQueueDelayMicroseconds", request.runner.batching.maxQueueDelay.count()}}},
        {"session",
         {{"provider", providerName(session.provider)},
          {"deviceOrdinal", session.deviceOrdinal},
          {"graphOptimizationLevel", session.graphOptimizationLevel},
          {"intraOpThreads", session.intraOpThreads},
          {"interOpThreads", session.interOpThreads},
          {"cpuArena", session.cpuArena},
          {"memoryPattern", session.memoryPattern}}}}},
  };
  if (request.provider) json["provider"] = providerName(*request.provider);
  if (request.keepAlive) json["keepAliveSeconds"] = request.keepAlive->count();
  if (request.memoryBytes) json["memoryBytes"] = *request.memoryBytes;
  return json.dump();
}

Result<LoadRequest> decodeLoadOptions(const std::string& text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) {
    return makeError(ErrorCode::kInvalidArgument, "stored model options are not a JSON object");
  }
  LoadRequest request;
  try {
    request.uploaded = json.value("uploaded", false);
    request.devices = json.value("devices", std::vector<std::string>{});
    request.replicas = json.value("replicas", 1);
    request.owner = json.value("owner", std::string("anonymous"));
    if (json.contains("provider")) {
      std::optional<Provider> provider = parseProvider(json["provider"].get<std::string>());
      if (!provider) return makeError(ErrorCode::kInvalidArgument, "unknown stored provider");
      request.provider = provider;
    }
    if (json.contains("keepAliveSeconds")) {
      request.keepAlive = std::chrono::seconds(json["keepAliveSeconds"].get<std::int64_t>());
    }
    if (json.contains("memoryBytes"))
      request.memoryBytes = json["memoryBytes"].get<std::uint64_t>();
    const nlohmann::json runner = json.value("runner", nlohmann::json::object());
    request.runner.instances = runner.value("instances", 1);
    request.runner.maxQueue = runner.value("maxQueue", std::size_t{256});
    const nlohmann::json batching = runner.value("batching", nlohmann::json::object());
    request.runner.batching.enabled = batching.value("enabled", false);
    request.runner.batching.maxBatchSize = batching.value("maxBatchSize", 8);
    request.runner.batching.maxQueueDelay =
        std::chrono::microseconds(batching.value("maxQueueDelayMicroseconds", std::int64_t{2000}));
    const nlohmann::json session = runner.value("session", nlohmann::json::object());
    SessionOptions& options = request.runner.session;
    if (std::optional<Provider> provider =
            parseProvider(session.value("provider", std::string("cpu")))) {
      options.provider = *provider;
    }
    options.deviceOrdinal = session.value("deviceOrdinal", 0);
    options.graphOptimizationLevel = session.value("graphOptimizationLevel", 99);
    options.intraOpThreads = session.value("intraOpThreads", 0);
    options.interOpThreads = session.value("interOpThreads", 0);
    options.cpuArena = session.value("cpuArena", true);
    options.memoryPattern = session.value("memoryPattern", true);
  } catch (const nlohmann::json::exception& error) {
    return makeError(ErrorCode::kInvalidArgument,
                     std::string("stored model options are malformed: ") + error.what());
  }
  return request;
}

}  // namespace deviceops::inference
