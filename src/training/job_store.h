// JobStore: the persisted training jobs, one SQLite file (<dataDir>/training/jobs.db) through the
// shared store::Connection, with its own migrations (recorded in schema_migrations):
//   jobs(id PRIMARY KEY, created_ms, record)
// created_ms is milliseconds since the Unix epoch; record is the job's full JSON form
// (toJson / jobFromJson in training/job.h).
//
// Thread-safety: every method may be called from any thread; the Connection serialises calls and
// every method is one statement (atomic, durable when it returns).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "store/connection.h"
#include "training/job.h"

namespace deviceops::training {

class JobStore {
 public:
  // Opens (creating if needed) `file` and migrates it; its directory must exist.
  static Result<std::unique_ptr<JobStore>> open(const std::filesystem::path& file);

  // Inserts the job, or replaces the record of the row with its id (created_ms is kept).
  Status put(const JobRecord& job);
  Status remove(const std::string& id);
  // Every job, oldest first (created_ms, then id). A row whose record cannot be read is logged
  // and left out.
  Result<std::vector<JobRecord>> list() const;

 private:
  explicit JobStore(std::unique_ptr<store::Connection> connection);
  const std::unique_ptr<store::Connection> connection_;  // thread-safe; serialises calls
};

}  // namespace deviceops::training
