#include "store/sqlite.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <thread>

#include "common/testing/temp_dir.h"

namespace deviceops::store {
namespace {

namespace fs = std::filesystem;
using deviceops::testing::TempDir;

std::unique_ptr<SqliteDatabase> openOrDie(const fs::path& path) {
  Result<std::unique_ptr<SqliteDatabase>> database = SqliteDatabase::open(path);
  EXPECT_TRUE(database.ok()) << database.error().message;
  return database.ok() ? std::move(*database) : nullptr;
}

std::int64_t queryInt(SqliteDatabase& database, const std::string& sql) {
  Result<Statement> statement = database.prepare(sql);
  EXPECT_TRUE(statement.ok()) << statement.error().message;
  if (!statement.ok()) return -1;
  Result<bool> row = statement->step();
  EXPECT_TRUE(row.ok() && *row) << sql;
  return row.ok() && *row ? statement->columnInt64(0) : -1;
}

TEST(SqliteDatabaseTest, OpensWithWalAndDocumentedPragmas) {
  TempDir dir;
  auto database = openOrDie(dir.path("test.db"));
  ASSERT_NE(database, nullptr);
  Result<Statement> mode = database->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok());
  ASSERT_TRUE(*mode->step());
  EXPECT_EQ(mode->columnText(0), "wal");
  mode = database->prepare("SELECT 1");                     // release the first statement
  EXPECT_EQ(queryInt(*database, "PRAGMA synchronous"), 1);  // NORMAL
  EXPECT_EQ(queryInt(*database, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(queryInt(*database, "PRAGMA busy_timeout"), 5000);
}

TEST(SqliteDatabaseTest, BindsAndReadsEveryType) {
  TempDir dir;
  auto database = openOrDie(dir.path("test.db"));
  ASSERT_NE(database, nullptr);
  ASSERT_TRUE(database
                  ->exec("CREATE TABLE v(i INTEGER, d REAL, t TEXT, n TEXT, oi INTEGER, "
                         "ot TEXT, b INTEGER, u INTEGER)")
                  .ok());
  const std::string text = "it's \"quoted\"; DROP TABLE v; -- Größe 日本語 \xF0\x9F\x9A\x80";
  const std::string withNul("a\0b", 3);
  const std::optional<std::int64_t> someInt = -42;
  const std::optional<std::string> noText;
  {
    Result<Statement> insert = database->prepare("INSERT INTO v VALUES(?,?,?,?,?,?,?,?)");
    ASSERT_TRUE(insert.ok()) << insert.error().message;
    Status bound = insert->bindAll(std::numeric_limits<std::int64_t>::min(), 0.1, text, nullptr,
                                   someInt, noText, true, std::uint64_t{1} << 62);
    ASSERT_TRUE(bound.ok()) << bound.error().message;
    ASSERT_TRUE(insert->run().ok());
    EXPECT_EQ(insert->changes(), 1);
    ASSERT_TRUE(insert->reset().ok());
    ASSERT_TRUE(insert->bind(3, withNul).ok());
    ASSERT_TRUE(insert->bind(4, std::string()).ok());  // empty text is not NULL
    ASSERT_TRUE(insert->run().ok());
  }
  Result<Statement> select = database->prepare("SELECT * FROM v ORDER BY rowid");
  ASSERT_TRUE(select.ok());
  ASSERT_TRUE(*select->step());
  EXPECT_EQ(select->columnCount(), 8);
  EXPECT_EQ(select->columnInt64(0), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(select->columnDouble(1), 0.1);
  EXPECT_EQ(select->columnText(2), text);
  EXPECT_TRUE(select->isNull(3));
  EXPECT_EQ(select->columnOptionalText(3), std::nullopt);
  EXPECT_EQ(select->columnText(3), "");
  EXPECT_EQ(select->columnOptionalInt64(4), -42);
  EXPECT_EQ(select->columnOptionalText(5), std::nullopt);
  EXPECT_EQ(select->columnOptionalDouble(5), std::nullopt);
  EXPECT_EQ(select->columnInt64(6), 1);
  EXPECT_EQ(select->columnInt64(7), std::int64_t{1} << 62);
  ASSERT_TRUE(*select->step());
  EXPECT_EQ(select->columnText(2), withNul);
  EXPECT_FALSE(select->isNull(3));
  EXPECT_EQ(select->columnOptionalText(3), "");
  EXPECT_FALSE(*select->step());
}

TEST(SqliteDatabaseTest, RejectsUnsignedValuesAboveInt64) {
  TempDir dir;
  auto database = openOrDie(dir.path("test.db"));
  ASSERT_NE(database, nullptr);
  Result<Statement> statement = database->prepare("SELECT ?");
  ASSERT_TRUE(statement.ok());
  Status bound = statement->bind(1, std::numeric_limits<std::uint64_t>::max());
  ASSERT_FALSE(bound.ok());
  EXPECT_EQ(bound.error().code, ErrorCode::kInvalidArgument);
}

TEST(SqliteDatabaseTest, ReportsSqlErrorsWithMessageAndSql) {
  TempDir dir;
  auto database = openOrDie(dir.path("test.db"));
  ASSERT_NE(database, nullptr);
  const std::string sql = "SELECT * FROM missing_table WHERE " + std::string(200, 'x');
  Result<Statement> statement = database->prepare(sql);
  ASSERT_FALSE(statement.ok());
  EXPECT_EQ(statement.error().code, ErrorCode::kInternal);
  EXPECT_NE(statement.error().message.find("no such table: missing_table"), std::string::npos);
  EXPECT_EQ(statement.error().details.at("sql"), sql.substr(0, 80));

  ASSERT_TRUE(database->exec("CREATE TABLE u(k TEXT PRIMARY KEY)").ok());
  ASSERT_TRUE(database->exec("INSERT INTO u VALUES('a')").ok());
  Status duplicate = database->exec("INSERT INTO u VALUES('a')");
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
}

TEST(SqliteDatabaseTest, TransactionCommitsOrRollsBack) {
  TempDir dir;
  auto database = openOrDie(dir.path("test.db"));
  ASSERT_NE(database, nullptr);
  ASSERT_TRUE(database->exec("CREATE TABLE t(x INTEGER)").ok());

  Status committed =
      database->transaction([&] { return database->exec("INSERT INTO t VALUES(1)"); });
  ASSERT_TRUE(committed.ok());

  Status failed = database->transaction([&]() -> Status {
    if (Status inserted = database->exec("INSERT INTO t VALUES(2)"); !inserted.ok())
      return inserted;
    return makeError(ErrorCode::kConflict, "changed my mind");
  });
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().message, "changed my mind");

  Status threw = database->transaction([&]() -> Status {
    (void)database->exec("INSERT INTO t VALUES(3)");
    throw std::runtime_error("boom");
  });
  ASSERT_FALSE(threw.ok());
  EXPECT_EQ(threw.error().code, ErrorCode::kInternal);

  // A failing inner transaction undoes only its own work.
  Status nested = database->transaction([&]() -> Status {
    if (Status s = database->exec("INSERT INTO t VALUES(4)"); !s.ok()) return s;
    Status inner = database->transaction([&]() -> Status {
      (void)database->exec("INSERT INTO t VALUES(5)");
      return makeError(ErrorCode::kInternal, "inner");
    });
    EXPECT_FALSE(inner.ok());
    return Status::success();
  });
  ASSERT_TRUE(nested.ok()) << nested.error().message;

  Result<Statement> all =
      database->prepare("SELECT group_concat(x) FROM (SELECT x FROM t ORDER BY x)");
  ASSERT_TRUE(all.ok());
  ASSERT_TRUE(*all->step());
  EXPECT_EQ(all->columnText(0), "1,4");
}

TEST(SqliteDatabaseTest, GarbageFileIsACleanError) {
  TempDir dir;
  const fs::path path = dir.path("garbage.db");
  {
    std::mt19937 random(12345);  // fixed seed: deterministic bytes
    std::ofstream out(path, std::ios::binary);
    for (int i = 0; i < 100; ++i) out.put(static_cast<char>(random() & 0xff));
  }
  Result<std::unique_ptr<SqliteDatabase>> database = SqliteDatabase::open(path);
  ASSERT_FALSE(database.ok());
  EXPECT_EQ(database.error().code, ErrorCode::kInternal);
  EXPECT_NE(database.error().message.find("not a valid SQLite database"), std::string::npos)
      << database.error().message;
  EXPECT_EQ(database.error().details.at("path"), path.string());
  EXPECT_EQ(fs::file_size(path), 100u);  // left as it was, for the operator to inspect
}

TEST(SqliteDatabaseTest, MissingDirectoryIsUnavailable) {
  TempDir dir;
  Result<std::unique_ptr<SqliteDatabase>> database =
      SqliteDatabase::open(dir.path("no/such/dir/test.db"));
  ASSERT_FALSE(database.ok());
  EXPECT_EQ(database.error().code, ErrorCode::kUnavailable);
}

TEST(SqliteDatabaseTest, ManyThreadsShareOneConnection) {
  TempDir dir;
  auto database = openOrDie(dir.path("test.db"));
  ASSERT_NE(database, nullptr);
  ASSERT_TRUE(database->exec("CREATE TABLE rows(thread INTEGER, i INTEGER)").ok());
  constexpr int kThreads = 8;
  constexpr int kRowsPerThread = 1000;
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRowsPerThread; ++i) {
        // Alternate the two entry points: a prepared insert and a one-row transaction.
        Status inserted = (i % 2 == 0) ? [&]() -> Status {
          Result<Statement> insert = database->prepare("INSERT INTO rows VALUES(?, ?)");
          if (!insert.ok()) return insert.error();
          if (Status bound = insert->bindAll(t, i); !bound.ok()) return bound;
          return insert->run();
        }()
            : database->transaction([&] {
                return database->exec("INSERT INTO rows VALUES(" + std::to_string(t) + ", " +
                                      std::to_string(i) + ")");
              });
        if (!inserted.ok()) ++failures[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[t], 0) << "thread " << t;
  EXPECT_EQ(queryInt(*database, "SELECT COUNT(*) FROM rows"), kThreads * kRowsPerThread);
  EXPECT_EQ(queryInt(*database, "SELECT COUNT(DISTINCT thread * 10000 + i) FROM rows"),
            kThreads * kRowsPerThread);
}

}  // namespace
}  // namespace deviceops::store
