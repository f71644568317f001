// SuiteStore: registered suites (registration, not residency), one SQLite file
// (<dataDir>/generation/suites.db) through store::Connection with its own migrations:
//   suites(id PRIMARY KEY, name UNIQUE, created_ms, record)
//   vaes(suite_id, name, created_ms, record, PRIMARY KEY (suite_id, name))
//   suite_state(suite_id PRIMARY KEY, default_vae, comparison)
// record is the definition's (or VAE's) JSON (generation::toJson); comparison is the last VAE
// comparison's JSON or NULL.
// Thread-safety: every method may be called from any thread (the Connection serialises).
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "generation/suite.h"
#include "generation/vae_record.h"
#include "store/connection.h"

namespace deviceops::generation {

struct StoredSuite {
  std::string id;
  std::chrono::system_clock::time_point createdAt;
  SuiteDefinition definition;
};

struct SuiteState {
  std::string defaultVae = std::string(kStockVae);
  nlohmann::json comparison = nullptr;
};

class SuiteStore {
 public:
  static Result<std::unique_ptr<SuiteStore>> open(const std::filesystem::path& file);
  // kConflict when the name is taken.
  Status insert(const StoredSuite& suite);
  // Removes the suite with its VAEs and state.
  Status remove(const std::string& id);
  // Oldest first; unreadable rows are logged and left out.
  Result<std::vector<StoredSuite>> list() const;

  // kConflict when the suite has a VAE of that name.
  Status insertVae(const std::string& suiteId, const VaeRecord& record);
  Status updateVae(const std::string& suiteId, const VaeRecord& record);
  Status removeVae(const std::string& suiteId, const std::string& name);
  // Oldest first; unreadable rows are logged and left out.
  Result<std::vector<VaeRecord>> listVaes(const std::string& suiteId) const;
  Status saveState(const std::string& suiteId, const SuiteState& state);
  // The defaults when nothing was saved.
  Result<SuiteState> state(const std::string& suiteId) const;

 private:
  explicit SuiteStore(std::unique_ptr<store::Connection> connection);
  const std::unique_ptr<store::Connection> connection_;
};

}  // namespace deviceops::generation
