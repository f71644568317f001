#include "selftest/memtest.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstring>
#include <vector>

namespace deviceops::selftest {
namespace {

constexpr std::array<std::pair<PatternTest, std::string_view>, 5> kNames{{
    {PatternTest::kAddressInAddress, "addressInAddress"},
    {PatternTest::kWalkingOnes, "walkingOnes"},
    {PatternTest::kWalkingZeros, "walkingZeros"},
    {PatternTest::kMovingInversions, "movingInversions"},
    {PatternTest::kRandomPattern, "randomPattern"},
}};

constexpr int kWalkingPasses = 64;
constexpr std::uint64_t kWordBytes = 8;

std::uint64_t splitmix64(std::uint64_t x) {
  std::uint64_t z = x + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

enum class PatternKind { kOffset, kWalking, kConstant, kRandom };

// The value of every word of the window in one sweep, as a function of the word's index.
struct Pattern {
  PatternKind kind = PatternKind::kConstant;
  std::uint64_t parameter = 0;  // walking: the pass k; constant: the value; random: the key
  bool complement = false;

  std::uint64_t at(std::uint64_t word) const {
    std::uint64_t value = 0;
    switch (kind) {
      case PatternKind::kOffset:
        value = word * kWordBytes;
        break;
      case PatternKind::kWalking:
        value = std::uint64_t{1} << ((word + parameter) % 64);
        break;
      case PatternKind::kConstant:
        value = parameter;
        break;
      case PatternKind::kRandom:
        value = splitmix64(parameter ^ (word * 0xd1b54a32d192ed03ULL));
        break;
    }
    return complement ? ~value : value;
  }
};

// One walk over the window: for each chunk, optionally read and check `expect`, then optionally
// write `write`. `final` marks the sweep whose checks count towards bytesTested.
struct Sweep {
  std::optional<Pattern> expect;
  std::optional<Pattern> write;
  bool descending = false;
  bool final = false;
};

std::vector<Sweep> passSweeps(PatternTest test, int pass, std::uint64_t seed) {
  const auto index = static_cast<std::uint64_t>(pass);
  auto writeThenCheck = [](Pattern pattern) {
    return std::vector<Sweep>{{std::nullopt, pattern, false, false},
                              {pattern, std::nullopt, false, true}};
  };
  switch (test) {
    case PatternTest::kAddressInAddress:
      return writeThenCheck({PatternKind::kOffset, 0, pass % 2 == 1});
    case PatternTest::kWalkingOnes:
      return writeThenCheck({PatternKind::kWalking, index, false});
    case PatternTest::kWalkingZeros:
      return writeThenCheck({PatternKind::kWalking, index, true});
    case PatternTest::kMovingInversions: {
      const std::uint64_t value = pass == 0 ? 0 : splitmix64(seed + index);
      const Pattern p{PatternKind::kConstant, value, false};
      const Pattern inverse{PatternKind::kConstant, value, true};
      return {
          {std::nullopt, p, false, false}, {p, inverse, false, false}, {inverse, p, true, true}};
    }
    case PatternTest::kRandomPattern:
      return writeThenCheck({PatternKind::kRandom, splitmix64(seed ^ splitmix64(index)), false});
  }
  return {};
}

// The first `bytes` (< 8) bytes of `word` as they lie in memory, the rest zero.
std::uint64_t leadingBytes(std::uint64_t word, std::uint64_t bytes) {
  std::uint64_t result = 0;
  std::memcpy(&result, &word, bytes);
  return result;
}

class Runner {
 public:
  Runner(MemoryWindow& window, const MemtestOptions& options, MemtestResult& result)
      : window_(window), options_(options), result_(result), size_(window.size()) {
    const std::uint64_t roundedSize = (size_ + kWordBytes - 1) / kWordBytes * kWordBytes;
    chunk_ = std::max(kWordBytes, options.chunkBytes / kWordBytes * kWordBytes);
    chunk_ = std::min(chunk_, roundedSize);
    chunks_ = (size_ + chunk_ - 1) / chunk_;
    buffer_.resize(chunk_ / kWordBytes);
  }

  Status run(PatternTest test) {
    std::uint64_t sweepsPerPass = passSweeps(test, 0, options_.seed).size();
    totalChunks_ = static_cast<double>(sweepsPerPass * chunks_) * result_.plannedPasses;
    for (int pass = 0; pass < result_.plannedPasses; ++pass) {
      for (const Sweep& sweep : passSweeps(test, pass, options_.seed)) {
        ASSIGN_OR_RETURN(bool finished, runSweep(sweep));
        if (!finished) return Status::success();
      }
      ++result_.completedPasses;
    }
    return Status::success();
  }

 private:
  // False when the Stop became due before the sweep finished.
  Result<bool> runSweep(const Sweep& sweep) {
    for (std::uint64_t step = 0; step < chunks_; ++step) {
      if (options_.stop.due()) {
        result_.stopped = true;
        result_.cancelled = options_.stop.isCancelled();
        return false;
      }
      const std::uint64_t chunk = sweep.descending ? chunks_ - 1 - step : step;
      const std::uint64_t offset = chunk * chunk_;
      const std::uint64_t bytes = std::min(chunk_, size_ - offset);
      if (sweep.expect) {
        RETURN_IF_ERROR(window_.read(offset, buffer_.data(), bytes));
        check(*sweep.expect, offset, bytes);
        if (sweep.final) result_.bytesTested += bytes;
      }
      if (sweep.write) {
        fill(*sweep.write, offset, bytes);
        RETURN_IF_ERROR(window_.write(offset, buffer_.data(), bytes));
      }
      ++doneChunks_;
      if (options_.progress) options_.progress(doneChunks_ / totalChunks_);
    }
    return true;
  }

  void fill(const Pattern& pattern, std::uint64_t offset, std::uint64_t bytes) {
    const std::uint64_t firstWord = offset / kWordBytes;
    const std::uint64_t words = (bytes + kWordBytes - 1) / kWordBytes;
    for (std::uint64_t i = 0; i < words; ++i) buffer_[i] = pattern.at(firstWord + i);
  }

  void check(const Pattern& pattern, std::uint64_t offset, std::uint64_t bytes) {
    const std::uint64_t firstWord = offset / kWordBytes;
    const std::uint64_t fullWords = bytes / kWordBytes;
    for (std::uint64_t i = 0; i < fullWords; ++i) {
      const std::uint64_t expected = pattern.at(firstWord + i);
      if (buffer_[i] != expected) record(offset + i * kWordBytes, expected, buffer_[i]);
    }
    if (const std::uint64_t tail = bytes % kWordBytes; tail != 0) {
      const std::uint64_t expected = leadingBytes(pattern.at(firstWord + fullWords), tail);
      const std::uint64_t actual = leadingBytes(buffer_[fullWords], tail);
      if (actual != expected) record(offset + fullWords * kWordBytes, expected, actual);
    }
  }

  void record(std::uint64_t offset, std::uint64_t expected, std::uint64_t actual) {
    if (result_.errors == 0) {
      result_.firstErrorOffset = offset;
      result_.firstExpected = expected;
      result_.firstActual = actual;
    }
    ++result_.errors;
    result_.badBits |= expected ^ actual;
  }

  MemoryWindow& window_;
  const MemtestOptions& options_;
  MemtestResult& result_;
  const std::uint64_t size_;
  std::uint64_t chunk_ = kWordBytes;  // bytes per transfer, a multiple of 8
  std::uint64_t chunks_ = 0;
  std::vector<std::uint64_t> buffer_;
  double totalChunks_ = 1;
  double doneChunks_ = 0;
};

std::string bitList(std::uint64_t bits) {
  std::string text;
  for (int bit = 0; bit < 64; ++bit) {
    if ((bits >> bit & 1) == 0) continue;
    if (!text.empty()) text += ", ";
    text += std::to_string(bit);
  }
  return text;
}

}  // namespace

std::string_view patternTestName(PatternTest test) {
  for (const auto& [candidate, name] : kNames) {
    if (candidate == test) return name;
  }
  return "unknown";
}

std::optional<PatternTest> parsePatternTest(std::string_view text) {
  for (const auto& [test, name] : kNames) {
    if (name == text) return test;
  }
  return std::nullopt;
}

int defaultPasses(PatternTest test) {
  switch (test) {
    case PatternTest::kAddressInAddress:
      return 2;
    case PatternTest::kWalkingOnes:
    case PatternTest::kWalkingZeros:
      return kWalkingPasses;
    case PatternTest::kMovingInversions:
      return 2;
    case PatternTest::kRandomPattern:
      return 1;
  }
  return 1;
}

Result<MemtestResult> runPatternTest(MemoryWindow& window, PatternTest test,
                                     const MemtestOptions& options) {
  if (window.size() == 0) {
    return makeError(ErrorCode::kInvalidArgument, "memory test: the memory window is empty");
  }
  if (options.maxPasses < 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("memory test: maxPasses must be >= 0, got {}", options.maxPasses));
  }
  const auto start = std::chrono::steady_clock::now();
  MemtestResult result;
  result.test = test;
  result.plannedPasses = options.maxPasses == 0 ? defaultPasses(test) : options.maxPasses;
  if (test == PatternTest::kWalkingOnes || test == PatternTest::kWalkingZeros) {
    result.plannedPasses = std::min(result.plannedPasses, kWalkingPasses);
  }
  Runner runner(window, options, result);
  RETURN_IF_ERROR(runner.run(test));
  result.partial = result.completedPasses == 0;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

std::string failureReason(const MemtestResult& result) {
  if (result.errors == 0) return "";
  const std::uint64_t firstBits = result.firstExpected ^ result.firstActual;
  std::string reason = fmt::format(
      "{} {} differ{}; first at offset {:#x}: expected {:#018x}, read {:#018x} ({} {})",
      result.errors, result.errors == 1 ? "word" : "words", result.errors == 1 ? "s" : "",
      result.firstErrorOffset, result.firstExpected, result.firstActual,
      std::popcount(firstBits) == 1 ? "bit" : "bits", bitList(firstBits));
  if (result.badBits != firstBits) {
    reason += fmt::format("; bad bits over all words: {}", bitList(result.badBits));
  }
  return reason;
}

}  // namespace deviceops::selftest
