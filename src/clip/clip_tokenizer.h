// ClipTokenizer: the CLIP byte-level BPE tokenizer of Stable Diffusion's text encoders, as
// transformers' CLIPTokenizer runs it without ftfy (docs: /work/shared/design/SDXL.md section 1).
//
// A prompt goes through:
//   1. Cleanup (transformers' BasicTokenizer with strip_accents=False, do_split_on_punc=False):
//      control and other C* characters, NUL and U+FFFD are dropped, whitespace becomes a space,
//      CJK ideographs are spaced out, NFC, split on whitespace, lowercase (full case mapping, root
//      locale), joined with single spaces.
//   2. The CLIP pattern `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|
//      [\p{N}]|[^\s\p{L}\p{N}]+` (case-insensitive, as the `regex` module matches it).
//   3. Each piece's UTF-8 bytes through bytes_to_unicode, `</w>` on the last symbol, BPE by merge
//      rank, symbols looked up in the vocabulary; an unknown symbol becomes the <|endoftext|> id.
//      The special tokens written inside a prompt map straight to their ids.
//   4. Framing: [bos] + ids[:maxLength-2] + [eos], padded with the pad id to maxLength.
//
// Invalid UTF-8 in a prompt never fails: each ill-formed sequence is read as U+FFFD, which step 1
// drops (as transformers does for text decoded with errors="replace").
//
// Thread-safety: a loaded ClipTokenizer is immutable; encode() and tokenize() may run on any
// number of threads at once (there is no BPE cache).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace deviceops::clip {

inline constexpr std::string_view kStartOfText = "<|startoftext|>";
inline constexpr std::string_view kEndOfText = "<|endoftext|>";
inline constexpr int kDefaultMaxLength = 77;

struct Encoding {
  std::vector<std::int64_t> ids;  // exactly maxLength: [bos] + tokens[:maxLength-2] + [eos] + pad
  int tokenCount = 0;             // BPE tokens of the prompt before truncation (no bos/eos)
  int truncatedTokens = 0;        // how many were dropped: tokenCount - (maxLength-2), or 0
};

class ClipTokenizer {
 public:
  // A tokenizer folder as Optimum/diffusers export it: vocab.json and merges.txt; the pad token
  // from special_tokens_map.json ("pad_token": a string or {"content": ...}) or, failing that,
  // tokenizer_config.json, else "<|endoftext|>"; model_max_length from tokenizer_config.json
  // (default 77; a value above 1024, HF's 1e30 for "none", also means 77).
  // Errors: kNotFound naming vocab.json or merges.txt when missing; kInvalidArgument naming the
  // file and the line (merges.txt) or byte offset (JSON) when malformed, when vocab.json lacks
  // <|startoftext|> or <|endoftext|>, or when the pad token is not in the vocabulary.
  static Result<ClipTokenizer> load(const std::filesystem::path& directory);

  // The same from the texts of vocab.json and merges.txt. merges.txt: an optional first line
  // starting with "#version", then one merge per line, exactly two symbols separated by one space
  // (a trailing "\r" is ignored), rank = order; blank lines only at the end. vocab.json: an object
  // mapping each symbol to a non-negative integer id. Errors: kInvalidArgument as for load(), and
  // for maxLength < 2 or > 1024.
  static Result<ClipTokenizer> fromText(std::string_view vocabJson, std::string_view mergesText,
                                        std::string_view padToken = kEndOfText,
                                        int maxLength = kDefaultMaxLength);

  // The framed and padded ids of a prompt (any bytes; see the invalid UTF-8 note above).
  Encoding encode(std::string_view prompt) const;
  // The BPE ids of a text, without bos/eos, truncation or padding.
  std::vector<std::int64_t> tokenize(std::string_view text) const;

  std::int64_t bosId() const { return bosId_; }
  std::int64_t eosId() const { return eosId_; }
  std::int64_t padId() const { return padId_; }
  int maxLength() const { return maxLength_; }
  std::size_t vocabularySize() const { return vocabulary_.size(); }

 private:
  ClipTokenizer() = default;
  void appendPieceIds(std::string_view piece, std::vector<std::int64_t>& ids) const;
  std::int64_t idOf(const std::string& symbol) const;

  std::unordered_map<std::string, std::int64_t> vocabulary_;
  // "first second" -> rank (line order). A later duplicate line overrides an earlier one, as in
  // transformers' dict of merges.
  std::unordered_map<std::string, int> mergeRanks_;
  std::int64_t bosId_ = 0;
  std::int64_t eosId_ = 0;
  std::int64_t padId_ = 0;
  int maxLength_ = kDefaultMaxLength;
};

}  // namespace deviceops::clip
