// Fuzzes the CLIP tokenizer's vocab.json and merges.txt parsers (they come with uploaded model
// suites): the input is split at its first 0 byte into the vocab JSON text and the merges text.
// Whatever the bytes, loading returns a tokenizer or an error; a tokenizer that loads encodes a
// short prompt (and the bytes after the split as a prompt) to exactly maxLength ids framed by
// bos and eos, without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "clip/clip_tokenizer.h"

namespace {

void checkEncoding(const deviceops::clip::ClipTokenizer& tokenizer, std::string_view prompt) {
  const deviceops::clip::Encoding encoding = tokenizer.encode(prompt);
  const auto length = static_cast<std::size_t>(tokenizer.maxLength());
  if (encoding.ids.size() != length || encoding.ids.front() != tokenizer.bosId() ||
      encoding.tokenCount < 0 || encoding.truncatedTokens < 0 ||
      encoding.tokenCount - encoding.truncatedTokens > tokenizer.maxLength() - 2) {
    __builtin_trap();
  }
  const auto kept = static_cast<std::size_t>(encoding.tokenCount - encoding.truncatedTokens);
  if (encoding.ids[kept + 1] != tokenizer.eosId()) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::size_t split = bytes.find('\0');
  const std::string_view vocab = bytes.substr(0, split);
  const std::string_view merges =
      split == std::string_view::npos ? std::string_view() : bytes.substr(split + 1);
  auto tokenizer =
      deviceops::clip::ClipTokenizer::fromText(vocab, merges, deviceops::clip::kEndOfText, 16);
  if (!tokenizer.ok()) return 0;
  checkEncoding(*tokenizer, "A photo of <|startoftext|>it's 12 caf\xC3\xA9s \xF0\x9F\x90\xB1!");
  checkEncoding(*tokenizer, merges.substr(0, 64));
  return 0;
}
