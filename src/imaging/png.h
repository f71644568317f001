// PNG encoding and decoding (libpng) with text chunks, for saving generated images with their
// parameters (A1111 writes the key "parameters") and reading them back.
//
// Thread-safety: both functions are reentrant; they share no state.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "imaging/image.h"

namespace deviceops::imaging {

// Encodes an 8-bit RGB PNG: zlib level 6, libpng's default adaptive filtering, no interlace, no
// time chunk, so the same image and text always give identical bytes.
// `text` is written before IDAT in the given order. Keys and values are UTF-8. A key must be a
// PNG keyword: 1 to 79 Latin-1 printable characters (U+0020..U+007E, U+00A1..U+00FF), no leading
// or trailing space and no two consecutive spaces. A value whose characters are all Latin-1 goes
// into an uncompressed tEXt chunk (converted to Latin-1 bytes); any other value into an
// uncompressed iTXt chunk as UTF-8 (empty language tag and translated keyword).
// Errors: kInvalidArgument for an empty image (width or height 0), pixels.size() != width *
// height * 3, a bad key, a key or value that is not valid UTF-8 or contains NUL; kInternal when
// libpng fails.
Result<std::string> encodePng(const Rgb8Image& image,
                              const std::vector<std::pair<std::string, std::string>>& text = {});

struct DecodedPng {
  Rgb8Image image;
  // In file order (chunks before IDAT, then after it), keys and values converted to UTF-8.
  std::vector<std::pair<std::string, std::string>> text;
};

// Decodes any PNG libpng reads (8- or 16-bit, gray, palette, RGB, with or without alpha,
// interlaced) into 8-bit RGB: 16-bit samples are reduced to 8, gray is replicated, alpha is
// dropped (not composited). Reads tEXt, zTXt and iTXt chunks.
// Errors: kInvalidArgument for empty, truncated or corrupt input (bad signature, CRC error in a
// critical chunk, bad zlib data) and for images wider or taller than kMaxPngSide.
Result<DecodedPng> decodePng(std::string_view bytes);

// The largest width and height decodePng accepts, in pixels.
inline constexpr int kMaxPngSide = 16384;

}  // namespace deviceops::imaging
