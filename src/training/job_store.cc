#include "training/job_store.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "store/migrations.h"

namespace deviceops::training {
namespace {

const std::vector<store::Migration>& jobMigrations() {
  static const std::vector<store::Migration> kMigrations = {
      {1, "training jobs",
       "CREATE TABLE jobs (id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, record TEXT NOT "
       "NULL);"},
  };
  return kMigrations;
}

Result<JobRecord> readRecord(const std::string& text) {
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) return makeError(ErrorCode::kInternal, "not JSON");
  return jobFromJson(json);
}

}  // namespace

JobStore::JobStore(std::unique_ptr<store::Connection> connection)
    : connection_(std::move(connection)) {}

Result<std::unique_ptr<JobStore>> JobStore::open(const std::filesystem::path& file) {
  Result<std::unique_ptr<store::Connection>> connection =
      store::openSqliteConnection(file.string());
  if (!connection.ok()) return connection.error();
  if (Status migrated = store::migrate(**connection, jobMigrations(), store::schemaMigrationsLog());
      !migrated.ok()) {
    return migrated.error();
  }
  return std::unique_ptr<JobStore>(new JobStore(std::move(connection).value()));
}

Status JobStore::put(const JobRecord& job) {
  const std::int64_t created =
      std::chrono::duration_cast<std::chrono::milliseconds>(job.createdAt.time_since_epoch())
          .count();
  Result<std::uint64_t> upserted = connection_->execute(
      "INSERT INTO jobs (id, created_ms, record) VALUES ($1, $2, $3) "
      "ON CONFLICT(id) DO UPDATE SET record = excluded.record",
      {job.id, created, toJson(job).dump()});
  if (!upserted.ok()) return upserted.error();
  return Status::success();
}

Status JobStore::remove(const std::string& id) {
  Result<std::uint64_t> removed = connection_->execute("DELETE FROM jobs WHERE id = $1", {id});
  if (!removed.ok()) return removed.error();
  return Status::success();
}

Result<std::vector<JobRecord>> JobStore::list() const {
  std::vector<JobRecord> jobs;
  Status status = connection_->query(
      "SELECT record FROM jobs ORDER BY created_ms, id", {}, [&](const store::Row& row) {
        Result<JobRecord> job = readRecord(row.textAt(0));
        if (!job.ok()) {
          spdlog::error("training: skipping a stored job: {}", job.error().message);
          return;
        }
        jobs.push_back(std::move(job.value()));
      });
  if (!status.ok()) return status.error();
  return jobs;
}

}  // namespace deviceops::training
