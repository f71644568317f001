#include "clip/clip_text.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include <array>
#include <cstdint>

namespace deviceops::clip::internal {
namespace {

constexpr UChar32 kReplacementCharacter = 0xFFFD;
// COMBINING GREEK YPOGEGRAMMENI: a mark whose case variants are letters. With IGNORECASE the
// `regex` module matches it neither by [\p{L}] nor by [^\s\p{L}\p{N}], so transformers skips it
// like a space; the only such code point (checked over all of Unicode with regex 2022.10.31).
constexpr UChar32 kUnmatchedByPattern = 0x0345;

bool inGeneralCategory(UChar32 c, std::uint32_t mask) { return (U_GET_GC_MASK(c) & mask) != 0; }

// transformers' _is_chinese_char: the CJK Unified/Compatibility Ideograph blocks.
bool isCjkIdeograph(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// _is_whitespace of the cleanup: the four ASCII ones and Zs.
bool isCleanupWhitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_charType(c) == U_SPACE_SEPARATOR;
}

// _clean_text drops NUL, U+FFFD and every C* character (Cc, Cf, Cn, Co, Cs).
bool isDropped(UChar32 c) {
  return c == 0 || c == kReplacementCharacter || inGeneralCategory(c, U_GC_C_MASK);
}

// Python's str.split() separators that can survive cleanup: Zs, Zl, Zp (the ASCII controls it
// also splits on are gone by then, except those mapped to a space).
bool isSplitWhitespace(UChar32 c) { return c == ' ' || inGeneralCategory(c, U_GC_Z_MASK); }

bool isPatternSpace(char32_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r') ||
         inGeneralCategory(static_cast<UChar32>(c), U_GC_Z_MASK);
}
bool isLetter(char32_t c) {
  return c != kUnmatchedByPattern && inGeneralCategory(static_cast<UChar32>(c), U_GC_L_MASK);
}
bool isNumber(char32_t c) { return inGeneralCategory(static_cast<UChar32>(c), U_GC_N_MASK); }
bool isOther(char32_t c) {
  return c != kUnmatchedByPattern && !isPatternSpace(c) && !isLetter(c) && !isNumber(c);
}

// Whether `text` continues at `at` with `literal` (ASCII), compared by simple case folding as
// the `regex` module's IGNORECASE does (so "'ſ" matches "'s").
bool matchesFolded(std::u32string_view text, std::size_t at, std::string_view literal) {
  if (text.size() - at < literal.size()) return false;
  for (std::size_t i = 0; i < literal.size(); ++i) {
    const auto expected = static_cast<UChar32>(static_cast<unsigned char>(literal[i]));
    if (u_foldCase(static_cast<UChar32>(text[at + i]), U_FOLD_CASE_DEFAULT) !=
        u_foldCase(expected, U_FOLD_CASE_DEFAULT)) {
      return false;
    }
  }
  return true;
}

void appendUtf8(std::string& out, char32_t c) {
  std::array<std::uint8_t, U8_MAX_LENGTH> buffer{};
  std::int32_t length = 0;
  U8_APPEND_UNSAFE(buffer.data(), length, static_cast<UChar32>(c));
  out.append(reinterpret_cast<const char*>(buffer.data()), static_cast<std::size_t>(length));
}

std::string toUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) appendUtf8(out, c);
  return out;
}

// The length of the alternative of the CLIP pattern that matches at `at`, 0 when none does.
std::size_t matchAt(std::u32string_view text, std::size_t at) {
  static constexpr std::array<std::string_view, 9> kLiterals = {
      "<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  for (std::string_view literal : kLiterals) {
    if (matchesFolded(text, at, literal)) return literal.size();
  }
  if (isNumber(text[at])) return 1;
  bool (*inRun)(char32_t) = isLetter(text[at]) ? isLetter : isOther(text[at]) ? isOther : nullptr;
  if (inRun == nullptr) return 0;
  std::size_t end = at + 1;
  while (end < text.size() && inRun(text[end])) ++end;
  return end - at;
}

}  // namespace

std::u32string normalizeText(std::string_view prompt) {
  icu::UnicodeString cleaned;
  const auto* bytes = reinterpret_cast<const std::uint8_t*>(prompt.data());
  const auto length = static_cast<std::int64_t>(prompt.size());
  for (std::int64_t i = 0; i < length;) {
    UChar32 c = 0;
    U8_NEXT(bytes, i, length, c);
    if (c < 0) c = kReplacementCharacter;
    if (isCleanupWhitespace(c)) {
      cleaned.append(static_cast<UChar>(' '));
    } else if (isDropped(c)) {
      continue;
    } else if (isCjkIdeograph(c)) {
      cleaned.append(static_cast<UChar>(' ')).append(c).append(static_cast<UChar>(' '));
    } else {
      cleaned.append(c);
    }
  }

  // The NFC instance is built into ICU's data; if it were ever unavailable the text stays as is.
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(status);
  icu::UnicodeString composed;
  if (U_SUCCESS(status)) composed = nfc->normalize(cleaned, status);
  if (U_FAILURE(status)) composed = cleaned;

  // Split on whitespace and join with single spaces; lowercasing the joined text equals
  // lowercasing each word (a space ends the final-sigma context either way).
  icu::UnicodeString joined;
  bool spacePending = false;
  for (std::int32_t i = 0; i < composed.length();) {
    const UChar32 c = composed.char32At(i);
    i += U16_LENGTH(c);
    if (isSplitWhitespace(c)) {
      spacePending = !joined.isEmpty();
      continue;
    }
    if (spacePending) joined.append(static_cast<UChar>(' '));
    spacePending = false;
    joined.append(c);
  }
  joined.toLower(icu::Locale::getRoot());

  std::u32string out;
  out.reserve(static_cast<std::size_t>(joined.length()));
  for (std::int32_t i = 0; i < joined.length();) {
    const UChar32 c = joined.char32At(i);
    i += U16_LENGTH(c);
    out.push_back(static_cast<char32_t>(c));
  }
  return out;
}

std::vector<std::string> splitPieces(std::u32string_view text) {
  std::vector<std::string> pieces;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t length = matchAt(text, at);
    if (length == 0) {
      ++at;
      continue;
    }
    pieces.push_back(toUtf8(text.substr(at, length)));
    at += length;
  }
  return pieces;
}

}  // namespace deviceops::clip::internal
