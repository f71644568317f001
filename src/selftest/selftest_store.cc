#include "selftest/selftest_store.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "store/migrations.h"

namespace deviceops::selftest {
namespace {

const store::MigrationLog& selfTestLog() {
  static const store::MigrationLog kLog{
      "selftest_schema_version", store::MigrationLog::AppliedAt::kIso8601Text, "self-test store"};
  return kLog;
}

const std::vector<store::Migration>& selfTestMigrations() {
  static const std::vector<store::Migration> kMigrations = {
      {1, "self-test runs and figures",
       "CREATE TABLE selftest_runs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_ms BIGINT "
       "NOT NULL, state TEXT NOT NULL, devices TEXT NOT NULL, record TEXT NOT NULL);"
       "CREATE INDEX selftest_runs_created ON selftest_runs (created_ms);"
       "CREATE TABLE selftest_figures (run_id TEXT NOT NULL, device_id TEXT NOT NULL, test TEXT "
       "NOT NULL, figure TEXT NOT NULL, value DOUBLE PRECISION NOT NULL, created_ms BIGINT NOT "
       "NULL);"
       "CREATE INDEX selftest_figures_key ON selftest_figures (device_id, test, figure, "
       "created_ms);"},
  };
  return kMigrations;
}

std::int64_t millis(SystemTime time) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

// ",cpu0,sim-1," so that one device matches with LIKE '%,id,%'.
std::string deviceList(const std::vector<std::string>& devices) {
  std::string joined = ",";
  for (const std::string& device : devices) joined += device + ",";
  return joined;
}

}  // namespace

Result<std::unique_ptr<SelfTestStore>> SelfTestStore::open(
    std::unique_ptr<store::Connection> connection) {
  RETURN_IF_ERROR(store::migrate(*connection, selfTestMigrations(), selfTestLog()));
  return std::unique_ptr<SelfTestStore>(new SelfTestStore(std::move(connection)));
}

Status SelfTestStore::save(const RunRecord& run) {
  Result<std::uint64_t> saved = connection_->execute(
      "INSERT INTO selftest_runs (id, kind, created_ms, state, devices, record) VALUES ($1, $2, "
      "$3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET state = excluded.state, record = "
      "excluded.record",
      {run.id, std::string(runKindName(run.request.kind)), millis(run.createdAt),
       std::string(runStateName(run.state)), deviceList(run.devices), toJson(run).dump()});
  if (!saved.ok()) return saved.error();
  return Status::success();
}

Status SelfTestStore::saveFigures(const RunRecord& run) {
  const std::int64_t created = millis(run.finishedAt.value_or(run.createdAt));
  return connection_->transaction([&]() -> Status {
    for (const TestResult& result : run.results) {
      for (const Figure& figure : result.figures) {
        Result<std::uint64_t> inserted = connection_->execute(
            "INSERT INTO selftest_figures (run_id, device_id, test, figure, value, created_ms) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            {run.id, result.deviceId, result.test, figure.name, figure.value, created});
        if (!inserted.ok()) return inserted.error();
      }
    }
    return Status::success();
  });
}

Result<std::vector<RunRecord>> SelfTestStore::readRuns(const std::string& sql,
                                                       const std::vector<store::Value>& params) {
  std::vector<std::string> documents;
  RETURN_IF_ERROR(connection_->query(
      sql, params, [&](const store::Row& row) { documents.push_back(row.textAt(0)); }));
  std::vector<RunRecord> runs;
  for (const std::string& document : documents) {
    nlohmann::json json = nlohmann::json::parse(document, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      spdlog::warn("self-test store: skipping a run that is not JSON");
      continue;
    }
    Result<RunRecord> run = runFromJson(json);
    if (!run.ok()) {
      spdlog::warn("self-test store: {}", run.error().message);
      continue;
    }
    runs.push_back(std::move(run.value()));
  }
  return runs;
}

Result<std::optional<RunRecord>> SelfTestStore::find(const std::string& id) {
  ASSIGN_OR_RETURN(std::vector<RunRecord> runs,
                   readRuns("SELECT record FROM selftest_runs WHERE id = $1", {id}));
  if (runs.empty()) return std::optional<RunRecord>{};
  return std::optional<RunRecord>(std::move(runs.front()));
}

Result<std::vector<RunRecord>> SelfTestStore::list(const RunFilter& filter) {
  std::string sql = "SELECT record FROM selftest_runs WHERE 1 = 1";
  std::vector<store::Value> params;
  if (filter.kind) {
    params.emplace_back(std::string(runKindName(*filter.kind)));
    sql += fmt::format(" AND kind = ${}", params.size());
  }
  if (!filter.deviceId.empty()) {
    params.emplace_back("%," + filter.deviceId + ",%");
    sql += fmt::format(" AND devices LIKE ${}", params.size());
  }
  params.emplace_back(static_cast<std::int64_t>(filter.limit));
  sql += fmt::format(" ORDER BY created_ms DESC, id DESC LIMIT ${}", params.size());
  return readRuns(sql, params);
}

Result<std::vector<double>> SelfTestStore::previousValues(const std::string& deviceId,
                                                          const std::string& test,
                                                          const std::string& figure,
                                                          std::size_t limit,
                                                          const std::string& excludeRunId) {
  std::vector<double> values;
  RETURN_IF_ERROR(connection_->query(
      "SELECT value FROM selftest_figures WHERE device_id = $1 AND test = $2 AND figure = $3 AND "
      "run_id <> $4 ORDER BY created_ms DESC LIMIT $5",
      {deviceId, test, figure, excludeRunId, static_cast<std::int64_t>(limit)},
      [&](const store::Row& row) { values.push_back(row.doubleAt(0)); }));
  return values;
}

Result<std::size_t> SelfTestStore::failUnfinished(SystemTime now) {
  ASSIGN_OR_RETURN(std::vector<RunRecord> runs,
                   readRuns("SELECT record FROM selftest_runs WHERE state IN ('queued', "
                            "'running')",
                            {}));
  for (RunRecord& run : runs) {
    run.state = RunState::kFailed;
    run.error = "interrupted by a daemon restart";
    run.finishedAt = now;
    RETURN_IF_ERROR(save(run));
  }
  return runs.size();
}

Result<std::size_t> SelfTestStore::prune(std::size_t keep) {
  ASSIGN_OR_RETURN(
      const std::uint64_t removed,
      connection_->execute(
          "DELETE FROM selftest_runs WHERE state NOT IN ('queued', 'running') AND id NOT IN "
          "(SELECT id FROM selftest_runs ORDER BY created_ms DESC, id DESC LIMIT $1)",
          {static_cast<std::int64_t>(keep)}));
  return static_cast<std::size_t>(removed);
}

}  // namespace deviceops::selftest
