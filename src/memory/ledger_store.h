// Persistence of the memory ledger. The SQLite implementation lives in the data directory
// (deviceops.db, WAL mode); later a PostgreSQL one may share the same interface.
//
// Contract: every method is durable when it returns OK (a crash right after loses nothing that
// was acknowledged). Thread-safety: implementations serialize calls internally.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "common/result.h"
#include "memory/allocation.h"

namespace deviceops::memory {

struct AllocationFilter {
  std::optional<std::string> deviceId;
  std::optional<std::string> label;
  std::optional<AllocationKind> kind;
  std::optional<AllocationState> state;
  std::size_t limit = 1000;  // newest first
};

class LedgerStore {
 public:
  virtual ~LedgerStore() = default;
  virtual Status insert(const AllocationRecord& record) = 0;
  // Marks a held record released. kNotFound if there is no held record with that id.
  virtual Status markReleased(const std::string& id, SystemTime at, const std::string& reason) = 0;
  virtual Result<std::vector<AllocationRecord>> list(const AllocationFilter& filter) = 0;
  virtual Result<std::optional<AllocationRecord>> find(const std::string& id) = 0;
  // Start-up reconciliation: every record still "held" belongs to a previous process whose
  // memory the OS or driver has already reclaimed: mark them released with `reason`.
  // Returns how many were reconciled.
  virtual Result<std::size_t> releaseAllHeld(SystemTime at, const std::string& reason) = 0;
};

// Opens (creating if needed) <dataDir>/deviceops.db and applies migrations.
Result<std::unique_ptr<LedgerStore>> openSqliteLedgerStore(const std::filesystem::path& dataDir);

}  // namespace deviceops::memory
