#include "common/result.h"

#include <gtest/gtest.h>

#include <memory>

namespace deviceops {
namespace {

Result<int> parsePositive(int value) {
  if (value <= 0) return makeError(ErrorCode::kInvalidArgument, "not positive");
  return value;
}

Status check(bool good) {
  if (!good) return makeError(ErrorCode::kConflict, "bad state");
  return Status::success();
}

// Doubles a positive value; the steps after a failure must not run.
Result<int> doubled(int value, int& stepsRun) {
  ASSIGN_OR_RETURN(const int parsed, parsePositive(value));
  ++stepsRun;
  RETURN_IF_ERROR(check(parsed < 100));
  ++stepsRun;
  return parsed * 2;
}

Status both(int value) {
  RETURN_IF_ERROR(parsePositive(value));  // a Result works too; its value is dropped
  RETURN_IF_ERROR(check(value != 7));
  return Status::success();
}

TEST(ResultMacrosTest, HappyPathReadsStraightDown) {
  int steps = 0;
  Result<int> result = doubled(21, steps);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 42);
  EXPECT_EQ(steps, 2);
}

TEST(ResultMacrosTest, FirstErrorReturnsAndStopsTheSequence) {
  int steps = 0;
  Result<int> invalid = doubled(-1, steps);
  ASSERT_FALSE(invalid.ok());
  EXPECT_EQ(invalid.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(steps, 0);

  steps = 0;
  Result<int> conflict = doubled(500, steps);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.error().code, ErrorCode::kConflict);
  EXPECT_EQ(conflict.error().message, "bad state");
  EXPECT_EQ(steps, 1);
}

TEST(ResultMacrosTest, StatusFunctionsPropagateResultAndStatusErrors) {
  EXPECT_TRUE(both(3).ok());
  EXPECT_EQ(both(0).error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(both(7).error().code, ErrorCode::kConflict);
}

TEST(ResultMacrosTest, AssignMovesMoveOnlyValues) {
  const auto make = [](bool good) -> Result<std::unique_ptr<int>> {
    if (!good) return makeError(ErrorCode::kNotFound, "none");
    return std::make_unique<int>(5);
  };
  const auto use = [&](bool good) -> Result<int> {
    ASSIGN_OR_RETURN(std::unique_ptr<int> pointer, make(good));
    return *pointer + 1;
  };
  EXPECT_EQ(*use(true), 6);
  EXPECT_EQ(use(false).error().code, ErrorCode::kNotFound);
}

TEST(ResultMacrosTest, RetryAfterIsTypedAndUnsetByDefault) {
  Error error = makeError(ErrorCode::kUnavailable, "queue full");
  EXPECT_FALSE(error.retryAfter.has_value());
  error.retryAfter = std::chrono::seconds(3);
  Result<int> result = error;
  EXPECT_EQ(result.error().retryAfter, std::chrono::seconds(3));
}

}  // namespace
}  // namespace deviceops
