// ModelRunner: one model placed on one device — a pool of N Session instances (like Triton's
// instance groups) and, optionally, a dynamic batcher in front of them.
//
// Without batching, a request takes a free instance (waiting in a bounded FIFO queue if all are
// busy) and runs alone. With batching, requests whose inputs agree on every dimension but the
// first are concatenated along dimension 0 up to maxBatchSize (waiting at most maxQueueDelay for
// more to arrive), run once, and the outputs split back. Batching applies only to models whose
// inputs and outputs all have a dynamic first dimension; create() refuses it otherwise.
//
// A full queue is kUnavailable with details.retryAfterSeconds (the API answers 503 +
// Retry-After). A request whose RunControl is cancelled or whose deadline passes while queued
// leaves the queue at once; while running it is terminated (RunOptions::SetTerminate) and frees
// its instance.
//
// Thread-safety: infer() is called concurrently from API worker threads; the runner owns its
// batcher thread(s). The destructor waits for running requests and fails queued ones with
// kUnavailable ("model unloading").
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "inference/session.h"
#include "tensor/tensor.h"

namespace deviceops::inference {

struct BatchingOptions {
  bool enabled = false;
  int maxBatchSize = 8;                           // rows along dimension 0
  std::chrono::microseconds maxQueueDelay{2000};  // how long a batch waits to fill
};

struct RunnerOptions {
  SessionOptions session;
  int instances = 1;
  std::size_t maxQueue = 256;  // queued requests beyond which infer() refuses (503)
  BatchingOptions batching;
};

struct RunRequest {
  std::vector<Tensor> inputs;        // validated against metadata() by the caller
  std::vector<std::string> outputs;  // empty: all
  RunControl control;
};

struct RunResult {
  std::vector<Tensor> outputs;
  std::chrono::nanoseconds queueTime{0};    // enqueue -> an instance starts it
  std::chrono::nanoseconds computeTime{0};  // Session::run of its batch
  int batchSize = 1;                        // requests that shared the run (1 = alone)
};

class ModelRunner {
 public:
  static Result<std::unique_ptr<ModelRunner>> create(const std::filesystem::path& file,
                                                     const RunnerOptions& options);
  ~ModelRunner();
  ModelRunner(const ModelRunner&) = delete;
  ModelRunner& operator=(const ModelRunner&) = delete;

  const ModelMetadata& metadata() const;
  const RunnerOptions& options() const;
  Result<RunResult> infer(RunRequest request);
  // One warm-up run per instance (Session::warmUp).
  Status warmUp();
  std::size_t inFlight() const;  // queued + running requests
  std::size_t queued() const;

 private:
  class Impl;
  explicit ModelRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deviceops::inference
