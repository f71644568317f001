// The Unicode half of the CLIP tokenizer (steps 1 and 2 of clip_tokenizer.h), on ICU. Internal to
// src/clip/; declared here so that the tokenizer and its tests share it.
//
// Thread-safety: pure functions (ICU's NFC instance is an immutable process-wide singleton).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace deviceops::clip::internal {

// Step 1: cleanup, CJK spacing, NFC, whitespace split, lowercase, single-space join. Any bytes:
// each ill-formed UTF-8 sequence reads as U+FFFD and is dropped with the other C* characters.
std::u32string normalizeText(std::string_view prompt);

// Step 2: the pieces the CLIP pattern finds in normalised text, in UTF-8, in order. The special
// tokens come out as their own pieces.
std::vector<std::string> splitPieces(std::u32string_view text);

}  // namespace deviceops::clip::internal
