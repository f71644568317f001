#include "telemetry/writer.h"

#include <spdlog/spdlog.h>

#include <fstream>

namespace deviceops::telemetry {
namespace {

bool isSample(const BufferedItem& item) { return std::holds_alternative<DeviceSample>(item); }

WriteBatch toWriteBatch(const std::vector<BufferedItem>& items) {
  WriteBatch batch;
  for (const BufferedItem& item : items) {
    if (const auto* node = std::get_if<NodeInfo>(&item)) {
      batch.node = *node;
    } else if (const auto* device = std::get_if<DeviceInfo>(&item)) {
      batch.devices.push_back(*device);
    } else if (const auto* sample = std::get_if<DeviceSample>(&item)) {
      batch.samples.push_back(*sample);
    } else {
      batch.events.push_back(std::get<StoredEvent>(item));
    }
  }
  return batch;
}

}  // namespace

TelemetryWriter::TelemetryWriter(TelemetryStore& store, WriterOptions options)
    : store_(store), options_(std::move(options)), backoff_(options_.initialBackoff) {}

TelemetryWriter::~TelemetryWriter() { stop(std::chrono::milliseconds(0)); }

void TelemetryWriter::start() {
  std::unique_lock lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  if (!options_.spillFile.empty()) {
    std::ifstream file(options_.spillFile);
    std::string line;
    std::uint64_t lines = 0;
    while (std::getline(file, line)) {
      if (!line.empty()) ++lines;
    }
    spilledItems_ = lines;
    spillReadOffset_ = 0;
    if (lines > 0) {
      spdlog::info("telemetry: {} items left in {} by the previous run will be written first",
                   lines, options_.spillFile.string());
    }
  }
  thread_ = std::thread([this] { run(); });
}

void TelemetryWriter::stop(std::chrono::milliseconds deadline) {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::unique_lock lock(mutex_);
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (pendingLocked() && std::chrono::steady_clock::now() < until) {
    if (!writeOnce(lock)) break;
  }
  if (!memory_.empty()) {
    if (options_.spillFile.empty()) {
      spdlog::warn("telemetry: {} buffered items could not be written before shutdown and are lost",
                   memory_.size());
      for (const BufferedItem& item : memory_) countLost(item);
      memory_.clear();
    } else {
      spillMemory(lock);
    }
  }
  idle_.notify_all();
}

void TelemetryWriter::countLost(const BufferedItem& item) {
  if (isSample(item)) {
    ++counters_.samplesLost;
  } else if (std::holds_alternative<StoredEvent>(item)) {
    ++counters_.eventsLost;
  }
}

void TelemetryWriter::push(BufferedItem item) {
  {
    std::lock_guard lock(mutex_);
    const std::size_t bound =
        options_.spillFile.empty() ? options_.memoryItems : options_.maxBufferedItems;
    if (memory_.size() + spilledItems_ >= bound) {
      if (counters_.samplesLost + counters_.eventsLost == 0) {
        spdlog::error(
            "telemetry: buffer full ({} items); dropping new samples and events until "
            "the store accepts writes again",
            bound);
      }
      countLost(item);
      return;
    }
    memory_.push_back(std::move(item));
  }
  wake_.notify_one();
}

void TelemetryWriter::push(const WriteBatch& batch) {
  if (batch.node) push(BufferedItem(*batch.node));
  for (const DeviceInfo& device : batch.devices) push(BufferedItem(device));
  for (const DeviceSample& sample : batch.samples) push(BufferedItem(sample));
  for (const StoredEvent& event : batch.events) push(BufferedItem(event));
}

WriterCounters TelemetryWriter::counters() const {
  std::lock_guard lock(mutex_);
  WriterCounters counters = counters_;
  counters.bufferedItems = memory_.size() + spilledItems_;
  counters.spilledItems = spilledItems_;
  return counters;
}

bool TelemetryWriter::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  wake_.notify_one();
  return idle_.wait_for(lock, timeout, [&] { return !pendingLocked() && !writing_; });
}

void TelemetryWriter::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!options_.spillFile.empty() && memory_.size() > options_.memoryItems) {
      spillMemory(lock);
      continue;
    }
    if (!pendingLocked()) {
      idle_.notify_all();
      wake_.wait(lock);
      continue;
    }
    if (std::chrono::steady_clock::now() < nextAttempt_) {
      wake_.wait_until(lock, nextAttempt_);
      continue;
    }
    writeOnce(lock);
  }
}

TelemetryWriter::Batch TelemetryWriter::takeBatch(std::unique_lock<std::mutex>& lock) {
  Batch batch;
  if (spilledItems_ > 0) {
    batch.fromSpill = true;
    const std::uint64_t offset = spillReadOffset_;
    lock.unlock();  // only this thread reads or writes the spill file
    std::ifstream file(options_.spillFile, std::ios::binary);
    file.seekg(static_cast<std::streamoff>(offset));
    std::string line;
    while (batch.items.size() < options_.batchItems && std::getline(file, line)) {
      if (line.empty()) continue;
      ++batch.spillLines;
      nlohmann::json json = nlohmann::json::parse(line, nullptr, false);
      std::optional<BufferedItem> item = json.is_discarded() ? std::nullopt : decodeItem(json);
      if (item) batch.items.push_back(std::move(*item));
    }
    batch.nextSpillOffset = file.good() ? static_cast<std::uint64_t>(file.tellg()) : 0;
    if (!file.good()) batch.spillLines = spilledItems_;  // end of file: everything consumed
    lock.lock();
    return batch;
  }
  const std::size_t count = std::min(options_.batchItems, memory_.size());
  batch.items.assign(memory_.begin(), memory_.begin() + static_cast<std::ptrdiff_t>(count));
  return batch;
}

bool TelemetryWriter::writeOnce(std::unique_lock<std::mutex>& lock) {
  writing_ = true;
  Batch batch = takeBatch(lock);
  lock.unlock();
  Status written = store_.write(toWriteBatch(batch.items));
  lock.lock();
  writing_ = false;
  if (!written.ok()) {
    ++counters_.writeFailures;
    if (counters_.storeUp) {
      counters_.downSince = std::chrono::system_clock::now();
      spdlog::warn("telemetry: store {} unavailable, buffering: {}", store_.description(),
                   written.error().message);
    }
    counters_.storeUp = false;
    counters_.lastError = written.error().message;
    nextAttempt_ = std::chrono::steady_clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.maxBackoff);
    return false;
  }
  if (!counters_.storeUp) {
    spdlog::info("telemetry: store {} is back; writing {} buffered items", store_.description(),
                 memory_.size() + spilledItems_);
  }
  counters_.storeUp = true;
  counters_.lastError.clear();
  backoff_ = options_.initialBackoff;
  nextAttempt_ = {};
  ++counters_.batchesWritten;
  for (const BufferedItem& item : batch.items) {
    if (isSample(item)) ++counters_.samplesWritten;
    if (std::holds_alternative<StoredEvent>(item)) ++counters_.eventsWritten;
  }
  if (batch.fromSpill) {
    spilledItems_ -= std::min<std::uint64_t>(batch.spillLines, spilledItems_);
    spillReadOffset_ = batch.nextSpillOffset;
    if (spilledItems_ == 0) {
      std::error_code error;
      std::filesystem::resize_file(options_.spillFile, 0, error);
      spillReadOffset_ = 0;
    }
  } else {
    memory_.erase(memory_.begin(),
                  memory_.begin() + static_cast<std::ptrdiff_t>(batch.items.size()));
  }
  if (!pendingLocked()) idle_.notify_all();
  return true;
}

void TelemetryWriter::spillMemory(std::unique_lock<std::mutex>& lock) {
  std::deque<BufferedItem> items;
  items.swap(memory_);
  // While the file is written the items are counted as spilled, so the bound still holds.
  spilledItems_ += items.size();
  lock.unlock();
  std::ofstream file(options_.spillFile, std::ios::binary | std::ios::app);
  std::uint64_t written = 0;
  for (const BufferedItem& item : items) {
    if (!(file << encodeItem(item).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
               << '\n')) {
      break;
    }
    ++written;
  }
  file.flush();
  const bool ok = static_cast<bool>(file) && written == items.size();
  lock.lock();
  if (!ok) {
    spdlog::error("telemetry: cannot write the spill file {}; {} items lost",
                  options_.spillFile.string(), items.size() - written);
    spilledItems_ -= items.size() - written;
    for (std::size_t i = written; i < items.size(); ++i) countLost(items[i]);
  }
}

}  // namespace deviceops::telemetry
