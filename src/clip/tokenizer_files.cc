#include "clip/tokenizer_files.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "clip/clip_tokenizer.h"

namespace deviceops::clip::internal {
namespace {

constexpr int kLargestMaxLength = 1024;

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}

// nlohmann's parse errors carry the byte offset; they are caught here, at the library's edge.
Result<nlohmann::json> parseJson(std::string_view text, std::string_view fileName) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    return invalid(
        fmt::format("{}: not valid JSON at byte {}: {}", fileName, error.byte, error.what()));
  } catch (const nlohmann::json::exception& error) {  // e.g. out_of_range for 1e400
    return invalid(fmt::format("{}: not valid JSON: {}", fileName, error.what()));
  }
}

std::string_view withoutCarriageReturn(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

Result<Vocabulary> parseVocabulary(std::string_view json) {
  ASSIGN_OR_RETURN(nlohmann::json document, parseJson(json, "vocab.json"));
  if (!document.is_object()) {
    return invalid(fmt::format("vocab.json: expected an object of symbol -> id, got {}",
                               document.type_name()));
  }
  Vocabulary vocabulary;
  vocabulary.reserve(document.size());
  for (const auto& [symbol, id] : document.items()) {
    const bool nonNegative =
        (id.is_number_unsigned() &&
         id.get<std::uint64_t>() <=
             static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) ||
        (id.is_number_integer() && !id.is_number_unsigned() && id.get<std::int64_t>() >= 0);
    if (!nonNegative) {
      return invalid(
          fmt::format("vocab.json: the id of \"{}\" is {}, expected a non-negative "
                      "integer",
                      symbol, id.dump()));
    }
    vocabulary[symbol] = id.get<std::int64_t>();
  }
  return vocabulary;
}

Result<MergeRanks> parseMerges(std::string_view text) {
  // The lines up to the last non-blank one; blank lines after it are allowed.
  std::size_t end = text.size();
  while (end > 0) {
    const std::size_t start = text.rfind('\n', end - 1);
    const std::size_t lineStart = start == std::string_view::npos ? 0 : start + 1;
    if (!withoutCarriageReturn(text.substr(lineStart, end - lineStart)).empty()) break;
    end = start == std::string_view::npos ? 0 : start;
  }
  text = text.substr(0, end);

  MergeRanks ranks;
  int rank = 0;
  std::size_t lineNumber = 0;
  // `text` now ends with a non-blank line (or is empty), so every line below is a real one.
  for (std::size_t position = 0; position < text.size();) {
    const std::size_t newline = text.find('\n', position);
    const std::size_t lineEnd = newline == std::string_view::npos ? text.size() : newline;
    const std::string_view line = withoutCarriageReturn(text.substr(position, lineEnd - position));
    position = newline == std::string_view::npos ? text.size() : newline + 1;
    ++lineNumber;
    if (lineNumber == 1 && line.starts_with("#version")) continue;
    const std::size_t space = line.find(' ');
    if (space == 0 || space == std::string_view::npos || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos) {
      return invalid(
          fmt::format("merges.txt line {}: expected two symbols separated by one "
                      "space, got \"{}\"",
                      lineNumber, line));
    }
    if (rank == std::numeric_limits<int>::max()) {
      return invalid(fmt::format("merges.txt line {}: too many merges", lineNumber));
    }
    ranks[std::string(line)] = rank++;
  }
  return ranks;
}

Result<std::optional<std::string>> parsePadToken(std::string_view json, std::string_view fileName) {
  ASSIGN_OR_RETURN(nlohmann::json document, parseJson(json, fileName));
  if (!document.is_object()) return invalid(fmt::format("{}: expected an object", fileName));
  const auto found = document.find("pad_token");
  if (found == document.end() || found->is_null()) return std::optional<std::string>();
  if (found->is_string()) return std::optional<std::string>(found->get<std::string>());
  if (found->is_object()) {
    const auto content = found->find("content");
    if (content != found->end() && content->is_string()) {
      return std::optional<std::string>(content->get<std::string>());
    }
  }
  return invalid(
      fmt::format("{}: \"pad_token\" must be a string or an object with a string "
                  "\"content\", got {}",
                  fileName, found->dump()));
}

Result<int> parseModelMaxLength(std::string_view json) {
  ASSIGN_OR_RETURN(nlohmann::json document, parseJson(json, "tokenizer_config.json"));
  if (!document.is_object()) return invalid("tokenizer_config.json: expected an object");
  const auto found = document.find("model_max_length");
  if (found == document.end() || found->is_null()) return kDefaultMaxLength;
  if (!found->is_number()) {
    return invalid(
        fmt::format("tokenizer_config.json: \"model_max_length\" must be a number, "
                    "got {}",
                    found->dump()));
  }
  const double value = found->get<double>();
  if (value > kLargestMaxLength) return kDefaultMaxLength;  // HF writes 1e30 for "no limit"
  if (value != std::floor(value) || value < 2) {
    return invalid(
        fmt::format("tokenizer_config.json: \"model_max_length\" must be an integer "
                    "of at least 2, got {}",
                    found->dump()));
  }
  return static_cast<int>(value);
}

}  // namespace deviceops::clip::internal
