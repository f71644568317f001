#include "inference/runner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "inference/ort_run_watchdog.h"

namespace deviceops::inference {
namespace {

using Clock = std::chrono::steady_clock;

// How often a caller waiting in infer() looks at its own RunControl.
constexpr std::chrono::milliseconds kCallerPoll{5};

// One Session::run shared by the requests batched into it. When every member has given up
// (cancelled or past its deadline) `cancelled` is set and the watchdog terminates the run.
struct SharedRun {
  std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
  int liveMembers = 0;  // guarded by Impl::mutex_
};

// A request from infer() to the worker that runs it. Guarded by Impl::mutex_ except `request`,
// which the worker reads without the lock once it took the request off the queue.
struct Pending {
  RunRequest request;
  Clock::time_point enqueued = Clock::now();
  std::int64_t rows = 0;  // dimension 0 of the inputs; 0 when not batchable
  bool batchable = false;
  std::shared_ptr<SharedRun> run;  // set when a worker takes the request
  bool abandoned = false;          // the caller left (cancelled / deadline) after it was taken
  std::optional<Result<RunResult>> result;
};

std::string shapeText(const std::vector<std::int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

// Whether two batchable requests can share a run: the same inputs (names, types, every dimension
// but the first) and the same requested outputs.
bool compatible(const RunRequest& a, const RunRequest& b) {
  if (a.inputs.size() != b.inputs.size() || a.outputs != b.outputs) return false;
  for (std::size_t i = 0; i < a.inputs.size(); ++i) {
    const Tensor& x = a.inputs[i];
    const Tensor& y = b.inputs[i];
    if (x.name != y.name || x.type != y.type || x.shape.size() != y.shape.size()) return false;
    if (!std::equal(x.shape.begin() + 1, x.shape.end(), y.shape.begin() + 1)) return false;
  }
  return true;
}

// Rows along dimension 0 when the request can be batched: no BYTES, every input of rank >= 1,
// all with the same first dimension >= 1.
std::optional<std::int64_t> batchRows(const RunRequest& request) {
  if (request.inputs.empty()) return std::nullopt;
  const Tensor& first = request.inputs.front();
  if (first.shape.empty() || first.shape[0] < 1) return std::nullopt;
  for (const Tensor& input : request.inputs) {
    if (input.type == DataType::kBytes || input.shape.empty() || input.shape[0] != first.shape[0]) {
      return std::nullopt;
    }
  }
  return first.shape[0];
}

}  // namespace

class ModelRunner::Impl {
 public:
  Impl(RunnerOptions options, std::vector<std::unique_ptr<Session>> sessions)
      : options_(std::move(options)), sessions_(std::move(sessions)) {
    for (std::size_t i = 0; i < sessions_.size(); ++i) {
      workers_.emplace_back([this, i] { workerLoop(*sessions_[i]); });
    }
  }

  ~Impl() { shutdown(); }

  // Fails queued requests with kUnavailable, lets running batches finish, joins the workers and
  // waits for callers still inside infer() to leave.
  void shutdown() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      stopping_ = true;
      for (const std::shared_ptr<Pending>& pending : queue_) {
        pending->result = makeError(ErrorCode::kUnavailable, "model unloading");
      }
      queue_.clear();
    }
    changed_.notify_all();
    for (std::thread& worker : workers_) worker.join();
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return callers_ == 0; });
  }

  const ModelMetadata& metadata() const { return sessions_.front()->metadata(); }
  const RunnerOptions& options() const { return options_; }

  std::size_t inFlight() const {
    std::lock_guard lock(mutex_);
    return queue_.size() + taken_;
  }
  std::size_t queued() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }

  Status warmUp() {
    for (const std::unique_ptr<Session>& session : sessions_) {
      Status status = session->warmUp();
      if (!status.ok()) return status;
    }
    return {};
  }

  Result<RunResult> infer(RunRequest request) {
    const StopReason early = stopReason(request.control, Clock::now());
    if (early != StopReason::kNone) return stopError(early, "while queued");
    auto pending = std::make_shared<Pending>();
    if (options_.batching.enabled) {
      const std::optional<std::int64_t> rows = batchRows(request);
      pending->batchable = rows && *rows <= options_.batching.maxBatchSize;
      pending->rows = rows.value_or(0);
    }
    pending->request = std::move(request);
    std::unique_lock lock(mutex_);
    if (stopping_) return makeError(ErrorCode::kUnavailable, "model unloading");
    if (queue_.size() >= options_.maxQueue) {
      Error full = makeError(
          ErrorCode::kUnavailable,
          fmt::format("the model's queue is full ({} requests queued, at most {}); "
                      "retry later",
                      queue_.size(), options_.maxQueue),
          {{"retryAfterSeconds", 1}, {"queued", queue_.size()}, {"maxQueue", options_.maxQueue}});
      full.retryAfter = std::chrono::seconds(1);
      return full;
    }
    queue_.push_back(pending);
    ++callers_;
    changed_.notify_all();
    Result<RunResult> result = awaitResult(lock, *pending);
    --callers_;
    if (callers_ == 0 && stopping_) changed_.notify_all();
    return result;
  }

 private:
  static Error stopError(StopReason reason, std::string_view where) {
    if (reason == StopReason::kCancelled) {
      return makeError(ErrorCode::kUnavailable, "cancelled: the client went away");
    }
    return makeError(ErrorCode::kDeadlineExceeded, fmt::format("deadline exceeded {}", where));
  }

  // Waits (holding `lock` only while not sleeping) until the worker delivers the result or the
  // request's own RunControl gives up. A queued request that gives up leaves the queue; a running
  // one is abandoned, and its run terminated once no member of the batch is still waiting.
  Result<RunResult> awaitResult(std::unique_lock<std::mutex>& lock, Pending& pending) {
    const RunControl& control = pending.request.control;
    const bool watched = control.cancelled || control.deadline;
    while (!pending.result) {
      if (watched) {
        const StopReason reason = stopReason(control, Clock::now());
        if (reason != StopReason::kNone) return giveUp(pending, reason);
        auto wakeAt = Clock::now() + kCallerPoll;
        if (control.deadline && *control.deadline < wakeAt) wakeAt = *control.deadline;
        changed_.wait_until(lock, wakeAt);
      } else {
        changed_.wait(lock);
      }
    }
    return std::move(*pending.result);
  }

  Error giveUp(Pending& pending, StopReason reason) {
    auto it = std::find_if(queue_.begin(), queue_.end(),
                           [&](const std::shared_ptr<Pending>& p) { return p.get() == &pending; });
    if (it != queue_.end()) {
      queue_.erase(it);
      return stopError(reason, "while queued");
    }
    // Taken by a worker: gathered into a batch that has not started (the worker drops it) or
    // running (the run stops when no member is left waiting).
    pending.abandoned = true;
    changed_.notify_all();  // a worker gathering a batch may now have nobody left to run for
    if (!pending.run) return stopError(reason, "while queued");
    if (--pending.run->liveMembers == 0) pending.run->cancelled->store(true);
    return stopError(reason, "while running");
  }

  // Takes the first queued request that is still wanted (one whose RunControl gave up is failed
  // here, in case its caller has not noticed yet). Precondition: mutex_ held.
  std::shared_ptr<Pending> takeFront() {
    while (!queue_.empty()) {
      std::shared_ptr<Pending> front = queue_.front();
      queue_.pop_front();
      const StopReason reason = stopReason(front->request.control, Clock::now());
      if (reason == StopReason::kNone) {
        ++taken_;
        return front;
      }
      front->result = stopError(reason, "while queued");
    }
    return nullptr;
  }

  // Moves compatible queued requests into `batch` while they fit in maxBatchSize rows.
  // Precondition: mutex_ held.
  void gather(std::vector<std::shared_ptr<Pending>>& batch, std::int64_t& rows) {
    const RunRequest& head = batch.front()->request;
    for (auto it = queue_.begin(); it != queue_.end() && rows < options_.batching.maxBatchSize;) {
      Pending& candidate = **it;
      if (candidate.batchable && rows + candidate.rows <= options_.batching.maxBatchSize &&
          stopReason(candidate.request.control, Clock::now()) == StopReason::kNone &&
          compatible(head, candidate.request)) {
        rows += candidate.rows;
        ++taken_;
        batch.push_back(*it);
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // Forms the next batch (one request without batching). Only one worker forms a batch at a time
  // so that arrivals during maxQueueDelay join it instead of starting a second, smaller one.
  std::vector<std::shared_ptr<Pending>> nextBatch(std::unique_lock<std::mutex>& lock) {
    std::vector<std::shared_ptr<Pending>> batch;
    while (batch.empty()) {
      changed_.wait(lock, [this] { return stopping_ || (!forming_ && !queue_.empty()); });
      if (stopping_) return batch;
      std::shared_ptr<Pending> head = takeFront();
      if (head) batch.push_back(std::move(head));
    }
    if (!options_.batching.enabled || !batch.front()->batchable) return batch;
    forming_ = true;
    std::int64_t rows = batch.front()->rows;
    const Clock::time_point flushAt = batch.front()->enqueued + options_.batching.maxQueueDelay;
    while (true) {
      gather(batch, rows);
      if (rows >= options_.batching.maxBatchSize || stopping_ || Clock::now() >= flushAt) break;
      const bool allGaveUp = std::all_of(batch.begin(), batch.end(),
                                         [](const auto& pending) { return pending->abandoned; });
      if (allGaveUp) break;
      changed_.wait_until(lock, flushAt);
    }
    forming_ = false;
    changed_.notify_all();
    return batch;
  }

  void workerLoop(Session& session) {
    std::unique_lock lock(mutex_);
    while (true) {
      std::vector<std::shared_ptr<Pending>> batch = nextBatch(lock);
      if (batch.empty()) return;  // stopping
      // Members whose callers gave up while the batch was gathered are not run.
      const std::size_t gathered = batch.size();
      std::erase_if(batch,
                    [](const std::shared_ptr<Pending>& pending) { return pending->abandoned; });
      taken_ -= gathered - batch.size();
      if (batch.empty()) continue;
      auto run = std::make_shared<SharedRun>();
      run->liveMembers = static_cast<int>(batch.size());
      for (const std::shared_ptr<Pending>& pending : batch) pending->run = run;
      lock.unlock();
      std::vector<std::optional<Result<RunResult>>> results = execute(session, batch, *run);
      lock.lock();
      taken_ -= batch.size();
      for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
      changed_.notify_all();
    }
  }

  // Runs `batch` on `session` without mutex_ held; one result per member.
  std::vector<std::optional<Result<RunResult>>> execute(
      Session& session, const std::vector<std::shared_ptr<Pending>>& batch, const SharedRun& run) {
    const Clock::time_point started = Clock::now();
    // The shared run stops early only when every member gave up; a deadline applies to it only
    // when every member has one (the latest).
    RunControl control{run.cancelled, std::nullopt};
    bool allHaveDeadlines = true;
    for (const std::shared_ptr<Pending>& pending : batch) {
      const auto& deadline = pending->request.control.deadline;
      if (!deadline) {
        allHaveDeadlines = false;
      } else if (!control.deadline || *deadline > *control.deadline) {
        control.deadline = deadline;
      }
    }
    if (!allHaveDeadlines) control.deadline.reset();

    std::vector<std::optional<Result<RunResult>>> results(batch.size());
    if (batch.size() == 1) {
      results[0] = runAlone(session, *batch[0], control, started);
      return results;
    }
    const RunRequest& head = batch.front()->request;
    std::vector<Tensor> inputs = head.inputs;
    std::int64_t totalRows = 0;
    for (const std::shared_ptr<Pending>& pending : batch) totalRows += pending->rows;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      inputs[i].shape[0] = totalRows;
      for (std::size_t member = 1; member < batch.size(); ++member) {
        inputs[i].data += batch[member]->request.inputs[i].data;
      }
    }
    const Clock::time_point computeStart = Clock::now();
    Result<std::vector<Tensor>> outputs = session.run(inputs, head.outputs, control);
    const auto computeTime = Clock::now() - computeStart;
    if (!outputs.ok()) {
      for (auto& result : results) result = outputs.error();
      return results;
    }
    for (const Tensor& output : outputs.value()) {
      if (output.type == DataType::kBytes || output.shape.empty() || output.shape[0] != totalRows) {
        // The model's output does not follow the batch along dimension 0: run each alone.
        spdlog::warn("output '{}' has shape {} for a batch of {} rows; running requests alone",
                     output.name, shapeText(output.shape), totalRows);
        for (std::size_t i = 0; i < batch.size(); ++i) {
          results[i] = runAlone(session, *batch[i], batch[i]->request.control, started);
        }
        return results;
      }
    }
    std::int64_t rowOffset = 0;
    for (std::size_t member = 0; member < batch.size(); ++member) {
      const std::int64_t rows = batch[member]->rows;
      RunResult result;
      result.queueTime = started - batch[member]->enqueued;
      result.computeTime = computeTime;
      result.batchSize = static_cast<int>(batch.size());
      for (const Tensor& output : outputs.value()) {
        const std::size_t rowBytes = output.data.size() / static_cast<std::size_t>(totalRows);
        Tensor part;
        part.name = output.name;
        part.type = output.type;
        part.shape = output.shape;
        part.shape[0] = rows;
        part.data = output.data.substr(static_cast<std::size_t>(rowOffset) * rowBytes,
                                       static_cast<std::size_t>(rows) * rowBytes);
        result.outputs.push_back(std::move(part));
      }
      rowOffset += rows;
      results[member] = std::move(result);
    }
    return results;
  }

  static Result<RunResult> runAlone(Session& session, const Pending& pending,
                                    const RunControl& control, Clock::time_point started) {
    const Clock::time_point computeStart = Clock::now();
    Result<std::vector<Tensor>> outputs =
        session.run(pending.request.inputs, pending.request.outputs, control);
    if (!outputs.ok()) return outputs.error();
    RunResult result;
    result.outputs = std::move(outputs.value());
    result.queueTime = started - pending.enqueued;
    result.computeTime = Clock::now() - computeStart;
    result.batchSize = 1;
    return result;
  }

  const RunnerOptions options_;
  const std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<std::thread> workers_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;             // queue, results, forming_, stopping_, callers_
  std::deque<std::shared_ptr<Pending>> queue_;  // guarded by mutex_
  std::size_t taken_ = 0;    // requests taken off the queue, not yet answered; guarded by mutex_
  std::size_t callers_ = 0;  // threads inside infer(); guarded by mutex_
  bool forming_ = false;     // a worker is gathering a batch; mutex_
  bool stopping_ = false;    // guarded by mutex_
};

ModelRunner::ModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ModelRunner::~ModelRunner() { impl_->shutdown(); }

Result<std::unique_ptr<ModelRunner>> ModelRunner::create(const std::filesystem::path& file,
                                                         const RunnerOptions& options) {
  if (options.instances < 1) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("instances must be at least 1, got {}", options.instances));
  }
  if (options.maxQueue < 1) {
    return makeError(ErrorCode::kInvalidArgument, "maxQueue must be at least 1");
  }
  if (options.batching.enabled &&
      (options.batching.maxBatchSize < 1 || options.batching.maxQueueDelay.count() < 0)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "batching needs maxBatchSize >= 1 and a non-negative maxQueueDelay");
  }
  std::vector<std::unique_ptr<Session>> sessions;
  for (int i = 0; i < options.instances; ++i) {
    Result<std::unique_ptr<Session>> session = Session::open(file, options.session);
    if (!session.ok()) return session.error();
    sessions.push_back(std::move(session.value()));
  }
  if (options.batching.enabled) {
    const ModelMetadata& metadata = sessions.front()->metadata();
    auto check = [](const TensorSpec& spec, std::string_view kind) -> Status {
      if (spec.shape.empty() || spec.shape[0] != -1) {
        return makeError(ErrorCode::kInvalidArgument,
                         fmt::format("dynamic batching needs a dynamic first dimension on every "
                                     "input and output; {} '{}' has shape {}",
                                     kind, spec.name, shapeText(spec.shape)),
                         {{"tensor", spec.name}, {"shape", spec.shape}});
      }
      return {};
    };
    for (const TensorSpec& spec : metadata.inputs) {
      Status status = check(spec, "input");
      if (!status.ok()) return status.error();
    }
    for (const TensorSpec& spec : metadata.outputs) {
      Status status = check(spec, "output");
      if (!status.ok()) return status.error();
    }
  }
  return std::unique_ptr<ModelRunner>(
      new ModelRunner(std::make_unique<Impl>(options, std::move(sessions))));
}

const ModelMetadata& ModelRunner::metadata() const { return impl_->metadata(); }
const RunnerOptions& ModelRunner::options() const { return impl_->options(); }
Result<RunResult> ModelRunner::infer(RunRequest request) {
  return impl_->infer(std::move(request));
}
Status ModelRunner::warmUp() { return impl_->warmUp(); }
std::size_t ModelRunner::inFlight() const { return impl_->inFlight(); }
std::size_t ModelRunner::queued() const { return impl_->queued(); }

}  // namespace deviceops::inference
