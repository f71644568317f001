// SelfTestStore: self-test runs and their figures, over a store::Connection — SQLite
// (<dataDir>/selftest.db) or the PostgreSQL database telemetry writes to, so that a fleet's
// history is queryable in one place. Runs are kept as JSON documents (run.h); every figure of a
// finished run is also a row, which is what a regression is judged against.
//
// Thread-safety: every method may be called from any thread (the Connection serialises).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "selftest/run.h"
#include "store/connection.h"

namespace deviceops::selftest {

struct RunFilter {
  std::optional<RunKind> kind;
  std::string deviceId;  // empty: any
  std::size_t limit = 50;
};

class SelfTestStore {
 public:
  // Migrates the schema (its own version table, selftest_schema_version).
  static Result<std::unique_ptr<SelfTestStore>> open(std::unique_ptr<store::Connection> connection);

  // Inserts or replaces the run.
  Status save(const RunRecord& run);
  // Records every figure of the run's results (once, when it finishes).
  Status saveFigures(const RunRecord& run);
  Result<std::optional<RunRecord>> find(const std::string& id);
  // Newest first.
  Result<std::vector<RunRecord>> list(const RunFilter& filter);
  // The values of figure `figure` of test `test` on `deviceId` in earlier finished runs, newest
  // first, at most `limit`, not counting `excludeRunId`.
  Result<std::vector<double>> previousValues(const std::string& deviceId, const std::string& test,
                                             const std::string& figure, std::size_t limit,
                                             const std::string& excludeRunId);
  // Runs left queued or running by a process that is gone become failed ("interrupted by a
  // daemon restart"). Returns how many.
  Result<std::size_t> failUnfinished(SystemTime now);
  // Deletes the oldest finished runs (and their figure rows are kept: history outlives runs)
  // beyond `keep`. Returns how many.
  Result<std::size_t> prune(std::size_t keep);

 private:
  explicit SelfTestStore(std::unique_ptr<store::Connection> connection)
      : connection_(std::move(connection)) {}
  Result<std::vector<RunRecord>> readRuns(const std::string& sql,
                                          const std::vector<store::Value>& params);

  std::unique_ptr<store::Connection> connection_;
};

}  // namespace deviceops::selftest
