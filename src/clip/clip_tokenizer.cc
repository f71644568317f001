#include "clip/clip_tokenizer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <limits>
#include <sstream>
#include <utility>

#include "clip/clip_text.h"
#include "clip/tokenizer_files.h"

namespace deviceops::clip {
namespace {

constexpr int kLargestMaxLength = 1024;
constexpr std::string_view kEndOfWord = "</w>";

// bytes_to_unicode: printable bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) keep their code
// point, the other 68 get 256 + n in byte order; each entry is that character in UTF-8.
const std::array<std::string, 256>& byteSymbols() {
  static const std::array<std::string, 256> symbols = [] {
    std::array<std::string, 256> table;
    int extra = 0;
    for (int byte = 0; byte < 256; ++byte) {
      const bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
                             (byte >= 0xAE && byte <= 0xFF);
      const int codePoint = printable ? byte : 256 + extra++;
      std::string& out = table[static_cast<std::size_t>(byte)];
      if (codePoint < 0x80) {
        out.push_back(static_cast<char>(codePoint));
      } else {  // all below U+0800: two bytes
        out.push_back(static_cast<char>(0xC0 | (codePoint >> 6)));
        out.push_back(static_cast<char>(0x80 | (codePoint & 0x3F)));
      }
    }
    return table;
  }();
  return symbols;
}

Result<std::string> readFile(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return makeError(
        ErrorCode::kNotFound,
        fmt::format("{} not found in {}", path.filename().string(), path.parent_path().string()));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  if (!in.good() && !in.eof()) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{}: could not be read", path.string()));
  }
  return contents.str();
}

Result<std::int64_t> requireId(const internal::Vocabulary& vocabulary, std::string_view token,
                               std::string_view role) {
  const auto found = vocabulary.find(std::string(token));
  if (found == vocabulary.end()) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("vocab.json: the {} \"{}\" is not in the vocabulary", role, token));
  }
  return found->second;
}

}  // namespace

Result<ClipTokenizer> ClipTokenizer::load(const std::filesystem::path& directory) {
  ASSIGN_OR_RETURN(const std::string vocabJson, readFile(directory / "vocab.json"));
  ASSIGN_OR_RETURN(const std::string mergesText, readFile(directory / "merges.txt"));

  std::optional<std::string> padToken;
  int maxLength = kDefaultMaxLength;
  const std::filesystem::path specialTokensPath = directory / "special_tokens_map.json";
  const std::filesystem::path configPath = directory / "tokenizer_config.json";
  std::error_code error;
  if (std::filesystem::exists(specialTokensPath, error)) {
    ASSIGN_OR_RETURN(const std::string text, readFile(specialTokensPath));
    ASSIGN_OR_RETURN(padToken, internal::parsePadToken(text, "special_tokens_map.json"));
  }
  if (std::filesystem::exists(configPath, error)) {
    ASSIGN_OR_RETURN(const std::string text, readFile(configPath));
    if (!padToken) {
      ASSIGN_OR_RETURN(padToken, internal::parsePadToken(text, "tokenizer_config.json"));
    }
    ASSIGN_OR_RETURN(maxLength, internal::parseModelMaxLength(text));
  }
  return fromText(vocabJson, mergesText, padToken.value_or(std::string(kEndOfText)), maxLength);
}

Result<ClipTokenizer> ClipTokenizer::fromText(std::string_view vocabJson,
                                              std::string_view mergesText,
                                              std::string_view padToken, int maxLength) {
  if (maxLength < 2 || maxLength > kLargestMaxLength) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("the maximum length must be 2..{} ids, got {}", kLargestMaxLength, maxLength));
  }
  ClipTokenizer tokenizer;
  ASSIGN_OR_RETURN(tokenizer.vocabulary_, internal::parseVocabulary(vocabJson));
  ASSIGN_OR_RETURN(tokenizer.mergeRanks_, internal::parseMerges(mergesText));
  ASSIGN_OR_RETURN(tokenizer.bosId_, requireId(tokenizer.vocabulary_, kStartOfText, "bos token"));
  ASSIGN_OR_RETURN(tokenizer.eosId_, requireId(tokenizer.vocabulary_, kEndOfText, "eos token"));
  ASSIGN_OR_RETURN(tokenizer.padId_, requireId(tokenizer.vocabulary_, padToken, "pad token"));
  tokenizer.maxLength_ = maxLength;
  return tokenizer;
}

Encoding ClipTokenizer::encode(std::string_view prompt) const {
  const std::vector<std::int64_t> tokens = tokenize(prompt);
  const auto capacity = static_cast<std::size_t>(maxLength_ - 2);
  const std::size_t kept = std::min(tokens.size(), capacity);
  Encoding encoding;
  encoding.tokenCount =
      static_cast<int>(std::min<std::size_t>(tokens.size(), std::numeric_limits<int>::max()));
  encoding.truncatedTokens = encoding.tokenCount - static_cast<int>(kept);
  encoding.ids.reserve(static_cast<std::size_t>(maxLength_));
  encoding.ids.push_back(bosId_);
  encoding.ids.insert(encoding.ids.end(), tokens.begin(),
                      tokens.begin() + static_cast<std::ptrdiff_t>(kept));
  encoding.ids.push_back(eosId_);
  encoding.ids.resize(static_cast<std::size_t>(maxLength_), padId_);
  return encoding;
}

std::vector<std::int64_t> ClipTokenizer::tokenize(std::string_view text) const {
  std::vector<std::int64_t> ids;
  for (const std::string& piece : internal::splitPieces(internal::normalizeText(text))) {
    appendPieceIds(piece, ids);
  }
  return ids;
}

std::int64_t ClipTokenizer::idOf(const std::string& symbol) const {
  const auto found = vocabulary_.find(symbol);
  return found == vocabulary_.end() ? eosId_ : found->second;
}

void ClipTokenizer::appendPieceIds(std::string_view piece, std::vector<std::int64_t>& ids) const {
  // transformers' BPE cache holds exactly these two strings.
  if (piece == kStartOfText || piece == kEndOfText) {
    ids.push_back(piece == kStartOfText ? bosId_ : eosId_);
    return;
  }
  if (piece.empty()) return;

  std::vector<std::string> word;
  word.reserve(piece.size());
  for (const char byte : piece) word.push_back(byteSymbols()[static_cast<unsigned char>(byte)]);
  word.back().append(kEndOfWord);

  // Merge the best-ranked adjacent pair everywhere (left to right, no overlap) until none is
  // ranked. A rank names one pair, so its first occurrence is where merging starts.
  std::string key;
  while (word.size() > 1) {
    int bestRank = std::numeric_limits<int>::max();
    std::size_t bestAt = word.size();
    for (std::size_t i = 0; i + 1 < word.size(); ++i) {
      key.assign(word[i]).append(" ").append(word[i + 1]);
      const auto found = mergeRanks_.find(key);
      if (found != mergeRanks_.end() && found->second < bestRank) {
        bestRank = found->second;
        bestAt = i;
      }
    }
    if (bestAt == word.size()) break;
    const std::string first = word[bestAt];
    const std::string second = word[bestAt + 1];
    std::vector<std::string> merged(word.begin(),
                                    word.begin() + static_cast<std::ptrdiff_t>(bestAt));
    for (std::size_t i = bestAt; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(std::move(word[i]));
        i += 1;
      }
    }
    word = std::move(merged);
  }
  for (const std::string& symbol : word) ids.push_back(idOf(symbol));
}

}  // namespace deviceops::clip
