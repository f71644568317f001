#include "imaging/png.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace deviceops::imaging {
namespace {

Rgb8Image testImage(int width, int height) {
  Rgb8Image image{width, height, {}};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.pixels.push_back(static_cast<std::uint8_t>(x * 7 + y));
      image.pixels.push_back(static_cast<std::uint8_t>(255 - x * 3));
      image.pixels.push_back(static_cast<std::uint8_t>((x * y) % 256));
    }
  }
  return image;
}

// ---- a minimal independent PNG writer (stored deflate blocks) for inputs libpng's writer here
// never produces: gray, RGBA, 16-bit, text after IDAT.

std::uint32_t crc32(const std::string& bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (const char byte : bytes) {
    crc ^= static_cast<std::uint8_t>(byte);
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void putBigEndian(std::string& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(value >> shift));
}

std::string chunk(const std::string& type, const std::string& data) {
  std::string out;
  putBigEndian(out, static_cast<std::uint32_t>(data.size()));
  out += type + data;
  putBigEndian(out, crc32(type + data));
  return out;
}

std::string zlibStored(const std::string& raw) {  // raw.size() < 65536
  std::string out = "\x78\x01";
  out.push_back('\x01');  // final stored block
  const auto length = static_cast<std::uint16_t>(raw.size());
  out.push_back(static_cast<char>(length & 0xFF));
  out.push_back(static_cast<char>(length >> 8));
  out.push_back(static_cast<char>(~length & 0xFF));
  out.push_back(static_cast<char>((~length >> 8) & 0xFF));
  out += raw;
  std::uint32_t a = 1, b = 0;
  for (const char byte : raw) {
    a = (a + static_cast<std::uint8_t>(byte)) % 65521;
    b = (b + a) % 65521;
  }
  putBigEndian(out, (b << 16) | a);
  return out;
}

// `rows` are the unfiltered scanlines (filter byte 0 is added).
std::string handMadePng(int width, int height, int bitDepth, int colorType,
                        const std::vector<std::string>& rows,
                        const std::string& extraAfterIdat = "") {
  std::string header;
  putBigEndian(header, static_cast<std::uint32_t>(width));
  putBigEndian(header, static_cast<std::uint32_t>(height));
  header += {static_cast<char>(bitDepth), static_cast<char>(colorType), 0, 0, 0};
  std::string raw;
  for (const std::string& row : rows) raw += std::string(1, '\0') + row;
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", header) +
         chunk("IDAT", zlibStored(raw)) + extraAfterIdat + chunk("IEND", "");
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (const int value : values) out.push_back(static_cast<char>(value));
  return out;
}

TEST(Png, RoundTripWithText) {
  const Rgb8Image image = testImage(37, 23);
  const std::vector<std::pair<std::string, std::string>> text = {
      {"parameters", "a cat, masterpiece\nSteps: 30, Sampler: Euler a, Seed: 42"},
      {"Comment", "caf\xC3\xA9 au lait"},                              // Latin-1 only: tEXt
      {"prompt", "\xE7\x8C\xAB \xE2\x80\x94 a cat \xF0\x9F\x90\x88"},  // not Latin-1: iTXt
      {"empty", ""},
      {"caf\xC3\xA9", "key with a Latin-1 letter"},
  };
  auto encoded = encodePng(image, text);
  ASSERT_TRUE(encoded.ok()) << encoded.error().message;
  auto decoded = decodePng(*encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->image.width, 37);
  EXPECT_EQ(decoded->image.height, 23);
  EXPECT_EQ(decoded->image.pixels, image.pixels);
  EXPECT_EQ(decoded->text, text);

  // Chunk order: IHDR, the text chunks in order, then IDAT; no tIME.
  const std::string& png = *encoded;
  const auto parameters = png.find("tEXtparameters");
  const auto comment = png.find("tEXtComment");
  const auto prompt = png.find("iTXtprompt");
  const auto idat = png.find("IDAT");
  ASSERT_NE(parameters, std::string::npos);
  ASSERT_NE(comment, std::string::npos);
  ASSERT_NE(prompt, std::string::npos);
  EXPECT_LT(parameters, comment);
  EXPECT_LT(comment, prompt);
  EXPECT_LT(prompt, idat);
  EXPECT_EQ(png.find("tIME"), std::string::npos);
  // Latin-1 in tEXt: "café" is stored as the single byte 0xE9.
  EXPECT_NE(png.find("tEXtComment" + std::string(1, '\0') + "caf\xE9 au lait"), std::string::npos);
}

TEST(Png, DeterministicBytes) {
  const Rgb8Image image = testImage(64, 48);
  const std::vector<std::pair<std::string, std::string>> text = {{"parameters", "x"}};
  auto first = encodePng(image, text);
  auto second = encodePng(image, text);
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(*first, *second);
  auto withoutText = encodePng(image);
  ASSERT_TRUE(withoutText.ok());
  EXPECT_NE(*first, *withoutText);
  EXPECT_EQ(first->substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST(Png, TruncatedAndCorruptInputIsInvalid) {
  auto encoded = encodePng(testImage(40, 30), {{"parameters", "x"}});
  ASSERT_TRUE(encoded.ok());
  const std::string& png = *encoded;
  for (const std::size_t length :
       {std::size_t{0}, std::size_t{4}, std::size_t{8}, std::size_t{20}, std::size_t{40},
        png.size() / 2, png.size() - 13, png.size() - 1}) {
    SCOPED_TRACE(length);
    auto decoded = decodePng(std::string_view(png).substr(0, length));
    ASSERT_FALSE(decoded.ok());
    EXPECT_EQ(decoded.error().code, ErrorCode::kInvalidArgument);
  }
  std::string corrupt = png;
  corrupt[png.find("IDAT") + 10] ^= 0x55;  // IDAT data: CRC mismatch
  auto decoded = decodePng(corrupt);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kInvalidArgument);
  std::string badHeader = png;
  badHeader[16] = 0x7F;  // IHDR width
  EXPECT_EQ(decodePng(badHeader).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(decodePng("GIF89a not a png").error().code, ErrorCode::kInvalidArgument);
}

TEST(Png, BadKeysAndValues) {
  const Rgb8Image image = testImage(4, 4);
  for (const std::string& key :
       {std::string(), std::string(80, 'k'), std::string(" lead"), std::string("trail "),
        std::string("two  spaces"), std::string("new\nline"), std::string("\xE7\x8C\xAB"),
        std::string("bad\xC3"), std::string("nul\0key", 7)}) {
    SCOPED_TRACE(key);
    auto encoded = encodePng(image, {{key, "value"}});
    ASSERT_FALSE(encoded.ok());
    EXPECT_EQ(encoded.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(encodePng(image, {{std::string(79, 'k'), "v"}}).ok());
  EXPECT_TRUE(encodePng(image, {{"one space", "v"}}).ok());
  EXPECT_EQ(encodePng(image, {{"key", "bad \xFF utf-8"}}).error().code,
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(encodePng(image, {{"key", std::string("nul\0inside", 10)}}).error().code,
            ErrorCode::kInvalidArgument);
}

TEST(Png, EmptyOrMalformedImageIsInvalid) {
  EXPECT_EQ(encodePng(Rgb8Image{}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(encodePng(Rgb8Image{0, 3, {}}).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(encodePng(Rgb8Image{2, 2, std::vector<std::uint8_t>(11)}).error().code,
            ErrorCode::kInvalidArgument);
}

TEST(Png, ReadsGrayRgbaAndSixteenBit) {
  // Gray 8-bit 2x1.
  auto gray = decodePng(handMadePng(2, 1, 8, 0, {bytes({10, 200})}));
  ASSERT_TRUE(gray.ok()) << gray.error().message;
  EXPECT_EQ(gray->image.pixels, (std::vector<std::uint8_t>{10, 10, 10, 200, 200, 200}));
  // RGBA 8-bit 2x1: alpha dropped.
  auto rgba = decodePng(handMadePng(2, 1, 8, 6, {bytes({1, 2, 3, 0, 4, 5, 6, 255})}));
  ASSERT_TRUE(rgba.ok()) << rgba.error().message;
  EXPECT_EQ(rgba->image.pixels, (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6}));
  // Gray + alpha 8-bit.
  auto grayAlpha = decodePng(handMadePng(1, 2, 8, 4, {bytes({7, 0}), bytes({9, 128})}));
  ASSERT_TRUE(grayAlpha.ok()) << grayAlpha.error().message;
  EXPECT_EQ(grayAlpha->image.pixels, (std::vector<std::uint8_t>{7, 7, 7, 9, 9, 9}));
  // RGB 16-bit 1x1: scaled to 8 bits.
  auto deep = decodePng(handMadePng(1, 1, 16, 2, {bytes({0xFF, 0xFF, 0x80, 0x80, 0, 0})}));
  ASSERT_TRUE(deep.ok()) << deep.error().message;
  EXPECT_EQ(deep->image.pixels, (std::vector<std::uint8_t>{255, 128, 0}));
  // Gray 1-bit 8x1: expanded to 0 / 255.
  auto bits = decodePng(handMadePng(8, 1, 1, 0, {bytes({0xA0})}));
  ASSERT_TRUE(bits.ok()) << bits.error().message;
  EXPECT_EQ(bits->image.pixels.size(), 24u);
  EXPECT_EQ(bits->image.pixels[0], 255);
  EXPECT_EQ(bits->image.pixels[3], 0);
  EXPECT_EQ(bits->image.pixels[6], 255);
}

TEST(Png, ReadsTextAfterIdatAsLatin1) {
  const std::string text = chunk("tEXt", std::string("Author") + '\0' + "Ren\xE9");
  auto decoded = decodePng(handMadePng(1, 1, 8, 0, {bytes({5})}, text));
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  ASSERT_EQ(decoded->text.size(), 1u);
  EXPECT_EQ(decoded->text[0].first, "Author");
  EXPECT_EQ(decoded->text[0].second, "Ren\xC3\xA9");
}

TEST(Png, ImageDataShorterThanTheHeaderIsInvalid) {
  // IHDR says 2 rows, IDAT holds one.
  auto decoded = decodePng(handMadePng(2, 2, 8, 0, {bytes({1, 2})}));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace deviceops::imaging
