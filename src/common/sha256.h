// SHA-256 (FIPS 180-4), for recording and comparing model files.
//
// Sha256 hashes a stream incrementally; sha256Hex() and sha256File() are the one-shot forms.
// Digests are rendered as 64 lowercase hex digits. Thread-compatibility: a Sha256 object is used
// by one thread at a time; the free functions are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"

namespace deviceops {

class Sha256 {
 public:
  Sha256();
  void update(std::string_view bytes);
  // The digest of everything passed to update(). Precondition: called once; the object is spent.
  std::array<std::uint8_t, 32> finish();
  // finish() as 64 lowercase hex digits.
  std::string finishHex();

 private:
  void compress(const std::uint8_t* block);

  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t totalBytes_ = 0;
};

std::string sha256Hex(std::string_view bytes);
// Hashes the file in 1 MiB chunks. kNotFound if it does not exist, kUnavailable if it cannot be
// read.
Result<std::string> sha256File(const std::filesystem::path& file);

}  // namespace deviceops
