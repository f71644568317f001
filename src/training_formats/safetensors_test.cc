#include "training_formats/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/testing/temp_dir.h"

namespace deviceops::training {
namespace {

// A file made by hand: 8-byte length, header text, data.
std::string rawFile(const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  const std::uint64_t length = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
  return bytes + header + data;
}

SafeTensorFile sampleFile() {
  SafeTensorFile file;
  file.tensors["weight"] = makeF32Tensor({2, 3}, {1, 2, 3, 4, 5, 6.5f});
  file.tensors["labels"] = makeI64Tensor({3}, {0, -7, std::numeric_limits<std::int64_t>::max()});
  file.tensors["empty"] = makeF32Tensor({0, 4}, {});
  file.metadata["format"] = "deviceops";
  return file;
}

TEST(SafeTensorsTest, RoundTripsTensorsAndMetadata) {
  const std::string bytes = serializeSafeTensors(sampleFile());
  // Header length is a multiple of 8 and the header starts with '{'.
  std::uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  EXPECT_EQ(length % 8, 0u);
  EXPECT_EQ(bytes[8], '{');

  Result<SafeTensorFile> parsed = parseSafeTensors(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->tensors.size(), 3u);
  const SafeTensor* weight = parsed->find("weight");
  ASSERT_NE(weight, nullptr);
  EXPECT_EQ(weight->dtype, SafeDtype::kF32);
  EXPECT_EQ(weight->shape, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(weight->elementCount(), 6);
  EXPECT_EQ(weight->toFloat(), (std::vector<float>{1, 2, 3, 4, 5, 6.5f}));
  EXPECT_EQ(parsed->find("labels")->toInt64(),
            (std::vector<std::int64_t>{0, -7, std::numeric_limits<std::int64_t>::max()}));
  EXPECT_EQ(parsed->find("empty")->elementCount(), 0);
  EXPECT_EQ(parsed->find("missing"), nullptr);
  EXPECT_EQ(parsed->metadata.at("format"), "deviceops");
  // Serialization is deterministic.
  EXPECT_EQ(serializeSafeTensors(*parsed), bytes);
}

TEST(SafeTensorsTest, OffsetsFollowNameOrder) {
  const std::string bytes = serializeSafeTensors(sampleFile());
  std::uint64_t length = 0;
  std::memcpy(&length, bytes.data(), 8);
  const auto header = nlohmann::json::parse(bytes.substr(8, length));
  EXPECT_EQ(header["empty"]["data_offsets"], nlohmann::json::array({0, 0}));
  EXPECT_EQ(header["labels"]["data_offsets"], nlohmann::json::array({0, 24}));
  EXPECT_EQ(header["weight"]["data_offsets"], nlohmann::json::array({24, 48}));
  EXPECT_EQ(header["weight"]["dtype"], "F32");
  EXPECT_EQ(header["__metadata__"]["format"], "deviceops");
}

TEST(SafeTensorsTest, WidensEveryDtype) {
  struct Case {
    SafeDtype dtype;
    std::string bytes;
    std::vector<float> floats;
    std::vector<std::int64_t> ints;
  };
  auto le = [](auto value) {
    std::string s(sizeof value, '\0');
    std::memcpy(s.data(), &value, sizeof value);
    return s;
  };
  const std::vector<Case> cases = {
      {SafeDtype::kF64, le(2.5) + le(-1.0), {2.5f, -1.0f}, {2, -1}},
      // F16: 1.0 = 0x3C00, -2.0 = 0xC000, smallest subnormal 2^-24 = 0x0001, 65504 = 0x7BFF.
      {SafeDtype::kF16,
       le(std::uint16_t{0x3C00}) + le(std::uint16_t{0xC000}) + le(std::uint16_t{0x0001}) +
           le(std::uint16_t{0x7BFF}),
       {1.0f, -2.0f, 5.9604645e-8f, 65504.0f},
       {1, -2, 0, 65504}},
      // BF16: 1.0 = 0x3F80, -3.0 = 0xC040.
      {SafeDtype::kBF16, le(std::uint16_t{0x3F80}) + le(std::uint16_t{0xC040}), {1, -3}, {1, -3}},
      {SafeDtype::kI32, le(std::int32_t{-5}) + le(std::int32_t{7}), {-5, 7}, {-5, 7}},
      {SafeDtype::kI16, le(std::int16_t{-300}), {-300}, {-300}},
      {SafeDtype::kI8, le(std::int8_t{-128}), {-128}, {-128}},
      {SafeDtype::kU8, le(std::uint8_t{255}), {255}, {255}},
      {SafeDtype::kBool, le(std::uint8_t{0}) + le(std::uint8_t{1}), {0, 1}, {0, 1}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(safeDtypeName(c.dtype)));
    SafeTensor tensor;
    tensor.dtype = c.dtype;
    tensor.shape = {static_cast<std::int64_t>(c.floats.size())};
    tensor.data = c.bytes;
    EXPECT_EQ(tensor.data.size(), c.floats.size() * safeDtypeSize(c.dtype));
    EXPECT_EQ(tensor.toFloat(), c.floats);
    EXPECT_EQ(tensor.toInt64(), c.ints);
    // And through a file.
    SafeTensorFile file;
    file.tensors["t"] = tensor;
    Result<SafeTensorFile> parsed = parseSafeTensors(serializeSafeTensors(file));
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->find("t")->dtype, c.dtype);
    EXPECT_EQ(parsed->find("t")->data, c.bytes);
  }
}

TEST(SafeTensorsTest, RefusesMalformedFiles) {
  const std::string eight(8, 'x');
  struct Case {
    std::string name;
    std::string bytes;
    std::string messagePart;
  };
  const std::vector<Case> cases = {
      {"empty", "", "8-byte"},
      {"short", "abc", "8-byte"},
      {"length past end", rawFile("{}", "").substr(0, 8) + "{", "past the end"},
      {"huge length", std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8) + "{}", "limit"},
      {"not json", rawFile("{nope", ""), "not valid JSON"},
      {"not object", rawFile("[1,2]", ""), "not a JSON object"},
      {"entry not object", rawFile(R"({"a": 3})", ""), "\"a\""},
      {"unknown dtype", rawFile(R"({"a":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", eight),
       "C64"},
      {"missing dtype", rawFile(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", "abcd"), "dtype"},
      {"missing shape", rawFile(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", "abcd"), "shape"},
      {"negative dim",
       rawFile(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"), "shape"},
      {"float dim", rawFile(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "abcd"),
       "shape"},
      {"overflowing shape",
       rawFile(R"({"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
               eight),
       "overflow"},
      {"offsets wrong size",
       rawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"), "8 bytes"},
      {"offsets not pair", rawFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", ""),
       "data_offsets"},
      {"offsets reversed",
       rawFile(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", "abcd"), "end before"},
      {"past data", rawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd"),
       "past the"},
      {"gap", rawFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight), "gap"},
      {"overlap",
       rawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
               eight),
       "overlap"},
      {"trailing bytes",
       rawFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", eight), "cover"},
      {"metadata not strings", rawFile(R"({"__metadata__":{"k":1}})", ""), "__metadata__"},
      {"metadata not object", rawFile(R"({"__metadata__":[]})", ""), "__metadata__"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Result<SafeTensorFile> parsed = parseSafeTensors(c.bytes);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(parsed.error().message.find(c.messagePart), std::string::npos)
        << parsed.error().message;
  }
}

TEST(SafeTensorsTest, AcceptsHandWrittenFileWithPaddingAndUnsortedOffsets) {
  std::string data(12, '\0');
  const float a = 1.5f;
  const std::int32_t b[2] = {-1, 9};
  std::memcpy(data.data(), b, 8);
  std::memcpy(data.data() + 8, &a, 4);
  // "a" comes after "b" in the data section, and the header is padded with spaces.
  Result<SafeTensorFile> parsed =
      parseSafeTensors(rawFile(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[8,12]},)"
                               R"("b":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}   )",
                               data));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->find("a")->elementCount(), 1);  // a scalar
  EXPECT_EQ(parsed->find("a")->toFloat(), (std::vector<float>{1.5f}));
  EXPECT_EQ(parsed->find("b")->toInt64(), (std::vector<std::int64_t>{-1, 9}));
}

TEST(SafeTensorsTest, WritesAtomicallyAndReadsBack) {
  deviceops::testing::TempDir dir;
  const auto path = dir.path("model.safetensors");
  ASSERT_TRUE(writeSafeTensorsFile(path, sampleFile()).ok());
  // Overwrite: the new contents replace the old, no temporary file is left behind.
  SafeTensorFile second;
  second.tensors["x"] = makeF32Tensor({1}, {42});
  ASSERT_TRUE(writeSafeTensorsFile(path, second).ok());
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.root())) {
    ++entries;
  }
  EXPECT_EQ(entries, 1u);

  Result<SafeTensorFile> read = readSafeTensorsFile(path);
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_EQ(read->tensors.size(), 1u);
  EXPECT_EQ(read->find("x")->toFloat(), (std::vector<float>{42}));
  std::ifstream in(path, std::ios::binary);
  const std::string onDisk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(onDisk, serializeSafeTensors(second));
}

TEST(SafeTensorsTest, ReadErrors) {
  deviceops::testing::TempDir dir;
  Result<SafeTensorFile> missing = readSafeTensorsFile(dir.path("nope.safetensors"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  std::ofstream(dir.path("empty.safetensors")).close();
  Result<SafeTensorFile> empty = readSafeTensorsFile(dir.path("empty.safetensors"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::kInvalidArgument);

  EXPECT_FALSE(writeSafeTensorsFile(dir.path("no/such/dir/x.safetensors"), sampleFile()).ok());
}

}  // namespace
}  // namespace deviceops::training
