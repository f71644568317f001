// The one migration runner, run against both engines: SQLite (a temp file) and PostgreSQL 15 (a
// server this test process starts; a fresh database per test).
#include "store/migrations.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>

#include "common/testing/temp_dir.h"
#include "store/testing/shared_postgres.h"

namespace deviceops::store {
namespace {

const std::vector<Migration> kTwoMigrations = {
    {1, "things", "CREATE TABLE things(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"},
    {2, "thing sizes", "ALTER TABLE things ADD COLUMN size INTEGER;"},
};

class SqliteEngine {
 public:
  Result<std::unique_ptr<Connection>> open() {
    return openSqliteConnection((directory_.root() / "test.db").string());
  }

 private:
  testing::TempDir directory_;
};

using deviceops::testing::sharedPostgres;

class PostgresEngine {
 public:
  PostgresEngine() {
    static std::atomic<int> counter{0};
    deviceops::testing::PostgresServer* server = sharedPostgres();
    if (server == nullptr) return;
    Result<std::string> created = server->createDatabase(
        "migrations_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    if (!created.ok()) {
      ADD_FAILURE() << created.error().message;
      return;
    }
    connection_ = *created;
  }
  Result<std::unique_ptr<Connection>> open() {
    if (connection_.empty()) return makeError(ErrorCode::kUnavailable, "no PostgreSQL server");
    return openPostgresConnection(connection_);
  }

 private:
  std::string connection_;
};

template <class Engine>
class MigrationsTest : public ::testing::Test {
 protected:
  std::unique_ptr<Connection> open() {
    auto connection = engine_.open();
    EXPECT_TRUE(connection.ok()) << (connection.ok() ? "" : connection.error().message);
    return connection.ok() ? std::move(connection.value()) : nullptr;
  }
  static std::int64_t count(Connection& connection, const std::string& sql) {
    std::int64_t value = -1;
    Status status = connection.query(sql, {}, [&](const Row& row) { value = row.int64At(0); });
    EXPECT_TRUE(status.ok()) << (status.ok() ? "" : status.error().message);
    return value;
  }
  Engine engine_;
};

using Engines = ::testing::Types<SqliteEngine, PostgresEngine>;
class EngineNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return std::is_same_v<T, SqliteEngine> ? "Sqlite" : "Postgres";
  }
};
TYPED_TEST_SUITE(MigrationsTest, Engines, EngineNames);

TYPED_TEST(MigrationsTest, AppliesMigrationsOnceAcrossReopen) {
  {
    auto connection = this->open();
    ASSERT_NE(connection, nullptr);
    EXPECT_EQ(*schemaVersion(*connection, schemaMigrationsLog()), 0);
    ASSERT_TRUE(migrate(*connection, kTwoMigrations, schemaMigrationsLog()).ok());
    EXPECT_EQ(*schemaVersion(*connection, schemaMigrationsLog()), 2);
    ASSERT_TRUE(
        connection->executeScript("INSERT INTO things(id, name, size) VALUES(1, 'a', 1)").ok());
  }
  auto connection = this->open();
  ASSERT_NE(connection, nullptr);
  // Re-running migration 1 would fail ("table things already exists") and 2 would add a
  // duplicate column: success means nothing was re-applied.
  Status again = migrate(*connection, kTwoMigrations, schemaMigrationsLog());
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(this->count(*connection, "SELECT COUNT(*) FROM schema_migrations"), 2);
  EXPECT_EQ(this->count(*connection, "SELECT COUNT(*) FROM things"), 1);
  std::string name, appliedAt;
  ASSERT_TRUE(connection
                  ->query("SELECT name, applied_at FROM schema_migrations WHERE version = 1", {},
                          [&](const Row& row) {
                            name = row.textAt(0);
                            appliedAt = row.textAt(1);
                          })
                  .ok());
  EXPECT_EQ(name, "things");
  EXPECT_EQ(appliedAt.size(), std::string("2026-11-27T10:00:00.123Z").size()) << appliedAt;
  EXPECT_EQ(appliedAt.back(), 'Z');
}

TYPED_TEST(MigrationsTest, FailingMigrationRollsBackAndKeepsVersion) {
  auto connection = this->open();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(migrate(*connection, {kTwoMigrations[0]}, schemaMigrationsLog()).ok());
  std::vector<Migration> broken = {
      kTwoMigrations[0],
      {2, "half done", "CREATE TABLE extra(x INTEGER); INSERT INTO no_such_table VALUES(1);"},
  };
  Status migrated = migrate(*connection, broken, schemaMigrationsLog());
  ASSERT_FALSE(migrated.ok());
  EXPECT_EQ(migrated.error().code, ErrorCode::kInternal);
  EXPECT_NE(migrated.error().message.find("half done"), std::string::npos);
  EXPECT_NE(migrated.error().message.find("no_such_table"), std::string::npos);
  EXPECT_EQ(*schemaVersion(*connection, schemaMigrationsLog()), 1);
  EXPECT_FALSE(connection->query("SELECT COUNT(*) FROM extra", {}, [](const Row&) {}).ok());
}

TYPED_TEST(MigrationsTest, RefusesSchemaNewerThanTheCode) {
  auto connection = this->open();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(migrate(*connection, kTwoMigrations, schemaMigrationsLog()).ok());
  Status migrated = migrate(*connection, {kTwoMigrations[0]}, schemaMigrationsLog());
  ASSERT_FALSE(migrated.ok());
  EXPECT_EQ(migrated.error().code, ErrorCode::kConflict);
  EXPECT_NE(migrated.error().message.find(
                "database schema version 2 is newer than this deviceopsd supports (1)"),
            std::string::npos)
      << migrated.error().message;
}

TYPED_TEST(MigrationsTest, RejectsDuplicateMigrationVersions) {
  auto connection = this->open();
  ASSERT_NE(connection, nullptr);
  Status migrated =
      migrate(*connection, {kTwoMigrations[0], kTwoMigrations[0]}, schemaMigrationsLog());
  ASSERT_FALSE(migrated.ok());
  EXPECT_EQ(migrated.error().code, ErrorCode::kInternal);
  EXPECT_EQ(*schemaVersion(*connection, schemaMigrationsLog()), 0);
}

TYPED_TEST(MigrationsTest, StopsAtTheRequestedVersion) {
  auto connection = this->open();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(migrate(*connection, kTwoMigrations, schemaVersionLog(), 1).ok());
  EXPECT_EQ(*schemaVersion(*connection, schemaVersionLog()), 1);
  ASSERT_TRUE(migrate(*connection, kTwoMigrations, schemaVersionLog()).ok());
  EXPECT_EQ(*schemaVersion(*connection, schemaVersionLog()), 2);
  // schema_version records milliseconds since the epoch (after 2020-01-01).
  EXPECT_GT(this->count(*connection, "SELECT MIN(applied_at_ms) FROM schema_version"),
            1'577'836'800'000);
}

// Databases written by the runners this one replaced open unchanged: their log tables, created
// and filled as those runners did, are read and extended, and nothing recorded is re-applied.
TYPED_TEST(MigrationsTest, ContinuesTheLogsOfEarlierBuilds) {
  auto connection = this->open();
  ASSERT_NE(connection, nullptr);
  ASSERT_TRUE(
      connection
          ->executeScript(
              "CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY,"
              " name TEXT NOT NULL, applied_at TEXT NOT NULL);"
              "INSERT INTO schema_migrations VALUES(1, 'things', '2026-11-27T10:00:00.123Z');"
              "CREATE TABLE things(id INTEGER PRIMARY KEY, name TEXT NOT NULL);"
              "CREATE TABLE schema_version(version INTEGER PRIMARY KEY,"
              " name TEXT NOT NULL, applied_at_ms BIGINT NOT NULL);"
              "INSERT INTO schema_version VALUES(1, 'gadgets', 1764237600123);"
              "CREATE TABLE gadgets(id INTEGER PRIMARY KEY);")
          .ok());
  Status things = migrate(*connection, kTwoMigrations, schemaMigrationsLog());
  ASSERT_TRUE(things.ok()) << things.error().message;
  EXPECT_EQ(*schemaVersion(*connection, schemaMigrationsLog()), 2);
  const std::vector<Migration> gadgets = {
      {1, "gadgets", "CREATE TABLE gadgets(id INTEGER PRIMARY KEY);"},
      {2, "gadget names", "ALTER TABLE gadgets ADD COLUMN name TEXT;"},
  };
  Status gadgetsMigrated = migrate(*connection, gadgets, schemaVersionLog());
  ASSERT_TRUE(gadgetsMigrated.ok()) << gadgetsMigrated.error().message;
  EXPECT_EQ(*schemaVersion(*connection, schemaVersionLog()), 2);
  EXPECT_EQ(this->count(*connection, "SELECT COUNT(*) FROM schema_version"), 2);
}

}  // namespace
}  // namespace deviceops::store
