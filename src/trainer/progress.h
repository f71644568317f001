// Progress events of a trainer process: one JSON object per line on a file descriptor
// (docs/TRAINING.md, "The trainer process"). No libtorch here.
#pragma once

#include <nlohmann/json.hpp>

namespace deviceops::trainer {

// Writes JSON lines to `fd` (not owned; -1: every call is a no-op). Writes are whole lines,
// retried on EINTR and short writes; a failing fd (closed pipe) is logged once and then ignored
// so that a vanished reader never stops training.
// Thread-compatibility: one writer per fd, used by one thread at a time.
class ProgressWriter {
 public:
  explicit ProgressWriter(int fd) : fd_(fd) {}
  bool enabled() const { return fd_ >= 0; }
  // Precondition: `event` is an object with a "type" member.
  void emit(const nlohmann::json& event);

 private:
  int fd_;
  bool broken_ = false;
};

}  // namespace deviceops::trainer
