// Byte sizes on input: integers (bytes) or strings with a unit ("512MiB", "1.5 GiB", "64KB").
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace deviceops {

// Accepts "<number>[ ]<unit>" with units B, KB/MB/GB/TB (powers of 1000) and KiB/MiB/GiB/TiB
// (powers of 1024), case-insensitive, or a plain integer. Rejects negatives, NaN, empty strings,
// trailing garbage and anything above 2^53 bytes (JSON-safe) with kInvalidArgument.
Result<std::uint64_t> parseByteSize(std::string_view text);

inline constexpr std::uint64_t kMaxByteSize = 1ull << 53;

}  // namespace deviceops
