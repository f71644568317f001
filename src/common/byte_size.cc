#include "common/byte_size.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace deviceops {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<double> unitMultiplier(std::string_view unit) {
  const std::string u = lower(unit);
  if (u.empty() || u == "b") return 1.0;
  if (u == "kb" || u == "k") return 1e3;
  if (u == "mb" || u == "m") return 1e6;
  if (u == "gb" || u == "g") return 1e9;
  if (u == "tb" || u == "t") return 1e12;
  if (u == "kib") return 1024.0;
  if (u == "mib") return 1024.0 * 1024;
  if (u == "gib") return 1024.0 * 1024 * 1024;
  if (u == "tib") return 1024.0 * 1024 * 1024 * 1024;
  return makeError(ErrorCode::kInvalidArgument,
                   "unknown size unit '" + std::string(unit) +
                       "'; expected B, KB, MB, GB, TB, KiB, MiB, GiB or TiB");
}

}  // namespace

Result<std::uint64_t> parseByteSize(std::string_view text) {
  const std::string original(text);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  if (text.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "size is empty; expected e.g. 512MiB or 1048576");
  }
  std::size_t numberEnd = 0;
  while (numberEnd < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[numberEnd])) || text[numberEnd] == '.')) {
    ++numberEnd;
  }
  if (numberEnd == 0) {
    return makeError(ErrorCode::kInvalidArgument,
                     "size '" + original + "' is not a non-negative number with an optional unit");
  }
  std::string_view number = text.substr(0, numberEnd);
  std::string_view unit = text.substr(numberEnd);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  Result<double> multiplier = unitMultiplier(unit);
  if (!multiplier.ok()) return multiplier.error();

  double value = 0;
  if (number.find('.') == std::string_view::npos) {
    std::uint64_t integer = 0;
    auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), integer);
    if (error != std::errc() || end != number.data() + number.size()) {
      return makeError(ErrorCode::kInvalidArgument, "size '" + original + "' is too large");
    }
    if (*multiplier == 1.0) {
      if (integer > kMaxByteSize) {
        return makeError(ErrorCode::kInvalidArgument,
                         "size '" + original + "' is above the maximum of 2^53 bytes");
      }
      return integer;
    }
    value = static_cast<double>(integer);
  } else {
    const std::string decimal(number);
    std::size_t used = 0;
    try {
      value = std::stod(decimal, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != decimal.size()) {
      return makeError(ErrorCode::kInvalidArgument, "size '" + original + "' is not a number");
    }
  }
  const double bytes = value * *multiplier;
  if (!std::isfinite(bytes) || bytes > static_cast<double>(kMaxByteSize)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "size '" + original + "' is above the maximum of 2^53 bytes");
  }
  if (bytes != std::floor(bytes)) {
    return makeError(ErrorCode::kInvalidArgument,
                     "size '" + original + "' is not a whole number of bytes");
  }
  return static_cast<std::uint64_t>(bytes);
}

}  // namespace deviceops
