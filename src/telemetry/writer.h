// TelemetryWriter: the bounded buffer between producers (sampler, event sink) and the store.
//
// push() only appends to an in-memory queue and never waits on I/O. One writer thread writes
// the queue to the store in batches (one transaction each). When the store fails (PostgreSQL
// down), items stay queued and the writer retries with exponential backoff; once more than
// `memoryItems` are queued, the writer moves them to the spill file (JSON lines) and later
// writes the spill file first, in order, then memory. Nothing queued is dropped while the total
// (memory + spill) stays within `maxBufferedItems`; beyond it new items are refused and counted
// as lost (samplesLost / eventsLost). stop() writes what it can before its deadline and leaves
// the rest in the spill file, which the next start() picks up.
//
// Thread-safety: push(), counters() and flush() may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "telemetry/item_codec.h"
#include "telemetry/store.h"

namespace deviceops::telemetry {

struct WriterOptions {
  std::size_t memoryItems = 10'000;          // queued in memory before spilling
  std::size_t maxBufferedItems = 1'000'000;  // memory + spill file; beyond: lost
  std::filesystem::path spillFile;           // empty: no spill, memoryItems is the bound
  std::size_t batchItems = 2'000;            // items per store transaction
  std::chrono::milliseconds initialBackoff{250};
  std::chrono::milliseconds maxBackoff{10'000};
};

struct WriterCounters {
  std::uint64_t samplesWritten = 0;
  std::uint64_t eventsWritten = 0;
  std::uint64_t samplesLost = 0;  // refused because the buffer bound was exceeded
  std::uint64_t eventsLost = 0;
  std::uint64_t bufferedItems = 0;  // waiting: memory + spill file
  std::uint64_t spilledItems = 0;   // of which in the spill file
  std::uint64_t writeFailures = 0;
  std::uint64_t batchesWritten = 0;
  bool storeUp = true;    // the last write attempt succeeded (true before the first)
  std::string lastError;  // of the last failed attempt while the store is down
  std::chrono::system_clock::time_point downSince;  // when storeUp turned false
};

class TelemetryWriter {
 public:
  TelemetryWriter(TelemetryStore& store, WriterOptions options);
  ~TelemetryWriter();
  TelemetryWriter(const TelemetryWriter&) = delete;
  TelemetryWriter& operator=(const TelemetryWriter&) = delete;

  // Counts what an earlier process left in the spill file and starts the writer thread.
  void start();
  // Stops the thread, then writes what is buffered until `deadline` passes or the store fails;
  // whatever is left goes to the spill file (or is counted lost without one).
  void stop(std::chrono::milliseconds deadline = std::chrono::seconds(5));

  void push(BufferedItem item);
  void push(const WriteBatch& batch);

  WriterCounters counters() const;
  // Waits until everything pushed so far is written; false on timeout (tests, shutdown).
  bool flush(std::chrono::milliseconds timeout);

 private:
  struct Batch {
    std::vector<BufferedItem> items;
    bool fromSpill = false;
    std::uint64_t nextSpillOffset = 0;
    std::uint64_t spillLines = 0;  // lines consumed (valid or not)
  };

  void run();
  // Writes one batch; true on success. Called by the writer thread, or by stop() after it.
  bool writeOnce(std::unique_lock<std::mutex>& lock);
  Batch takeBatch(std::unique_lock<std::mutex>& lock);
  void spillMemory(std::unique_lock<std::mutex>& lock);
  bool pendingLocked() const { return !memory_.empty() || spilledItems_ > 0; }
  void countLost(const BufferedItem& item);

  TelemetryStore& store_;
  const WriterOptions options_;
  mutable std::mutex mutex_;  // guards everything below but the thread
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::deque<BufferedItem> memory_;
  std::uint64_t spilledItems_ = 0;     // unread items in the spill file
  std::uint64_t spillReadOffset_ = 0;  // bytes of the spill file already written to the store
  bool writing_ = false;               // a batch is in flight (its items are still queued)
  bool stopping_ = false;
  std::chrono::steady_clock::time_point nextAttempt_{};
  std::chrono::milliseconds backoff_;
  WriterCounters counters_;
  std::thread thread_;
};

}  // namespace deviceops::telemetry
