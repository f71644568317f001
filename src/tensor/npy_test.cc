#include "tensor/npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

namespace deviceops::inference {
namespace {

std::string fromHex(std::string_view hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return bytes;
}

// Written by NumPy 1.24: np.save(np.arange(6, dtype='<f4').reshape(2, 3)).
const std::string kFloat32x2x3 = fromHex(
    "934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c"
    "73"
    "652c20277368617065273a2028322c2033292c207d2020202020202020202020202020202020202020202020202020"
    "20"
    "202020202020202020202020202020202020202020202020202020202020200a000000000000803f00000040000040"
    "40"
    "000080400000a040");
// np.save(np.array(['ab', 'c'], dtype='<U2'))
const std::string kUnicode = fromHex(
    "934e554d5059010076007b276465736372273a20273c5532272c2027666f727472616e5f6f72646572273a2046616c"
    "73"
    "652c20277368617065273a2028322c292c207d20202020202020202020202020202020202020202020202020202020"
    "20"
    "202020202020202020202020202020202020202020202020202020202020200a610000006200000063000000000000"
    "00");
// np.lib.format.write_array(np.array(7, dtype='<i8'), version=(2, 0))
const std::string kInt64ScalarV2 = fromHex(
    "934e554d50590200740000007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046"
    "61"
    "6c73652c20277368617065273a2028292c207d20202020202020202020202020202020202020202020202020202020"
    "20"
    "202020202020202020202020202020202020202020202020202020202020200a0700000000000000");

TEST(NpyTest, ReadsWhatNumpyWrites) {
  Result<Tensor> tensor = readNpy(kFloat32x2x3, "x");
  ASSERT_TRUE(tensor.ok()) << tensor.error().message;
  EXPECT_EQ(tensor->name, "x");
  EXPECT_EQ(tensor->type, DataType::kFp32);
  EXPECT_EQ(tensor->shape, (std::vector<std::int64_t>{2, 3}));
  ASSERT_EQ(tensor->data.size(), 24u);
  float values[6];
  std::memcpy(values, tensor->data.data(), 24);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(values[i], static_cast<float>(i));

  Result<Tensor> strings = readNpy(kUnicode);
  ASSERT_TRUE(strings.ok()) << strings.error().message;
  EXPECT_EQ(strings->type, DataType::kBytes);
  EXPECT_EQ(strings->strings, (std::vector<std::string>{"ab", "c"}));

  Result<Tensor> scalar = readNpy(kInt64ScalarV2);
  ASSERT_TRUE(scalar.ok()) << scalar.error().message;
  EXPECT_EQ(scalar->type, DataType::kInt64);
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->data, std::string("\x07\0\0\0\0\0\0\0", 8));
}

TEST(NpyTest, WritesExactlyWhatNumpyWrites) {
  Tensor tensor = *readNpy(kFloat32x2x3);
  EXPECT_EQ(writeNpy(tensor), kFloat32x2x3);
}

TEST(NpyTest, RoundTripsEveryType) {
  const std::vector<DataType> types = {DataType::kBool,   DataType::kUint8,  DataType::kUint16,
                                       DataType::kUint32, DataType::kUint64, DataType::kInt8,
                                       DataType::kInt16,  DataType::kInt32,  DataType::kInt64,
                                       DataType::kFp16,   DataType::kFp32,   DataType::kFp64};
  for (DataType type : types) {
    SCOPED_TRACE(std::string(dataTypeName(type)));
    Tensor tensor;
    tensor.type = type;
    tensor.shape = {2, 3};
    for (std::size_t i = 0; i < 6 * elementSize(type); ++i) {
      tensor.data.push_back(type == DataType::kBool ? static_cast<char>(i % 2)
                                                    : static_cast<char>(i * 37 + 1));
    }
    Result<Tensor> back = readNpy(writeNpy(tensor));
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_EQ(back->type, type);
    EXPECT_EQ(back->shape, tensor.shape);
    EXPECT_EQ(back->data, tensor.data);
  }
  Tensor strings;
  strings.type = DataType::kBytes;
  strings.shape = {3};
  strings.strings = {"hello", "", "x"};
  Result<Tensor> back = readNpy(writeNpy(strings));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->strings, strings.strings);
}

TEST(NpyTest, Bfloat16IsWrittenAsExactFloat32) {
  Tensor tensor;
  tensor.type = DataType::kBf16;
  tensor.shape = {2};
  tensor.data = std::string("\x80\x3f\xc0\xbf", 4);  // 1.0, -1.5
  Result<Tensor> back = readNpy(writeNpy(tensor));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->type, DataType::kFp32);
  float values[2];
  std::memcpy(values, back->data.data(), 8);
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[1], -1.5f);
}

TEST(NpyTest, LargeHeaderUsesVersion2) {
  Tensor tensor;
  tensor.type = DataType::kUint8;
  tensor.shape.assign(30000, 1);  // "1, " x 30000 does not fit a 16-bit header length
  tensor.data = "z";
  const std::string bytes = writeNpy(tensor);
  EXPECT_EQ(bytes[6], 2);
  EXPECT_EQ((bytes.size() - 1) % 64, 0u);
  Result<Tensor> back = readNpy(bytes);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->shape.size(), 30000u);
}

TEST(NpyTest, RejectsBadFiles) {
  using namespace std::literals;
  const auto replace = [](std::string text, std::string_view from, std::string_view to) {
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  struct Case {
    const char* name;
    std::string bytes;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"empty", "", "magic"},
      {"not npy", "PK\x03\x04 a zip file", "magic"},
      {"version 9", replace(kFloat32x2x3, "\x01\x00v"sv, "\x09\x00v"sv), "version 9"},
      {"truncated data", kFloat32x2x3.substr(0, kFloat32x2x3.size() - 1), "needs 24 data bytes"},
      {"extra data", kFloat32x2x3 + "x", "needs 24 data bytes"},
      {"truncated header", kFloat32x2x3.substr(0, 40), "header claims"},
      {"big endian", replace(kFloat32x2x3, "<f4", ">f4"), "big-endian"},
      {"fortran", replace(kFloat32x2x3, "False", "True "), "Fortran"},
      {"object", replace(kFloat32x2x3, "<f4", "|O8"), "not supported"},
      {"complex", replace(kFloat32x2x3, "<f4", "<c8"), "not supported"},
      {"bad shape", replace(kFloat32x2x3, "(2, 3)", "(2, x)"), "shape"},
      {"negative shape", replace(kFloat32x2x3, "(2, 3)", "(-2,3)"), "shape"},
      {"huge shape",
       replace(kFloat32x2x3, std::string("(2, 3), }") + std::string(20, ' '),
               "(999999999999999999, 99999,)}"),
       "too many elements"},
      {"unknown key", replace(kFloat32x2x3, "'shape'", "'shapo'"), "unexpected header key"},
      {"no dict", replace(kFloat32x2x3, "{", "["), "not a Python dict"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Result<Tensor> tensor = readNpy(c.bytes);
    ASSERT_FALSE(tensor.ok());
    EXPECT_EQ(tensor.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(tensor.error().message.find(c.message), std::string::npos) << tensor.error().message;
  }
}

TEST(NpyTest, FilesRoundTripAndMissingFileIsNotFound) {
  const auto directory = std::filesystem::temp_directory_path() / "deviceops_npy_test";
  std::filesystem::create_directories(directory);
  Tensor tensor = *readNpy(kFloat32x2x3, "x");
  ASSERT_TRUE(writeNpyFile(directory / "x.npy", tensor).ok());
  Result<Tensor> back = readNpyFile(directory / "x.npy", "y");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->name, "y");
  EXPECT_EQ(back->data, tensor.data);
  EXPECT_EQ(readNpyFile(directory / "missing.npy").error().code, ErrorCode::kNotFound);
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace deviceops::inference
