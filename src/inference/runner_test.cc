#include "inference/runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "inference/testing/ort_test_models.h"

namespace deviceops::inference {
namespace {

using namespace std::chrono_literals;
using testing::floatTensor;
using testing::randomFloats;
using testing::testModel;

// Generous bound for "returns promptly" (the machine may be shared); never a timing assertion.
constexpr auto kHangGuard = 30s;
// slow.onnx with this many rows runs for about 25 s on 2 cores, 1 s on 16: long enough to stop it
// midway (rows of zeros cost as much as any others).
constexpr std::int64_t kSlowRows = 65536;

std::unique_ptr<ModelRunner> createOrDie(const std::string& model, const RunnerOptions& options) {
  Result<std::unique_ptr<ModelRunner>> runner = ModelRunner::create(testModel(model), options);
  EXPECT_TRUE(runner.ok()) << runner.error().message;
  return runner.ok() ? std::move(runner.value()) : nullptr;
}

RunRequest mlpRequest(std::int64_t rows, std::uint32_t seed) {
  RunRequest request;
  request.inputs.push_back(
      floatTensor("x", {rows, 16}, randomFloats(static_cast<std::size_t>(rows) * 16, seed)));
  return request;
}

RunRequest slowRequest(std::int64_t rows, std::shared_ptr<std::atomic<bool>> cancelled = nullptr) {
  RunRequest request;
  request.inputs.push_back(
      floatTensor("x", {rows, 256}, std::vector<float>(static_cast<std::size_t>(rows) * 256)));
  request.control.cancelled = std::move(cancelled);
  return request;
}

template <class Predicate>
bool eventually(Predicate predicate) {
  const auto giveUpAt = std::chrono::steady_clock::now() + kHangGuard;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > giveUpAt) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(ModelRunnerTest, RunsRequestsOnAPoolOfInstances) {
  RunnerOptions options;
  options.instances = 2;
  std::unique_ptr<ModelRunner> runner = createOrDie("mlp.onnx", options);
  ASSERT_NE(runner, nullptr);
  EXPECT_TRUE(runner->warmUp().ok());
  EXPECT_EQ(runner->metadata().inputs.at(0).name, "x");
  EXPECT_EQ(runner->options().instances, 2);
  Result<std::unique_ptr<Session>> session = Session::open(testModel("mlp.onnx"), {});
  ASSERT_TRUE(session.ok());
  for (std::int64_t rows : {1, 3, 7}) {
    RunRequest request = mlpRequest(rows, static_cast<std::uint32_t>(rows));
    Result<std::vector<Tensor>> direct = session.value()->run(request.inputs, {});
    ASSERT_TRUE(direct.ok());
    Result<RunResult> result = runner->infer(request);
    ASSERT_TRUE(result.ok()) << result.error().message;
    EXPECT_EQ(result->batchSize, 1);
    ASSERT_EQ(result->outputs.size(), 1u);
    EXPECT_EQ(result->outputs[0].shape, (std::vector<std::int64_t>{rows, 4}));
    EXPECT_EQ(result->outputs[0].data, direct.value()[0].data);
  }
  EXPECT_EQ(runner->inFlight(), 0u);
}

TEST(ModelRunnerTest, RefusesInvalidOptions) {
  RunnerOptions options;
  options.instances = 0;
  EXPECT_EQ(ModelRunner::create(testModel("mlp.onnx"), options).error().code,
            ErrorCode::kInvalidArgument);
  options.instances = 1;
  options.batching.enabled = true;
  options.batching.maxBatchSize = 0;
  EXPECT_EQ(ModelRunner::create(testModel("mlp.onnx"), options).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(ModelRunner::create(testModel("truncated.onnx"), {}).error().code,
            ErrorCode::kInvalidArgument);
}

TEST(ModelRunnerTest, BatchingNeedsADynamicFirstDimensionEverywhere) {
  RunnerOptions options;
  options.batching.enabled = true;
  // multi_io's output "count" is a scalar.
  Result<std::unique_ptr<ModelRunner>> runner =
      ModelRunner::create(testModel("multi_io.onnx"), options);
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(runner.error().message.find("'count'"), std::string::npos) << runner.error().message;
}

// 32 threads send MLP requests of 1-3 rows; with batching the results are bit-identical to
// running each request alone, and some runs really were shared.
TEST(ModelRunnerTest, BatchedResultsEqualUnbatchedUnderConcurrency) {
  constexpr int kThreads = 32;
  constexpr int kRequestsPerThread = 12;
  RunnerOptions unbatchedOptions;
  std::unique_ptr<ModelRunner> unbatched = createOrDie("mlp.onnx", unbatchedOptions);
  RunnerOptions batchedOptions;
  batchedOptions.instances = 2;
  batchedOptions.batching.enabled = true;
  batchedOptions.batching.maxBatchSize = 16;
  batchedOptions.batching.maxQueueDelay = 2ms;
  std::unique_ptr<ModelRunner> batched = createOrDie("mlp.onnx", batchedOptions);
  ASSERT_NE(unbatched, nullptr);
  ASSERT_NE(batched, nullptr);

  auto seedOf = [](int thread, int i) { return static_cast<std::uint32_t>(thread * 1000 + i); };
  auto rowsOf = [](int thread, int i) { return std::int64_t{1} + (thread + i) % 3; };
  std::vector<std::vector<std::string>> expected(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kRequestsPerThread; ++i) {
      Result<RunResult> result = unbatched->infer(mlpRequest(rowsOf(t, i), seedOf(t, i)));
      ASSERT_TRUE(result.ok()) << result.error().message;
      expected[t].push_back(result->outputs.at(0).data);
    }
  }

  std::atomic<int> sharedRuns{0};
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequestsPerThread; ++i) {
        Result<RunResult> result = batched->infer(mlpRequest(rowsOf(t, i), seedOf(t, i)));
        if (!result.ok()) {
          ++failures;
          continue;
        }
        if (result->batchSize > 1) ++sharedRuns;
        const Tensor& y = result->outputs.at(0);
        if (y.data != expected[t][i] || y.shape != std::vector<std::int64_t>{rowsOf(t, i), 4}) {
          ++mismatches;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(sharedRuns.load(), 0);
  EXPECT_EQ(batched->inFlight(), 0u);
}

TEST(ModelRunnerTest, BatchingSplitsIncompatibleRequestsAndSkipsStrings) {
  RunnerOptions options;
  options.batching.enabled = true;
  options.batching.maxBatchSize = 4;
  std::unique_ptr<ModelRunner> strings = createOrDie("strings.onnx", options);
  ASSERT_NE(strings, nullptr);
  RunRequest request;
  request.inputs.push_back(Tensor{"text", DataType::kBytes, {2}, {}, {"a", "b"}});
  request.outputs = {"upper"};
  Result<RunResult> result = strings->infer(request);
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->outputs.at(0).strings, (std::vector<std::string>{"A", "B"}));

  // A request larger than maxBatchSize still runs (alone).
  std::unique_ptr<ModelRunner> mlp = createOrDie("mlp.onnx", options);
  ASSERT_NE(mlp, nullptr);
  Result<RunResult> large = mlp->infer(mlpRequest(9, 1));
  ASSERT_TRUE(large.ok()) << large.error().message;
  EXPECT_EQ(large->outputs.at(0).shape, (std::vector<std::int64_t>{9, 4}));
}

TEST(ModelRunnerTest, CancelledWhileItsBatchFillsLeavesAtOnce) {
  RunnerOptions options;
  options.batching.enabled = true;
  options.batching.maxBatchSize = 8;
  options.batching.maxQueueDelay = 600s;  // only a full batch (or nobody left) flushes it
  std::unique_ptr<ModelRunner> runner = createOrDie("mlp.onnx", options);
  ASSERT_NE(runner, nullptr);
  RunRequest lonely = mlpRequest(1, 1);
  lonely.control.cancelled = std::make_shared<std::atomic<bool>>(false);
  auto waiting = std::async(std::launch::async, [&] { return runner->infer(lonely); });
  ASSERT_TRUE(eventually([&] { return runner->queued() == 0 && runner->inFlight() == 1; }));
  lonely.control.cancelled->store(true);
  ASSERT_EQ(waiting.wait_for(kHangGuard), std::future_status::ready);
  EXPECT_EQ(waiting.get().error().message, "cancelled: the client went away");
  ASSERT_TRUE(eventually([&] { return runner->inFlight() == 0; }));
  // A request that fills a batch by itself runs at once.
  Result<RunResult> full = runner->infer(mlpRequest(8, 2));
  ASSERT_TRUE(full.ok()) << full.error().message;
  EXPECT_EQ(full->outputs.at(0).shape, (std::vector<std::int64_t>{8, 4}));
}

TEST(ModelRunnerTest, FullQueueIsUnavailableWithRetryAfter) {
  RunnerOptions options;
  options.maxQueue = 1;
  std::unique_ptr<ModelRunner> runner = createOrDie("slow.onnx", options);
  ASSERT_NE(runner, nullptr);
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto running =
      std::async(std::launch::async, [&] { return runner->infer(slowRequest(kSlowRows, cancel)); });
  ASSERT_TRUE(eventually([&] { return runner->inFlight() == 1 && runner->queued() == 0; }));
  auto waiting =
      std::async(std::launch::async, [&] { return runner->infer(slowRequest(1, cancel)); });
  ASSERT_TRUE(eventually([&] { return runner->queued() == 1; }));

  Result<RunResult> refused = runner->infer(slowRequest(1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(refused.error().details.value("retryAfterSeconds", 0), 1);
  EXPECT_EQ(refused.error().retryAfter, std::chrono::seconds(1));  // the Retry-After header
  EXPECT_EQ(refused.error().details.value("queued", 0), 1);
  EXPECT_EQ(refused.error().details.value("maxQueue", 0), 1);

  cancel->store(true);
  ASSERT_EQ(running.wait_for(kHangGuard), std::future_status::ready);
  ASSERT_EQ(waiting.wait_for(kHangGuard), std::future_status::ready);
  EXPECT_EQ(running.get().error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(waiting.get().error().code, ErrorCode::kUnavailable);
  ASSERT_TRUE(eventually([&] { return runner->inFlight() == 0; }));
}

TEST(ModelRunnerTest, CancelledRequestsLeaveTheQueueAndStopRunning) {
  std::unique_ptr<ModelRunner> runner = createOrDie("slow.onnx", {});
  ASSERT_NE(runner, nullptr);
  auto cancelRunning = std::make_shared<std::atomic<bool>>(false);
  auto cancelQueued = std::make_shared<std::atomic<bool>>(false);
  auto running = std::async(std::launch::async,
                            [&] { return runner->infer(slowRequest(kSlowRows, cancelRunning)); });
  ASSERT_TRUE(eventually([&] { return runner->inFlight() == 1 && runner->queued() == 0; }));
  auto queued =
      std::async(std::launch::async, [&] { return runner->infer(slowRequest(4, cancelQueued)); });
  ASSERT_TRUE(eventually([&] { return runner->queued() == 1; }));

  cancelQueued->store(true);
  ASSERT_EQ(queued.wait_for(kHangGuard), std::future_status::ready);
  Result<RunResult> queuedResult = queued.get();
  ASSERT_FALSE(queuedResult.ok());
  EXPECT_EQ(queuedResult.error().message, "cancelled: the client went away");
  EXPECT_EQ(runner->queued(), 0u);
  EXPECT_EQ(running.wait_for(0s), std::future_status::timeout);  // still running

  cancelRunning->store(true);
  ASSERT_EQ(running.wait_for(kHangGuard), std::future_status::ready);
  EXPECT_EQ(running.get().error().code, ErrorCode::kUnavailable);
  // The instance is freed: the next request runs.
  ASSERT_TRUE(eventually([&] { return runner->inFlight() == 0; }));
  EXPECT_TRUE(runner->infer(slowRequest(2)).ok());
}

TEST(ModelRunnerTest, DeadlinesApplyWhileQueuedAndWhileRunning) {
  std::unique_ptr<ModelRunner> runner = createOrDie("slow.onnx", {});
  ASSERT_NE(runner, nullptr);
  // Queued behind a long run: leaves the queue at its deadline.
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto blocker =
      std::async(std::launch::async, [&] { return runner->infer(slowRequest(kSlowRows, cancel)); });
  ASSERT_TRUE(eventually([&] { return runner->inFlight() == 1 && runner->queued() == 0; }));
  RunRequest queuedRun = slowRequest(1);
  queuedRun.control.deadline = std::chrono::steady_clock::now() + 50ms;
  Result<RunResult> queued = runner->infer(queuedRun);
  ASSERT_FALSE(queued.ok());
  EXPECT_EQ(queued.error().code, ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(queued.error().message, "deadline exceeded while queued");
  cancel->store(true);
  ASSERT_EQ(blocker.wait_for(kHangGuard), std::future_status::ready);
  ASSERT_TRUE(eventually([&] { return runner->inFlight() == 0; }));

  // Running past its deadline: terminated.
  RunRequest longRun = slowRequest(kSlowRows);
  longRun.control.deadline = std::chrono::steady_clock::now() + 300ms;
  auto running = std::async(std::launch::async, [&] { return runner->infer(longRun); });
  ASSERT_EQ(running.wait_for(kHangGuard), std::future_status::ready);
  Result<RunResult> result = running.get();
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kDeadlineExceeded) << result.error().message;
  ASSERT_TRUE(eventually([&] { return runner->inFlight() == 0; }));
}

TEST(ModelRunnerTest, DestructionFailsQueuedRequestsAndWaitsForRunning) {
  std::unique_ptr<ModelRunner> runner = createOrDie("slow.onnx", {});
  ASSERT_NE(runner, nullptr);
  ModelRunner& ref = *runner;
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto running =
      std::async(std::launch::async, [&] { return ref.infer(slowRequest(kSlowRows, cancel)); });
  ASSERT_TRUE(eventually([&] { return ref.inFlight() == 1 && ref.queued() == 0; }));
  auto queued = std::async(std::launch::async, [&] { return ref.infer(slowRequest(1)); });
  ASSERT_TRUE(eventually([&] { return ref.queued() == 1; }));

  auto destroyed = std::async(std::launch::async, [&] { runner.reset(); });
  ASSERT_EQ(queued.wait_for(kHangGuard), std::future_status::ready);
  Result<RunResult> queuedResult = queued.get();
  ASSERT_FALSE(queuedResult.ok());
  EXPECT_EQ(queuedResult.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(queuedResult.error().message, "model unloading");
  EXPECT_EQ(destroyed.wait_for(50ms), std::future_status::timeout);  // waits for the running one
  cancel->store(true);
  ASSERT_EQ(running.wait_for(kHangGuard), std::future_status::ready);
  ASSERT_EQ(destroyed.wait_for(kHangGuard), std::future_status::ready);
  EXPECT_FALSE(running.get().ok());
}

}  // namespace
}  // namespace deviceops::inference
