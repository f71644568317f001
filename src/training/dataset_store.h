// DatasetStore: the rows of the dataset catalog, one SQLite file (<dataDir>/training/datasets.db)
// through the shared store::Connection, with its own migrations (recorded in schema_migrations):
//   datasets(id, name UNIQUE, format, state, missing_part, schema_json, size_bytes, sha256,
//            created_at, path)
// The files of a dataset are the DatasetCatalog's; this class only keeps the rows.
//
// Thread-safety: every method may be called from any thread; the Connection serialises calls and
// every method is one statement (atomic).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/connection.h"
#include "training/dataset_catalog.h"

namespace deviceops::training {

class DatasetStore {
 public:
  // Opens (creating if needed) `file` and migrates it; its directory must exist.
  static Result<std::unique_ptr<DatasetStore>> open(const std::filesystem::path& file);

  // kConflict when the id or the name is taken.
  Status insert(const DatasetInfo& info);
  // Updates state, missing part, schema, size, sha256 and path of the row with info.id.
  Status update(const DatasetInfo& info);
  Status remove(const std::string& id);
  // By id or name (an id match wins); kNotFound if neither matches; kInternal for a row whose
  // schema cannot be read.
  Result<DatasetInfo> find(const std::string& idOrName) const;
  // Every readable row, oldest first (rows whose schema cannot be read are left out).
  Result<std::vector<DatasetInfo>> list() const;

 private:
  explicit DatasetStore(std::unique_ptr<store::Connection> connection);
  const std::unique_ptr<store::Connection> connection_;  // thread-safe; serialises calls
};

}  // namespace deviceops::training
