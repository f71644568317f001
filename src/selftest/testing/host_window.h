// HostWindow: a MemoryWindow over a host buffer, for tests, with injectable faults.
//
// Faults are defined on 64-bit words at byte offsets that are multiples of 8 (bit 0 is the least
// significant bit of the word's value in host byte order):
//   - stuck bit: the bit always holds `value`, whatever is written;
//   - flipping bit: every `everyNthRead`-th read that holds the whole word returns the bit
//     inverted (what is stored does not change);
//   - aliased pair: two words are one cell; a write to either lands in both (when one transfer
//     writes both, the higher offset, written last, wins);
//   - failing calls: every call after the first `callsBeforeFailure` calls (write, read, copy
//     together) fails with kUnavailable.
// Out-of-range transfers and overlapping copies are kInvalidArgument. Counters record what the
// code under test did. Not thread-safe.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "selftest/memory_window.h"

namespace deviceops::selftest::testing {

class HostWindow final : public MemoryWindow {
 public:
  explicit HostWindow(std::uint64_t size, unsigned char initialByte = 0)
      : memory_(size, initialByte) {}

  // --- faults ---
  void addStuckBit(std::uint64_t offset, int bit, bool value) {
    stuck_.push_back({offset, bit, value});
    settle();
  }
  void addFlippingBit(std::uint64_t offset, int bit, std::uint64_t everyNthRead) {
    flipping_.push_back({offset, bit, everyNthRead, 0});
  }
  void aliasWords(std::uint64_t first, std::uint64_t second) {
    aliases_.push_back({first, second});
  }
  void failAfterCalls(std::uint64_t calls) { callsBeforeFailure_ = calls; }

  // --- counters and direct access ---
  std::uint64_t calls() const { return calls_; }
  std::uint64_t writes() const { return writes_; }
  std::uint64_t reads() const { return reads_; }
  std::uint64_t copies() const { return copies_; }
  std::uint64_t bytesWritten() const { return bytesWritten_; }
  std::uint64_t bytesRead() const { return bytesRead_; }
  std::uint64_t bytesCopied() const { return bytesCopied_; }
  std::uint64_t largestTransfer() const { return largestTransfer_; }
  const std::vector<unsigned char>& memory() const { return memory_; }
  std::uint64_t word(std::uint64_t offset) const { return loadWord(offset); }

  // --- MemoryWindow ---
  std::uint64_t size() const override { return memory_.size(); }

  Status write(std::uint64_t offset, const void* source, std::uint64_t bytes) override {
    RETURN_IF_ERROR(enter("write", offset, bytes));
    std::memcpy(memory_.data() + offset, source, bytes);
    afterStore(offset, bytes);
    ++writes_;
    bytesWritten_ += bytes;
    return Status::success();
  }

  Status read(std::uint64_t offset, void* destination, std::uint64_t bytes) override {
    RETURN_IF_ERROR(enter("read", offset, bytes));
    std::memcpy(destination, memory_.data() + offset, bytes);
    for (FlippingBit& fault : flipping_) {
      if (fault.offset < offset || fault.offset + 8 > offset + bytes) continue;
      if (++fault.reads % fault.everyNthRead != 0) continue;
      std::uint64_t value = loadWord(fault.offset) ^ (std::uint64_t{1} << fault.bit);
      std::memcpy(static_cast<unsigned char*>(destination) + (fault.offset - offset), &value, 8);
    }
    ++reads_;
    bytesRead_ += bytes;
    return Status::success();
  }

  Status copy(std::uint64_t destination, std::uint64_t source, std::uint64_t bytes) override {
    RETURN_IF_ERROR(enter("copy", destination, bytes));
    if (source > size() || bytes > size() - source) {
      return makeError(ErrorCode::kInvalidArgument, "host window: copy source out of range");
    }
    if (destination < source + bytes && source < destination + bytes) {
      return makeError(ErrorCode::kInvalidArgument, "host window: overlapping copy");
    }
    std::memcpy(memory_.data() + destination, memory_.data() + source, bytes);
    afterStore(destination, bytes);
    ++copies_;
    bytesCopied_ += bytes;
    return Status::success();
  }

 private:
  struct StuckBit {
    std::uint64_t offset;
    int bit;
    bool value;
  };
  struct FlippingBit {
    std::uint64_t offset;
    int bit;
    std::uint64_t everyNthRead;
    std::uint64_t reads;
  };
  struct Alias {
    std::uint64_t first;
    std::uint64_t second;
  };

  Status enter(const char* what, std::uint64_t offset, std::uint64_t bytes) {
    if (callsBeforeFailure_ && calls_ >= *callsBeforeFailure_) {
      return makeError(ErrorCode::kUnavailable,
                       std::string("host window: injected failure of ") + what);
    }
    ++calls_;
    largestTransfer_ = std::max(largestTransfer_, bytes);
    if (offset > size() || bytes > size() - offset) {
      return makeError(ErrorCode::kInvalidArgument,
                       std::string("host window: ") + what + " out of range");
    }
    return Status::success();
  }

  // Whether [offset, offset + bytes) touches the word at `word`.
  static bool covers(std::uint64_t offset, std::uint64_t bytes, std::uint64_t word) {
    return word < offset + bytes && offset < word + 8;
  }

  std::uint64_t loadWord(std::uint64_t offset) const {
    std::uint64_t value = 0;
    std::memcpy(&value, memory_.data() + offset, 8);
    return value;
  }
  void storeWord(std::uint64_t offset, std::uint64_t value) {
    std::memcpy(memory_.data() + offset, &value, 8);
  }

  void afterStore(std::uint64_t offset, std::uint64_t bytes) {
    for (const Alias& alias : aliases_) {
      const bool first = covers(offset, bytes, alias.first);
      const bool second = covers(offset, bytes, alias.second);
      if (!first && !second) continue;
      // The word written last (the higher offset when both were written) is the cell's value.
      std::uint64_t winner = alias.first;
      if (second && (!first || alias.second > alias.first)) winner = alias.second;
      const std::uint64_t value = loadWord(winner);
      storeWord(alias.first, value);
      storeWord(alias.second, value);
    }
    settle();
  }

  void settle() {
    for (const StuckBit& fault : stuck_) {
      std::uint64_t value = loadWord(fault.offset);
      const std::uint64_t mask = std::uint64_t{1} << fault.bit;
      value = fault.value ? (value | mask) : (value & ~mask);
      storeWord(fault.offset, value);
    }
  }

  std::vector<unsigned char> memory_;
  std::vector<StuckBit> stuck_;
  std::vector<FlippingBit> flipping_;
  std::vector<Alias> aliases_;
  std::optional<std::uint64_t> callsBeforeFailure_;
  std::uint64_t calls_ = 0;
  std::uint64_t writes_ = 0;
  std::uint64_t reads_ = 0;
  std::uint64_t copies_ = 0;
  std::uint64_t bytesWritten_ = 0;
  std::uint64_t bytesRead_ = 0;
  std::uint64_t bytesCopied_ = 0;
  std::uint64_t largestTransfer_ = 0;
};

}  // namespace deviceops::selftest::testing
