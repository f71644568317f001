// JobManager's logic with a test double for the trainer (testing/fake_trainer.sh, which speaks the
// progress protocol and exits as the job's name says): outcomes from exit codes and signals,
// stop with grace and kill, resume, the queue, the ledger, persistence across a restart.
// The real trainer is exercised end to end in tests/training_test.cc.
#include "training/job_manager.h"

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "common/testing/temp_dir.h"
#include "devices/cpu/cpu_backend.h"
#include "devices/testing/allocators.h"
#include "memory/ledger_store.h"
#include "training/model_export.h"

namespace deviceops::training {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path kFakeTrainer =
    fs::path(DEVICEOPS_SOURCE_DIR) / "src/training/testing/fake_trainer.sh";

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::unique_ptr<devices::Backend>> backends;
    backends.push_back(devices::makeCpuBackend());
    inventory_ =
        std::make_unique<devices::Inventory>(std::move(backends), devices::InventoryOptions{});
    inventory_->start();
    auto store = memory::openSqliteLedgerStore(dir_.root());
    ASSERT_TRUE(store.ok()) << store.error().message;
    memory_ = std::make_unique<memory::MemoryService>(
        *inventory_, std::move(store.value()), memory::MemoryOptions{},
        devices::testing::makeCpuOrSimulatedAllocator);
    ASSERT_TRUE(memory_->start().ok());
    auto catalog = DatasetCatalog::open(dir_.root());
    ASSERT_TRUE(catalog.ok()) << catalog.error().message;
    datasets_ = std::move(catalog.value());
    const fs::path upload = dir_.path("upload.csv");
    std::ofstream(upload) << "a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n";
    auto added = datasets_->add("tiny", {}, "", upload);
    ASSERT_TRUE(added.ok()) << added.error().message;
    datasetId_ = added->id;
    open();
  }

  void TearDown() override {
    jobs_.reset();
    datasets_.reset();
    if (memory_) memory_->stop();
    if (inventory_) inventory_->stop();
  }

  void open(bool autoResume = false, int slots = 1, bool queueWhenFull = true) {
    jobs_.reset();
    TrainingOptions options;
    options.dataDir = dir_.root();
    options.trainerExecutable = kFakeTrainer;
    options.stopGrace = 5s;
    options.autoResume = autoResume;
    options.maxConcurrentJobs = slots;
    options.queueWhenFull = queueWhenFull;
    auto opened = JobManager::open(options, *datasets_, *inventory_, memory_.get(), events_);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    jobs_ = std::move(opened.value());
  }

  JobSpec spec(const std::string& mode) {
    JobSpec s;
    s.name = mode;
    s.dataset = datasetId_;
    s.model.mlp.hidden = {4};
    s.epochs = 2;
    s.loss = "cross_entropy";
    return s;
  }

  std::string submit(const std::string& mode) {
    Result<JobRecord> job = jobs_->submit(spec(mode), "tester");
    EXPECT_TRUE(job.ok()) << job.error().message;
    return job.ok() ? job->id : "";
  }

  JobRecord waitFor(const std::string& id, const std::function<bool(const JobRecord&)>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      Result<JobRecord> job = jobs_->get(id);
      if (job.ok() && done(*job)) return *job;
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "timed out waiting for " << id;
    return *jobs_->get(id);
  }

  JobRecord waitForState(const std::string& id, JobState state) {
    return waitFor(id, [state](const JobRecord& j) { return j.state == state; });
  }

  std::vector<std::string> transitionNames(const JobRecord& job) {
    std::vector<std::string> out;
    for (const Transition& t : job.transitions) out.emplace_back(jobStateName(t.state));
    return out;
  }

  testing::TempDir dir_;
  NullEventSink events_;
  std::unique_ptr<devices::Inventory> inventory_;
  std::unique_ptr<memory::MemoryService> memory_;
  std::unique_ptr<DatasetCatalog> datasets_;
  std::unique_ptr<JobManager> jobs_;
  std::string datasetId_;
};

TEST_F(JobManagerTest, CompletedJobHasItsHistoryAndReleasesItsReservation) {
  const std::string id = submit("complete");
  const JobRecord job = waitForState(id, JobState::kCompleted);
  EXPECT_EQ(transitionNames(job),
            (std::vector<std::string>{"queued", "starting", "running", "completed"}));
  EXPECT_EQ(job.progress.history.size(), 2u);
  EXPECT_EQ(job.progress.step, 10);
  EXPECT_EQ(job.progress.lastCheckpointStep, 5);
  EXPECT_NE(job.weightsPath.find("model.safetensors"), std::string::npos);
  EXPECT_EQ(job.exitCode, 0);
  EXPECT_EQ(job.spec.model.inputs, 2);
  EXPECT_EQ(job.spec.model.outputs, 2);
  Result<std::vector<std::string>> log = jobs_->logs(id, 0, 10);
  ASSERT_TRUE(log.ok());
  ASSERT_FALSE(log->empty());
  EXPECT_EQ(log->front(), "fake trainer rank 0 mode complete resume 0 omp passive")
      << "trainers get OMP_WAIT_POLICY=passive unless the environment sets a policy";
  memory::AllocationFilter filter;
  filter.kind = memory::AllocationKind::kTraining;
  auto records = memory_->list(filter);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ(records->front().state, memory::AllocationState::kReleased);
  EXPECT_EQ(records->front().bytes, job.memoryBytesPerRank);
  // Every event reached the stream, and it says the attempt ended.
  Result<EventBatch> batch = jobs_->events(id, 0, 0ms);
  ASSERT_TRUE(batch.ok());
  EXPECT_TRUE(batch->ended);
  EXPECT_EQ(batch->events.back().type, "state");
  EXPECT_EQ(batch->events.back().data.value("state", ""), "completed");
}

TEST_F(JobManagerTest, ExportIsADomainCallThatNeedsACompletedJob) {
  int served = 0;
  const ModelServer countingServer =
      [&served](const fs::path&, inference::LoadRequest) -> Result<inference::ModelInfo> {
    ++served;
    return makeError(ErrorCode::kInternal, "not reached");
  };
  Result<ExportResult> unknown = exportJobModel(*jobs_, "job-nope", {}, countingServer);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);

  const JobRecord failed = waitForState(submit("error"), JobState::kFailed);
  Result<ExportResult> refused = exportJobModel(*jobs_, failed.id, {}, countingServer);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_NE(refused.error().message.find("only completed jobs"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(served, 0) << "nothing is served before the ONNX file exists";
  EXPECT_FALSE(fs::exists(jobs_->jobDirectory(failed.id) / "model.onnx"));

  // Without inference, the server answers kUnavailable and the copy it was given is gone.
  const fs::path copy = dir_.path("copy.onnx");
  std::ofstream(copy) << "onnx";
  Result<inference::ModelInfo> unavailable = unavailableModelServer()(copy, {});
  ASSERT_FALSE(unavailable.ok());
  EXPECT_EQ(unavailable.error().code, ErrorCode::kUnavailable);
  EXPECT_FALSE(fs::exists(copy));
}

TEST_F(JobManagerTest, OutcomesComeFromExitStatusAndSignals) {
  const JobRecord crashed = waitForState(submit("crash"), JobState::kFailed);
  EXPECT_EQ(crashed.signal, 9);
  EXPECT_NE(crashed.error.find("SIGKILL"), std::string::npos) << crashed.error;

  const JobRecord refused = waitForState(submit("error"), JobState::kFailed);
  EXPECT_EQ(refused.exitCode, 2);
  EXPECT_EQ(refused.error, "dataset does not match the model");

  const JobRecord broken = waitForState(submit("exit1"), JobState::kFailed);
  EXPECT_EQ(broken.exitCode, 1);
  ASSERT_FALSE(broken.lastLogLines.empty());
  EXPECT_EQ(broken.lastLogLines.back(), "something broke in rank 0");
  // Failed without a checkpoint: resuming would start over, so it is refused.
  Result<JobRecord> resumed = jobs_->resume(broken.id);
  ASSERT_FALSE(resumed.ok());
  EXPECT_EQ(resumed.error().code, ErrorCode::kConflict);
}

TEST_F(JobManagerTest, StopCheckpointsAndResumeContinuesFromIt) {
  const std::string id = submit("slow");
  waitForState(id, JobState::kRunning);
  Result<JobRecord> stopping = jobs_->stop(id, std::nullopt);
  ASSERT_TRUE(stopping.ok());
  EXPECT_EQ(stopping->state, JobState::kStopping);
  const JobRecord stopped = waitForState(id, JobState::kStopped);
  EXPECT_EQ(stopped.progress.lastCheckpointStep, 3);
  EXPECT_NE(stopped.transitions.back().reason.find("stopped on request"), std::string::npos);
  EXPECT_FALSE(jobs_->stop(id, std::nullopt).ok()) << "a stopped job cannot be stopped again";

  ASSERT_TRUE(jobs_->resume(id).ok());
  const JobRecord running = waitForState(id, JobState::kRunning);
  EXPECT_EQ(running.attempt, 2);
  EXPECT_EQ(running.transitions.back().reason.rfind("resumed at step 5", 0), 0u)
      << running.transitions.back().reason;
  ASSERT_TRUE(jobs_->stop(id, std::nullopt).ok());
  waitForState(id, JobState::kStopped);
}

TEST_F(JobManagerTest, TrainerIgnoringSigtermIsKilledAfterTheGracePeriod) {
  const std::string id = submit("stubborn");
  waitForState(id, JobState::kRunning);
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(jobs_->stop(id, 300ms).ok());
  const JobRecord stopped = waitForState(id, JobState::kStopped);
  EXPECT_GE(std::chrono::steady_clock::now() - before, 300ms);
  EXPECT_NE(stopped.transitions.back().reason.find("killed after the stop grace period"),
            std::string::npos);
  EXPECT_EQ(stopped.signal, 9);
}

TEST_F(JobManagerTest, QueueWaitsForAFreeSlotAndStopsQueuedJobsAtOnce) {
  const std::string first = submit("slow");
  const std::string second = submit("complete");
  const std::string third = submit("complete");
  waitForState(first, JobState::kRunning);
  Result<JobRecord> queued = jobs_->get(second);
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(queued->state, JobState::kQueued);
  EXPECT_NE(queued->waitingReason.find("waiting for a slot"), std::string::npos)
      << queued->waitingReason;
  ASSERT_TRUE(jobs_->stop(third, std::nullopt).ok());
  EXPECT_EQ(jobs_->get(third)->state, JobState::kStopped);
  // The dataset is in use while jobs need it.
  Status removed = datasets_->remove(datasetId_);
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.error().code, ErrorCode::kConflict);

  ASSERT_TRUE(jobs_->stop(first, std::nullopt).ok());
  waitForState(second, JobState::kCompleted);
  EXPECT_EQ(jobs_->get(third)->state, JobState::kStopped) << "a stopped queued job never runs";
}

TEST_F(JobManagerTest, JobWhoseMemoryDoesNotFitNowWaitsOrIsRefusedAsConfigured) {
  Result<memory::DeviceMemoryStatus> cpu = memory_->status("cpu0");
  ASSERT_TRUE(cpu.ok());
  const std::uint64_t budget = cpu->budgetBytes;
  open(/*autoResume=*/false, /*slots=*/4, /*queueWhenFull=*/true);
  JobSpec big = spec("slow");
  big.memoryBytes = budget / 10 * 6;
  Result<JobRecord> first = jobs_->submit(big, "t");
  ASSERT_TRUE(first.ok());
  waitForState(first->id, JobState::kRunning);
  JobSpec second = spec("complete");
  second.memoryBytes = budget / 10 * 6;
  Result<JobRecord> waiting = jobs_->submit(second, "t");
  ASSERT_TRUE(waiting.ok());
  EXPECT_EQ(waiting->state, JobState::kQueued);
  EXPECT_EQ(waiting->waitingReason.rfind("memory: ", 0), 0u) << waiting->waitingReason;
  ASSERT_TRUE(jobs_->stop(first->id, std::nullopt).ok());
  waitForState(waiting->id, JobState::kCompleted);  // started once the first one released

  Result<JobRecord> again = jobs_->submit(big, "t");
  ASSERT_TRUE(again.ok());
  waitForState(again->id, JobState::kRunning);
  open(/*autoResume=*/false, /*slots=*/4, /*queueWhenFull=*/false);  // interrupts `again`
  ASSERT_TRUE(jobs_->resume(again->id).ok());
  waitForState(again->id, JobState::kRunning);
  const std::size_t jobsBefore = jobs_->list().size();
  Result<JobRecord> refused = jobs_->submit(second, "t");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  EXPECT_NE(refused.error().message.find("queueWhenFull"), std::string::npos);
  EXPECT_EQ(jobs_->list().size(), jobsBefore) << "a refused job leaves nothing behind";
  ASSERT_TRUE(jobs_->stop(again->id, std::nullopt).ok());
  waitForState(again->id, JobState::kStopped);
}

TEST_F(JobManagerTest, BadSubmissionsAreRefusedAndChangeNothing) {
  JobSpec unknownDataset = spec("complete");
  unknownDataset.dataset = "nope";
  EXPECT_EQ(jobs_->submit(unknownDataset, "t").error().code, ErrorCode::kInvalidArgument);
  JobSpec regression = spec("complete");
  regression.task = Task::kRegression;
  regression.loss = "mse";
  EXPECT_EQ(jobs_->submit(regression, "t").error().code, ErrorCode::kInvalidArgument)
      << "text labels cannot be regressed";
  JobSpec huge = spec("complete");
  huge.memoryBytes = 1ull << 60;
  EXPECT_EQ(jobs_->submit(huge, "t").error().code, ErrorCode::kResourceExhausted);
  JobSpec device = spec("complete");
  device.devices = {"gpu-nowhere"};
  EXPECT_EQ(jobs_->submit(device, "t").error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(jobs_->list().empty());
  EXPECT_EQ(jobs_->get("job-000000000000").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(jobs_->resume("job-000000000000").error().code, ErrorCode::kNotFound);
}

TEST_F(JobManagerTest, DaemonStopInterruptsAndAutoResumeContinuesAfterRestart) {
  const std::string id = submit("slow");
  waitForState(id, JobState::kRunning);
  jobs_->stop();  // the daemon shuts down
  Result<JobRecord> interrupted = jobs_->get(id);
  ASSERT_TRUE(interrupted.ok());
  EXPECT_EQ(interrupted->state, JobState::kInterrupted);
  EXPECT_EQ(interrupted->progress.lastCheckpointStep, 3) << "the trainer checkpointed on SIGTERM";

  open(/*autoResume=*/false);
  EXPECT_EQ(jobs_->get(id)->state, JobState::kInterrupted) << "persisted";
  open(/*autoResume=*/true);
  const JobRecord resumed = waitForState(id, JobState::kRunning);
  EXPECT_EQ(resumed.attempt, 2);
  EXPECT_EQ(resumed.transitions.back().reason.rfind("resumed at step 5", 0), 0u);
  ASSERT_TRUE(jobs_->stop(id, std::nullopt).ok());
  waitForState(id, JobState::kStopped);
  EXPECT_TRUE(jobs_->remove(id).ok());
  EXPECT_FALSE(fs::exists(dir_.root() / "training" / "jobs" / id));
  EXPECT_EQ(jobs_->get(id).error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace deviceops::training
