// SuiteStore: registered suites (registration, not residency), one SQLite file
// (<dataDir>/generation/suites.db) through store::Connection with its own migrations:
//   suites(id PRIMARY KEY, name UNIQUE, created_ms, record)
// record is the definition's JSON (generation::toJson(SuiteDefinition)).
// Thread-safety: every method may be called from any thread (the Connection serialises).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "generation/suite.h"
#include "store/connection.h"

namespace deviceops::generation {

struct StoredSuite {
  std::string id;
  std::chrono::system_clock::time_point createdAt;
  SuiteDefinition definition;
};

class SuiteStore {
 public:
  static Result<std::unique_ptr<SuiteStore>> open(const std::filesystem::path& file);
  // kConflict when the name is taken.
  Status insert(const StoredSuite& suite);
  Status remove(const std::string& id);
  // Oldest first; unreadable rows are logged and left out.
  Result<std::vector<StoredSuite>> list() const;

 private:
  explicit SuiteStore(std::unique_ptr<store::Connection> connection);
  const std::unique_ptr<store::Connection> connection_;
};

}  // namespace deviceops::generation
