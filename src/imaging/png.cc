// libpng reports errors by longjmp. Every function here that calls setjmp keeps only trivially
// destructible locals, so a longjmp out of libpng skips no destructor: the C++ objects (buffers,
// strings, the libpng structs' owner) live in the callers' frames.
#include "imaging/png.h"

#include <fmt/format.h>
#include <png.h>

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

namespace deviceops::imaging {
namespace {

// Where a libpng error message lands before the longjmp.
struct ErrorSink {
  char message[256] = {};
};

[[noreturn]] void onPngError(png_structp png, png_const_charp message) {
  auto* sink = static_cast<ErrorSink*>(png_get_error_ptr(png));
  if (sink != nullptr) {
    std::strncpy(sink->message, message != nullptr ? message : "unknown libpng error",
                 sizeof(sink->message) - 1);
  }
  png_longjmp(png, 1);
}

void onPngWarning(png_structp, png_const_charp) {}  // warnings change nothing we return

// ---- UTF-8 <-> Latin-1 ----------------------------------------------------------------------

// Decodes UTF-8 into code points; nullopt when not valid UTF-8 (overlong forms, surrogates and
// values above U+10FFFF are invalid).
std::optional<std::vector<char32_t>> decodeUtf8(std::string_view text) {
  std::vector<char32_t> points;
  points.reserve(text.size());
  std::size_t index = 0;
  while (index < text.size()) {
    const auto lead = static_cast<unsigned char>(text[index]);
    int length = 0;
    char32_t point = 0;
    if (lead < 0x80) {
      length = 1;
      point = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2;
      point = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3;
      point = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4;
      point = lead & 0x07;
    } else {
      return std::nullopt;
    }
    if (index + length > text.size()) return std::nullopt;
    for (int offset = 1; offset < length; ++offset) {
      const auto next = static_cast<unsigned char>(text[index + offset]);
      if ((next & 0xC0) != 0x80) return std::nullopt;
      point = (point << 6) | (next & 0x3F);
    }
    static constexpr char32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
    if (point < kMinimum[length] || point > 0x10FFFF || (point >= 0xD800 && point <= 0xDFFF)) {
      return std::nullopt;
    }
    points.push_back(point);
    index += length;
  }
  return points;
}

std::string latin1ToUtf8(std::string_view latin1) {
  std::string utf8;
  utf8.reserve(latin1.size());
  for (const char byte : latin1) {
    const auto value = static_cast<unsigned char>(byte);
    if (value < 0x80) {
      utf8.push_back(static_cast<char>(value));
    } else {
      utf8.push_back(static_cast<char>(0xC0 | (value >> 6)));
      utf8.push_back(static_cast<char>(0x80 | (value & 0x3F)));
    }
  }
  return utf8;
}

// The Latin-1 bytes of a keyword, or an error saying why it is not a PNG keyword.
Result<std::string> keywordToLatin1(const std::string& key) {
  const auto points = decodeUtf8(key);
  if (!points) return makeError(ErrorCode::kInvalidArgument, "PNG text key is not valid UTF-8");
  if (points->empty() || points->size() > 79) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("PNG text key '{}' must have 1 to 79 characters, has {}", key, points->size()));
  }
  std::string latin1;
  for (std::size_t index = 0; index < points->size(); ++index) {
    const char32_t point = (*points)[index];
    const bool printable = (point >= 0x20 && point <= 0x7E) || (point >= 0xA1 && point <= 0xFF);
    const bool badSpace = point == U' ' && (index == 0 || index + 1 == points->size() ||
                                            (*points)[index - 1] == U' ');
    if (!printable || badSpace) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("PNG text key '{}' is not a PNG keyword: Latin-1 printable "
                                   "characters, no leading, trailing or double spaces",
                                   key));
    }
    latin1.push_back(static_cast<char>(point));
  }
  return latin1;
}

// A text chunk ready for libpng: the strings png_text points into.
struct PreparedText {
  std::string key;    // Latin-1
  std::string value;  // Latin-1 for tEXt, UTF-8 for iTXt
  bool international = false;
};

Result<PreparedText> prepareText(const std::string& key, const std::string& value) {
  PreparedText prepared;
  ASSIGN_OR_RETURN(prepared.key, keywordToLatin1(key));
  const auto points = decodeUtf8(value);
  if (!points) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("the value of PNG text key '{}' is not valid UTF-8", key));
  }
  bool latin1 = true;
  for (const char32_t point : *points) {
    if (point == 0) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("the value of PNG text key '{}' contains NUL", key));
    }
    if (point > 0xFF) latin1 = false;
  }
  prepared.international = !latin1;
  if (latin1) {
    for (const char32_t point : *points) prepared.value.push_back(static_cast<char>(point));
  } else {
    prepared.value = value;
  }
  return prepared;
}

// ---- encode ---------------------------------------------------------------------------------

struct PngWriter {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~PngWriter() { png_destroy_write_struct(&png, &info); }
};

void appendToString(png_structp png, png_bytep data, png_size_t length) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  try {
    out->append(reinterpret_cast<const char*>(data), length);
  } catch (...) {
    png_error(png, "out of memory while writing PNG");
  }
}

void flushNothing(png_structp) {}

// Returns false after a libpng error (message in the writer's ErrorSink).
bool writePng(PngWriter& writer, const Rgb8Image& image, png_text* texts, int textCount,
              png_bytepp rows, std::string* out) {
  if (setjmp(png_jmpbuf(writer.png))) return false;
  png_set_write_fn(writer.png, out, appendToString, flushNothing);
  png_set_IHDR(writer.png, writer.info, static_cast<png_uint_32>(image.width),
               static_cast<png_uint_32>(image.height), 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(writer.png, 6);
  if (textCount > 0) png_set_text(writer.png, writer.info, texts, textCount);
  png_write_info(writer.png, writer.info);
  png_write_image(writer.png, rows);
  png_write_end(writer.png, nullptr);
  return true;
}

// ---- decode ---------------------------------------------------------------------------------

struct PngReader {
  png_structp png = nullptr;
  png_infop info = nullptr;
  png_infop endInfo = nullptr;
  ~PngReader() { png_destroy_read_struct(&png, &info, &endInfo); }
};

struct MemoryCursor {
  const unsigned char* data = nullptr;
  std::size_t size = 0;
  std::size_t offset = 0;
};

void readFromMemory(png_structp png, png_bytep data, png_size_t length) {
  auto* cursor = static_cast<MemoryCursor*>(png_get_io_ptr(png));
  if (length > cursor->size - cursor->offset) png_error(png, "truncated PNG data");
  std::memcpy(data, cursor->data + cursor->offset, length);
  cursor->offset += length;
}

struct HeaderInfo {
  png_uint_32 width = 0, height = 0;
  png_size_t rowBytes = 0;
  int channels = 0, bitDepth = 0;
};

// Reads up to the first IDAT and sets the transforms to 8-bit RGB.
bool readHeader(PngReader& reader, MemoryCursor* cursor, HeaderInfo* header) {
  if (setjmp(png_jmpbuf(reader.png))) return false;
  png_set_read_fn(reader.png, cursor, readFromMemory);
  png_set_user_limits(reader.png, kMaxPngSide, kMaxPngSide);
  png_read_info(reader.png, reader.info);
  const int colorType = png_get_color_type(reader.png, reader.info);
  const int bitDepth = png_get_bit_depth(reader.png, reader.info);
  if (colorType == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(reader.png);
  if (colorType == PNG_COLOR_TYPE_GRAY && bitDepth < 8) png_set_expand_gray_1_2_4_to_8(reader.png);
  if (bitDepth == 16) png_set_scale_16(reader.png);
  if ((colorType & PNG_COLOR_MASK_ALPHA) != 0) png_set_strip_alpha(reader.png);
  if ((colorType & PNG_COLOR_MASK_COLOR) == 0) png_set_gray_to_rgb(reader.png);
  png_set_interlace_handling(reader.png);
  png_read_update_info(reader.png, reader.info);
  header->width = png_get_image_width(reader.png, reader.info);
  header->height = png_get_image_height(reader.png, reader.info);
  header->rowBytes = png_get_rowbytes(reader.png, reader.info);
  header->channels = png_get_channels(reader.png, reader.info);
  header->bitDepth = png_get_bit_depth(reader.png, reader.info);
  return true;
}

bool readPixels(PngReader& reader, png_bytepp rows) {
  if (setjmp(png_jmpbuf(reader.png))) return false;
  png_read_image(reader.png, rows);
  png_read_end(reader.png, reader.endInfo);
  return true;
}

void collectText(png_structp png, png_infop info,
                 std::vector<std::pair<std::string, std::string>>* text) {
  png_textp chunks = nullptr;
  int count = 0;
  png_get_text(png, info, &chunks, &count);
  for (int index = 0; index < count; ++index) {
    const png_text& chunk = chunks[index];
    const bool international = chunk.compression == PNG_ITXT_COMPRESSION_NONE ||
                               chunk.compression == PNG_ITXT_COMPRESSION_zTXt;
    const std::string_view value =
        chunk.text == nullptr
            ? std::string_view()
            : std::string_view(chunk.text, international ? chunk.itxt_length : chunk.text_length);
    text->emplace_back(latin1ToUtf8(chunk.key == nullptr ? "" : chunk.key),
                       international ? std::string(value) : latin1ToUtf8(value));
  }
}

}  // namespace

Result<std::string> encodePng(const Rgb8Image& image,
                              const std::vector<std::pair<std::string, std::string>>& text) {
  if (image.width <= 0 || image.height <= 0) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("cannot encode an empty image ({}x{})", image.width, image.height));
  }
  const std::size_t rowBytes = static_cast<std::size_t>(image.width) * 3;
  if (image.pixels.size() != rowBytes * image.height) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("image of {}x{} needs {} RGB bytes, has {}", image.width,
                                 image.height, rowBytes * image.height, image.pixels.size()));
  }
  std::vector<PreparedText> prepared;
  prepared.reserve(text.size());
  for (const auto& [key, value] : text) {
    ASSIGN_OR_RETURN(PreparedText entry, prepareText(key, value));
    prepared.push_back(std::move(entry));
  }
  std::vector<png_text> chunks(prepared.size());
  for (std::size_t index = 0; index < prepared.size(); ++index) {
    png_text& chunk = chunks[index];
    std::memset(&chunk, 0, sizeof(chunk));
    chunk.key = prepared[index].key.data();
    chunk.text = prepared[index].value.data();
    if (prepared[index].international) {
      chunk.compression = PNG_ITXT_COMPRESSION_NONE;
      chunk.itxt_length = prepared[index].value.size();
    } else {
      chunk.compression = PNG_TEXT_COMPRESSION_NONE;
      chunk.text_length = prepared[index].value.size();
    }
  }
  std::vector<png_bytep> rows(image.height);
  // libpng takes non-const row pointers but only reads them when writing.
  auto* base = const_cast<png_bytep>(image.pixels.data());
  for (int row = 0; row < image.height; ++row) rows[row] = base + rowBytes * row;

  ErrorSink sink;
  PngWriter writer;
  writer.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink, onPngError, onPngWarning);
  if (writer.png == nullptr)
    return makeError(ErrorCode::kInternal, "png_create_write_struct failed");
  writer.info = png_create_info_struct(writer.png);
  if (writer.info == nullptr)
    return makeError(ErrorCode::kInternal, "png_create_info_struct failed");
  std::string out;
  if (!writePng(writer, image, chunks.data(), static_cast<int>(chunks.size()), rows.data(), &out)) {
    return makeError(ErrorCode::kInternal, fmt::format("libpng: {}", sink.message));
  }
  return out;
}

Result<DecodedPng> decodePng(std::string_view bytes) {
  if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) != 0) {
    return makeError(ErrorCode::kInvalidArgument, "not a PNG: the 8-byte signature is missing");
  }
  ErrorSink sink;
  PngReader reader;
  reader.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &sink, onPngError, onPngWarning);
  if (reader.png == nullptr)
    return makeError(ErrorCode::kInternal, "png_create_read_struct failed");
  reader.info = png_create_info_struct(reader.png);
  reader.endInfo = png_create_info_struct(reader.png);
  if (reader.info == nullptr || reader.endInfo == nullptr) {
    return makeError(ErrorCode::kInternal, "png_create_info_struct failed");
  }
  MemoryCursor cursor{reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0};
  HeaderInfo header;
  if (!readHeader(reader, &cursor, &header)) {
    return makeError(ErrorCode::kInvalidArgument, fmt::format("bad PNG: {}", sink.message));
  }
  if (header.channels != 3 || header.bitDepth != 8 || header.rowBytes != header.width * 3) {
    return makeError(ErrorCode::kInternal,
                     fmt::format("PNG transforms gave {} channels of {} bits, expected 8-bit RGB",
                                 header.channels, header.bitDepth));
  }
  DecodedPng decoded;
  decoded.image.width = static_cast<int>(header.width);
  decoded.image.height = static_cast<int>(header.height);
  decoded.image.pixels.resize(header.rowBytes * header.height);
  std::vector<png_bytep> rows(header.height);
  for (png_uint_32 row = 0; row < header.height; ++row) {
    rows[row] = decoded.image.pixels.data() + header.rowBytes * row;
  }
  if (!readPixels(reader, rows.data())) {
    return makeError(ErrorCode::kInvalidArgument, fmt::format("bad PNG: {}", sink.message));
  }
  collectText(reader.png, reader.info, &decoded.text);
  collectText(reader.png, reader.endInfo, &decoded.text);
  return decoded;
}

}  // namespace deviceops::imaging
