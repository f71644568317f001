#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "common/testing/temp_dir.h"
#include "memory/ledger_store.h"

namespace deviceops::memory {
namespace {

namespace fs = std::filesystem;
using deviceops::testing::TempDir;
using std::chrono::milliseconds;

// Times are stored at millisecond precision, so test times are whole milliseconds.
SystemTime at(std::int64_t millis) { return SystemTime(milliseconds(millis)); }

AllocationRecord makeRecord(std::string id, std::int64_t createdMs) {
  AllocationRecord record;
  record.id = std::move(id);
  record.deviceId = "pci-0000:01:00.0";
  record.bytes = 1 << 20;
  record.kind = AllocationKind::kRaw;
  record.label = "scratch";
  record.owner = "anonymous";
  record.createdAt = at(createdMs);
  return record;
}

void expectSameRecord(const AllocationRecord& actual, const AllocationRecord& expected) {
  EXPECT_EQ(actual.id, expected.id);
  EXPECT_EQ(actual.deviceId, expected.deviceId);
  EXPECT_EQ(actual.bytes, expected.bytes);
  EXPECT_EQ(actual.kind, expected.kind);
  EXPECT_EQ(actual.label, expected.label);
  EXPECT_EQ(actual.owner, expected.owner);
  EXPECT_EQ(actual.createdAt, expected.createdAt);
  EXPECT_EQ(actual.expiresAt, expected.expiresAt);
  EXPECT_EQ(actual.pinned, expected.pinned);
  EXPECT_EQ(actual.simulated, expected.simulated);
  EXPECT_EQ(actual.state, expected.state);
  EXPECT_EQ(actual.releasedAt, expected.releasedAt);
  EXPECT_EQ(actual.releaseReason, expected.releaseReason);
}

std::unique_ptr<LedgerStore> openOrDie(const fs::path& dir) {
  Result<std::unique_ptr<LedgerStore>> store = openSqliteLedgerStore(dir);
  EXPECT_TRUE(store.ok()) << store.error().message;
  return store.ok() ? std::move(*store) : nullptr;
}

std::optional<AllocationRecord> findOrDie(LedgerStore& store, const std::string& id) {
  Result<std::optional<AllocationRecord>> found = store.find(id);
  EXPECT_TRUE(found.ok()) << found.error().message;
  return found.ok() ? *found : std::nullopt;
}

std::vector<std::string> listIds(LedgerStore& store, const AllocationFilter& filter) {
  Result<std::vector<AllocationRecord>> records = store.list(filter);
  EXPECT_TRUE(records.ok()) << records.error().message;
  std::vector<std::string> ids;
  if (records.ok()) {
    for (const AllocationRecord& record : *records) ids.push_back(record.id);
  }
  return ids;
}

TEST(SqliteLedgerStoreTest, CreatesTheDataDirectoryAndDatabaseFile) {
  TempDir dir;
  auto store = openOrDie(dir.root() / "nested" / "data");
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::exists(dir.root() / "nested" / "data" / "deviceops.db"));
}

TEST(SqliteLedgerStoreTest, RoundTripsEveryField) {
  TempDir dir;
  AllocationRecord full = makeRecord("alloc-00000000000000aa", 1'764'237'600'123);
  full.bytes = (std::uint64_t{1} << 40) + 7;
  full.kind = AllocationKind::kTraining;
  full.label = "réseau 日本 \"quoted\" 'x' 🚀";
  full.owner = "job-42";
  full.expiresAt = at(1'764'237'660'456);
  full.pinned = true;
  full.simulated = true;
  full.state = AllocationState::kReleased;
  full.releasedAt = at(1'764'237'700'000);
  full.releaseReason = "freed";
  AllocationRecord minimal = makeRecord("alloc-00000000000000bb", 0);
  minimal.label = "";
  minimal.bytes = 0;
  {
    auto store = openOrDie(dir.root());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->insert(full).ok());
    ASSERT_TRUE(store->insert(minimal).ok());
  }
  auto store = openOrDie(dir.root());
  ASSERT_NE(store, nullptr);
  std::optional<AllocationRecord> readFull = findOrDie(*store, full.id);
  ASSERT_TRUE(readFull.has_value());
  expectSameRecord(*readFull, full);
  std::optional<AllocationRecord> readMinimal = findOrDie(*store, minimal.id);
  ASSERT_TRUE(readMinimal.has_value());
  EXPECT_FALSE(readMinimal->expiresAt.has_value());
  EXPECT_FALSE(readMinimal->releasedAt.has_value());
  expectSameRecord(*readMinimal, minimal);
  EXPECT_FALSE(findOrDie(*store, "alloc-unknown").has_value());
}

TEST(SqliteLedgerStoreTest, RejectsDuplicateIdsAndOversizedBytes) {
  TempDir dir;
  auto store = openOrDie(dir.root());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->insert(makeRecord("alloc-1", 1)).ok());
  Status duplicate = store->insert(makeRecord("alloc-1", 2));
  ASSERT_FALSE(duplicate.ok());
  EXPECT_EQ(duplicate.error().code, ErrorCode::kConflict);
  AllocationRecord huge = makeRecord("alloc-2", 3);
  huge.bytes = std::numeric_limits<std::uint64_t>::max();
  Status tooBig = store->insert(huge);
  ASSERT_FALSE(tooBig.ok());
  EXPECT_EQ(tooBig.error().code, ErrorCode::kInvalidArgument);
  EXPECT_FALSE(findOrDie(*store, "alloc-2").has_value());
}

TEST(SqliteLedgerStoreTest, FiltersAloneAndCombinedNewestFirst) {
  TempDir dir;
  auto store = openOrDie(dir.root());
  ASSERT_NE(store, nullptr);
  // id, device, kind, label, state, created
  struct Row {
    const char* id;
    const char* device;
    AllocationKind kind;
    const char* label;
    AllocationState state;
    std::int64_t created;
  };
  const Row rows[] = {
      {"a", "gpu0", AllocationKind::kRaw, "x", AllocationState::kHeld, 100},
      {"b", "gpu0", AllocationKind::kModel, "y", AllocationState::kReleased, 200},
      {"c", "gpu1", AllocationKind::kRaw, "y", AllocationState::kHeld, 300},
      {"d", "gpu1", AllocationKind::kTraining, "x", AllocationState::kReleased, 400},
      {"e", "gpu0", AllocationKind::kRaw, "y", AllocationState::kHeld, 500},
      {"f", "gpu0", AllocationKind::kRaw, "y", AllocationState::kHeld, 500},  // same time as e
  };
  for (const Row& row : rows) {
    AllocationRecord record = makeRecord(row.id, row.created);
    record.deviceId = row.device;
    record.kind = row.kind;
    record.label = row.label;
    record.state = row.state;
    if (row.state == AllocationState::kReleased) {
      record.releasedAt = at(row.created + 1);
      record.releaseReason = "freed";
    }
    ASSERT_TRUE(store->insert(record).ok());
  }
  using Kind = AllocationKind;
  using State = AllocationState;
  struct Case {
    std::optional<std::string> deviceId;
    std::optional<std::string> label;
    std::optional<Kind> kind;
    std::optional<State> state;
    std::size_t limit;
    std::vector<std::string> expected;
  };
  const Case cases[] = {
      {{}, {}, {}, {}, 1000, {"f", "e", "d", "c", "b", "a"}},  // equal times: later insert first
      {"gpu1", {}, {}, {}, 1000, {"d", "c"}},
      {{}, "x", {}, {}, 1000, {"d", "a"}},
      {{}, {}, Kind::kRaw, {}, 1000, {"f", "e", "c", "a"}},
      {{}, {}, {}, State::kReleased, 1000, {"d", "b"}},
      {"gpu0", {}, {}, State::kHeld, 1000, {"f", "e", "a"}},
      {"gpu0", "y", Kind::kRaw, State::kHeld, 1000, {"f", "e"}},
      {"gpu1", {}, Kind::kModel, {}, 1000, {}},
      {"gpu9", {}, {}, {}, 1000, {}},
      {{}, {}, {}, {}, 2, {"f", "e"}},
      {{}, {}, {}, State::kHeld, 3, {"f", "e", "c"}},
      {{}, {}, {}, {}, 0, {}},
  };
  for (std::size_t i = 0; i < std::size(cases); ++i) {
    SCOPED_TRACE("case " + std::to_string(i));
    AllocationFilter filter;
    filter.deviceId = cases[i].deviceId;
    filter.label = cases[i].label;
    filter.kind = cases[i].kind;
    filter.state = cases[i].state;
    filter.limit = cases[i].limit;
    EXPECT_EQ(listIds(*store, filter), cases[i].expected);
  }
}

TEST(SqliteLedgerStoreTest, MarkReleasedOnlyOnceAndOnlyHeld) {
  TempDir dir;
  auto store = openOrDie(dir.root());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->insert(makeRecord("alloc-1", 10)).ok());
  ASSERT_TRUE(store->markReleased("alloc-1", at(20), "freed").ok());
  Status again = store->markReleased("alloc-1", at(30), "expired");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::kNotFound);
  Status unknown = store->markReleased("alloc-none", at(30), "freed");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);

  std::optional<AllocationRecord> record = findOrDie(*store, "alloc-1");
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->state, AllocationState::kReleased);
  EXPECT_EQ(record->releasedAt, at(20));  // the second call changed nothing
  EXPECT_EQ(record->releaseReason, "freed");
}

TEST(SqliteLedgerStoreTest, ReleaseAllHeldAfterRestart) {
  TempDir dir;
  {
    auto store = openOrDie(dir.root());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->insert(makeRecord("held-1", 1)).ok());
    ASSERT_TRUE(store->insert(makeRecord("held-2", 2)).ok());
    ASSERT_TRUE(store->insert(makeRecord("gone-1", 3)).ok());
    ASSERT_TRUE(store->markReleased("gone-1", at(4), "freed").ok());
  }
  auto store = openOrDie(dir.root());
  ASSERT_NE(store, nullptr);
  Result<std::size_t> reconciled = store->releaseAllHeld(at(1000), "restart");
  ASSERT_TRUE(reconciled.ok()) << reconciled.error().message;
  EXPECT_EQ(*reconciled, 2u);
  for (const char* id : {"held-1", "held-2"}) {
    std::optional<AllocationRecord> record = findOrDie(*store, id);
    ASSERT_TRUE(record.has_value()) << id;
    EXPECT_EQ(record->state, AllocationState::kReleased);
    EXPECT_EQ(record->releasedAt, at(1000));
    EXPECT_EQ(record->releaseReason, "restart");
  }
  std::optional<AllocationRecord> untouched = findOrDie(*store, "gone-1");
  ASSERT_TRUE(untouched.has_value());
  EXPECT_EQ(untouched->releasedAt, at(4));
  EXPECT_EQ(untouched->releaseReason, "freed");
  EXPECT_EQ(*store->releaseAllHeld(at(2000), "restart"), 0u);
}

TEST(SqliteLedgerStoreTest, SurvivesDestructionWithoutClose) {
  TempDir dir;
  {
    auto store = openOrDie(dir.root());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->insert(makeRecord("alloc-1", 1)).ok());
  }  // only the destructor runs
  auto store = openOrDie(dir.root());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(findOrDie(*store, "alloc-1").has_value());
}

// The child opens the store, inserts, and ends with _exit(0): no destructors, no checkpoint.
TEST(SqliteLedgerStoreTest, SurvivesChildExitingWithoutCleanup) {
  TempDir dir;
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Result<std::unique_ptr<LedgerStore>> store = openSqliteLedgerStore(dir.root());
    if (!store.ok()) ::_exit(2);
    if (!(*store)->insert(makeRecord("alloc-child", 1)).ok()) ::_exit(3);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  // The commit is only in the WAL: reopening must recover it from there.
  EXPECT_GT(fs::file_size(dir.root() / "deviceops.db-wal"), 0u);
  auto store = openOrDie(dir.root());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(findOrDie(*store, "alloc-child").has_value());
}

// kill -9 right after insert() returned.
TEST(SqliteLedgerStoreTest, SurvivesSigkillAfterInsertReturns) {
  TempDir dir;
  int pipeFds[2];
  ASSERT_EQ(::pipe(pipeFds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipeFds[0]);
    Result<std::unique_ptr<LedgerStore>> store = openSqliteLedgerStore(dir.root());
    const char done =
        (store.ok() && (*store)->insert(makeRecord("alloc-killed", 1)).ok()) ? 'y' : 'n';
    if (::write(pipeFds[1], &done, 1) != 1) ::_exit(2);
    for (;;) ::pause();
  }
  ::close(pipeFds[1]);
  char done = 0;
  const ssize_t got = ::read(pipeFds[0], &done, 1);
  ::close(pipeFds[0]);
  ::kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_EQ(got, 1);
  ASSERT_EQ(done, 'y');
  EXPECT_TRUE(WIFSIGNALED(status));
  auto store = openOrDie(dir.root());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(findOrDie(*store, "alloc-killed").has_value());
}

}  // namespace
}  // namespace deviceops::memory
