// SelfTestStore over a real SQLite file, and the run's JSON form (what the store keeps and the
// API shows) read back field for field.
#include "selftest/selftest_store.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace deviceops::selftest {
namespace {

using namespace std::chrono_literals;

class SelfTestStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    directory = std::filesystem::temp_directory_path() /
                ("selftest-store-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(directory);
    std::filesystem::create_directories(directory);
    store = open();
  }
  void TearDown() override {
    store.reset();
    std::filesystem::remove_all(directory);
  }
  std::unique_ptr<SelfTestStore> open() {
    auto connection = store::openSqliteConnection((directory / "selftest.db").string());
    EXPECT_TRUE(connection.ok());
    auto opened = SelfTestStore::open(std::move(connection.value()));
    EXPECT_TRUE(opened.ok()) << opened.error().message;
    return std::move(opened.value());
  }

  static RunRecord run(std::string id, std::string device, double bandwidth, SystemTime created,
                       RunState state = RunState::kCompleted) {
    RunRecord record;
    record.id = std::move(id);
    record.request.kind = RunKind::kBenchmark;
    record.request.tests = {"deviceToDevice"};
    record.request.duration = 3s;
    record.devices = {device};
    record.state = state;
    record.createdAt = created;
    record.finishedAt = created + 5s;
    TestResult result;
    result.deviceId = device;
    result.test = "bandwidth.deviceToDevice";
    Figure figure;
    figure.name = "bandwidth";
    figure.value = bandwidth;
    figure.unit = "B/s";
    result.figures.push_back(figure);
    record.results.push_back(result);
    return record;
  }

  std::filesystem::path directory;
  std::unique_ptr<SelfTestStore> store;
};

TEST_F(SelfTestStoreTest, ARunReadsBackFieldForField) {
  RunRecord record;
  record.id = "run-00000000000000aa";
  record.request.kind = RunKind::kEndToEnd;
  record.request.level = Level::kLong;
  record.request.force = true;
  record.request.memoryBytes = 12345678;
  record.request.loadDuration = 7s;
  record.request.owner = "scheduler";
  record.devices = {"cpu0", "sim-1"};
  record.state = RunState::kCompleted;
  record.status = Outcome::kWarn;
  record.createdAt =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  record.startedAt = record.createdAt + 1s;
  record.finishedAt = record.createdAt + 9s;
  record.progress = {1.0, "sim-1", "telemetry.roundTrip"};
  TestResult result;
  result.deviceId = "sim-1";
  result.test = "memory.movingInversions";
  result.status = Outcome::kFail;
  result.reason = "1 word differs";
  result.durationMs = 12.5;
  result.details = {{"firstErrorOffset", 1048576}};
  Figure figure;
  figure.name = "p99";
  figure.value = 0.002;
  figure.unit = "s";
  figure.higherIsBetter = false;
  figure.peak = 3.0;
  figure.ratio = 0.5;
  figure.baselineMedian = 0.001;
  figure.baselineRuns = 4;
  figure.regression = true;
  result.figures.push_back(figure);
  record.results.push_back(result);
  ASSERT_TRUE(store->save(record).ok());

  store = open();  // a new process reads it
  auto found = store->find(record.id);
  ASSERT_TRUE(found.ok() && found->has_value());
  const RunRecord& back = **found;
  EXPECT_EQ(toJson(back), toJson(record));
  EXPECT_EQ(back.request.level, Level::kLong);
  EXPECT_EQ(back.request.loadDuration, 7s);
  EXPECT_EQ(back.request.memoryBytes, 12345678u);
  EXPECT_EQ(back.results.at(0).figures.at(0).baselineRuns, 4);
  EXPECT_EQ(back.status, Outcome::kWarn);
  EXPECT_EQ(toJson(back)["summary"],
            (nlohmann::json{{"pass", 0}, {"warn", 0}, {"fail", 1}, {"skip", 0}}));
  EXPECT_FALSE(store->find("run-ffffffffffffffff")->has_value());
}

TEST_F(SelfTestStoreTest, PreviousValuesAreTheDevicesOwnNewestFirstWithoutTheCurrentRun) {
  const auto now =
      std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  for (int i = 0; i < 5; ++i) {
    const RunRecord record =
        run("run-" + std::to_string(i), "sim-0", 100.0 + i, now + std::chrono::seconds(i));
    ASSERT_TRUE(store->save(record).ok());
    ASSERT_TRUE(store->saveFigures(record).ok());
  }
  const RunRecord other = run("run-x", "sim-1", 999, now);
  ASSERT_TRUE(store->saveFigures(other).ok());
  auto values = store->previousValues("sim-0", "bandwidth.deviceToDevice", "bandwidth", 3, "run-4");
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(*values, (std::vector<double>{103, 102, 101}));
  EXPECT_TRUE(store->previousValues("sim-0", "matmul", "flops", 10, "")->empty());

  RunFilter filter;
  filter.deviceId = "sim-0";
  filter.limit = 2;
  auto listed = store->list(filter);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ(listed->at(0).id, "run-4");  // newest first
  filter.deviceId = "sim-1";
  EXPECT_TRUE(store->list(filter)->empty());  // run-x has figures but was never saved as a run
  filter.deviceId = "sim";                    // a prefix is not a device
  EXPECT_TRUE(store->list(filter)->empty());
  filter.deviceId.clear();
  filter.kind = RunKind::kEndToEnd;
  EXPECT_TRUE(store->list(filter)->empty());
}

TEST_F(SelfTestStoreTest, UnfinishedRunsOfACrashedProcessFailAndPruningKeepsTheNewest) {
  const auto now = std::chrono::system_clock::now();
  ASSERT_TRUE(store->save(run("run-a", "cpu0", 1, now, RunState::kRunning)).ok());
  ASSERT_TRUE(store->save(run("run-b", "cpu0", 1, now + 1s, RunState::kQueued)).ok());
  ASSERT_TRUE(store->save(run("run-c", "cpu0", 1, now + 2s)).ok());
  store = open();
  auto failed = store->failUnfinished(now + 10s);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(*failed, 2u);
  const RunRecord a = **store->find("run-a");
  EXPECT_EQ(a.state, RunState::kFailed);
  EXPECT_EQ(a.error, "interrupted by a daemon restart");
  EXPECT_EQ(*store->failUnfinished(now + 20s), 0u);
  auto pruned = store->prune(1);
  ASSERT_TRUE(pruned.ok());
  EXPECT_EQ(*pruned, 2u);
  EXPECT_TRUE(store->find("run-c")->has_value());
  EXPECT_FALSE(store->find("run-a")->has_value());
}

TEST(RunJsonTest, AnUnreadableDocumentIsAnErrorNotACrash) {
  EXPECT_FALSE(runFromJson(nlohmann::json::object()).ok());
  EXPECT_FALSE(runFromJson({{"id", "run-1"}, {"kind", "nope"}, {"state", "completed"}}).ok());
  EXPECT_FALSE(runFromJson({{"id", 5}}).ok());
}

TEST(OutcomeTest, WorseOrdersPassSkipWarnFail) {
  EXPECT_EQ(worse(Outcome::kPass, Outcome::kSkip), Outcome::kSkip);
  EXPECT_EQ(worse(Outcome::kWarn, Outcome::kSkip), Outcome::kWarn);
  EXPECT_EQ(worse(Outcome::kFail, Outcome::kWarn), Outcome::kFail);
  EXPECT_EQ(parseLevel("standard"), Level::kStandard);
  EXPECT_FALSE(parseLevel("Standard").has_value());
  EXPECT_EQ(runKindName(RunKind::kBenchmark), "performance-benchmark");
}

}  // namespace
}  // namespace deviceops::selftest
