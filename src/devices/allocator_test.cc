#include "devices/allocator.h"

#include <gtest/gtest.h>

namespace deviceops::devices {
namespace {

TEST(CheckTransferRangeTest, AcceptsRangesInsideTheBlockOnly) {
  constexpr std::uint64_t kMax = ~std::uint64_t{0};
  struct Case {
    std::uint64_t blockBytes;
    std::uint64_t offset;
    std::uint64_t bytes;
    bool ok;
  };
  const Case cases[] = {
      {100, 0, 100, true},       {100, 99, 1, true},         {100, 100, 0, true},
      {100, 0, 0, true},         {100, 37, 63, true},        {100, 0, 101, false},
      {100, 99, 2, false},       {100, 101, 0, false},       {100, kMax, 1, false},
      {100, 1, kMax, false},     {kMax, kMax - 1, 1, true},  {kMax, kMax - 1, 2, false},
      {kMax, 2, kMax - 2, true}, {kMax, 3, kMax - 2, false}, {0, 0, 0, true},
      {0, 0, 1, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.blockBytes << " " << c.offset << " " << c.bytes);
    Status status = checkTransferRange(c.blockBytes, c.offset, c.bytes);
    EXPECT_EQ(status.ok(), c.ok);
    if (!status.ok()) {
      EXPECT_EQ(status.error().code, ErrorCode::kInvalidArgument);
      EXPECT_EQ(status.error().details["offset"], c.offset);
      EXPECT_EQ(status.error().details["bytes"], c.bytes);
      EXPECT_EQ(status.error().details["blockBytes"], c.blockBytes);
    }
  }
  EXPECT_EQ(checkTransferRange(100, 99, 2).error().message,
            "a transfer of 2 bytes at offset 99 does not fit in a block of 100 bytes");
}

}  // namespace
}  // namespace deviceops::devices
