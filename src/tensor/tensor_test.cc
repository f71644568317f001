#include "tensor/tensor.h"

#include <gtest/gtest.h>

namespace deviceops::inference {
namespace {

TEST(TensorTest, NamesRoundTripForEveryType) {
  for (const char* name : {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32",
                           "INT64", "FP16", "BF16", "FP32", "FP64", "BYTES"}) {
    SCOPED_TRACE(name);
    const std::optional<DataType> type = parseDataType(name);
    ASSERT_TRUE(type.has_value());
    EXPECT_EQ(dataTypeName(*type), name);
  }
  EXPECT_FALSE(parseDataType("fp32").has_value());
  EXPECT_FALSE(parseDataType("FLOAT").has_value());
  EXPECT_EQ(elementSize(DataType::kFp16), 2u);
  EXPECT_EQ(elementSize(DataType::kFp64), 8u);
  EXPECT_EQ(elementSize(DataType::kBytes), 0u);
}

TEST(TensorTest, ElementCountRejectsNegativeAndOverflow) {
  EXPECT_EQ(elementCount({}).value(), 1u);
  EXPECT_EQ(elementCount({2, 0, 5}).value(), 0u);
  EXPECT_EQ(elementCount({4, 16}).value(), 64u);
  EXPECT_FALSE(elementCount({-1, 3}).ok());
  EXPECT_FALSE(elementCount({1ll << 40, 1ll << 40}).ok());
  EXPECT_FALSE(byteCount(DataType::kFp64, {1ll << 61}).ok());
  EXPECT_EQ(byteCount(DataType::kFp32, {3, 5}).value(), 60u);
}

TEST(TensorTest, ValidateChecksDataLengthAgainstShape) {
  Tensor tensor{"x", DataType::kFp32, {2, 3}, std::string(24, '\0'), {}};
  EXPECT_TRUE(tensor.validate().ok());
  tensor.data.pop_back();
  const Status status = tensor.validate();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("'x'"), std::string::npos);
  Tensor strings{"s", DataType::kBytes, {2}, {}, {"a", "bc"}};
  EXPECT_TRUE(strings.validate().ok());
  strings.strings.pop_back();
  EXPECT_FALSE(strings.validate().ok());
}

TEST(TensorTest, CheckAgainstSpecNamesTheMismatch) {
  const TensorSpec spec{"input", DataType::kFp32, {-1, 4}};
  Tensor good{"input", DataType::kFp32, {3, 4}, std::string(48, '\0'), {}};
  EXPECT_TRUE(checkAgainstSpec(good, spec).ok());
  Tensor wrongType = good;
  wrongType.type = DataType::kFp64;
  wrongType.data.assign(96, '\0');
  EXPECT_NE(checkAgainstSpec(wrongType, spec).error().message.find("FP32"), std::string::npos);
  Tensor wrongRank{"input", DataType::kFp32, {12}, std::string(48, '\0'), {}};
  EXPECT_NE(checkAgainstSpec(wrongRank, spec).error().message.find("rank 2"), std::string::npos);
  Tensor wrongDim{"input", DataType::kFp32, {4, 3}, std::string(48, '\0'), {}};
  EXPECT_NE(checkAgainstSpec(wrongDim, spec).error().message.find("dimension 1 must be 4"),
            std::string::npos);
}

}  // namespace
}  // namespace deviceops::inference
