// RegistryStore: the persisted models of the registry (internal to the registry), one SQLite
// file (RegistryOptions::databaseFile) through the shared store::Connection, with its own
// migrations (recorded in schema_migrations):
//   models(id, name, version, path, sha256, size, options_json, persist, pinned, created_at)
// created_at is milliseconds since the Unix epoch. options_json holds what is needed to load the
// model again (encodeLoadOptions / decodeLoadOptions).
//
// Thread-safety: the Connection serialises all calls; every method is atomic (put() is one
// transaction, the others one statement).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "inference/registry.h"
#include "store/connection.h"

namespace deviceops::inference {

struct PersistedModel {
  std::string id;
  std::string name;
  std::string version;
  std::string path;
  std::string sha256;
  std::uint64_t sizeBytes = 0;
  std::string optionsJson;
  bool persist = true;
  bool pinned = false;
  SystemTime createdAt;
};

class RegistryStore {
 public:
  // Opens (creating the file and its directory if needed) and migrates.
  static Result<std::unique_ptr<RegistryStore>> open(const std::filesystem::path& file);
  ~RegistryStore();

  // Inserts or replaces the row with this id; any other row with the same name and version is
  // removed (a re-load under the same name replaces the old one).
  Status put(const PersistedModel& model);
  Status remove(const std::string& id);
  Result<std::vector<PersistedModel>> list();

 private:
  explicit RegistryStore(std::unique_ptr<store::Connection> connection);
  const std::unique_ptr<store::Connection> connection_;  // thread-safe; serialises calls
};

// The parts of a LoadRequest that are not columns of their own (devices, replicas, runner and
// session options, keepAlive, uploaded, owner, provider), as JSON text, and back. decode
// starts from a default LoadRequest; unknown keys are ignored, wrong types are kInvalidArgument.
std::string encodeLoadOptions(const LoadRequest& request);
Result<LoadRequest> decodeLoadOptions(const std::string& json);

}  // namespace deviceops::inference
