// Where a rank runs: its device, its intra-op thread count, and the work directory lock.
#pragma once

#include <c10/core/Device.h>

#include <filesystem>
#include <string>

#include "common/result.h"

namespace deviceops::trainer {

// "cpu" or "cuda:N". kInvalidArgument (the job cannot run) for another name, for CUDA when this
// libtorch has none or no GPU is visible, and for an index past the last device.
Result<c10::Device> parseDevice(const std::string& name);

// Intra-op threads of one rank: `requested`, or for 0 the hardware threads divided among the
// ranks (at least 1).
int threadsPerRank(int requested, int worldSize);

// flock(LOCK_EX | LOCK_NB) on a file, held for the lifetime of the object.
// Thread-compatibility: one owner.
class FileLock {
 public:
  FileLock() = default;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();
  // kInvalidArgument naming the file when it cannot be opened or another process holds it.
  Status acquire(const std::filesystem::path& file);

 private:
  int fd_ = -1;
};

}  // namespace deviceops::trainer
