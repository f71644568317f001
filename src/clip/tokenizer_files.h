// Parsers of the tokenizer folder's files (vocab.json, merges.txt, special_tokens_map.json,
// tokenizer_config.json). Internal to src/clip/; every error is kInvalidArgument and names the
// file and the line (merges.txt) or byte offset (JSON) where the text went wrong.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"

namespace deviceops::clip::internal {

using Vocabulary = std::unordered_map<std::string, std::int64_t>;
// "first second" -> rank (0-based merge line, header excluded); a later duplicate wins.
using MergeRanks = std::unordered_map<std::string, int>;

// A JSON object mapping symbols to non-negative integer ids.
Result<Vocabulary> parseVocabulary(std::string_view json);

// An optional "#version" first line, then "first second" lines; blank lines only at the end.
Result<MergeRanks> parseMerges(std::string_view text);

// The "pad_token" of special_tokens_map.json or tokenizer_config.json text (a string or an
// AddedToken object {"content": ...}); nullopt when absent or null. `fileName` is for messages.
Result<std::optional<std::string>> parsePadToken(std::string_view json, std::string_view fileName);

// "model_max_length" of tokenizer_config.json text: the default (77) when absent or above 1024.
Result<int> parseModelMaxLength(std::string_view json);

}  // namespace deviceops::clip::internal
