#include "common/byte_size.h"

#include <gtest/gtest.h>

namespace deviceops {
namespace {

TEST(ByteSizeTest, AcceptsIntegersAndUnits) {
  const std::pair<const char*, std::uint64_t> cases[] = {
      {"0", 0},
      {"1048576", 1048576},
      {"512MiB", 512ull << 20},
      {"512 mib", 512ull << 20},
      {"1.5GiB", 3ull << 29},
      {"64KB", 64000},
      {"2 TiB", 2ull << 40},
      {" 7B ", 7},
      {"9007199254740992", 1ull << 53},
  };
  for (const auto& [text, expected] : cases) {
    SCOPED_TRACE(text);
    Result<std::uint64_t> parsed = parseByteSize(text);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(*parsed, expected);
  }
}

TEST(ByteSizeTest, RejectsBadInputWithInvalidArgument) {
  const char* cases[] = {"",
                         "   ",
                         "-1",
                         "abc",
                         "12XB",
                         "1.2.3MiB",
                         "0.5B",
                         "1e3",
                         "99999999999999999999999",
                         "9007199254740993",
                         "9000000TiB",
                         ".",
                         "NaN",
                         "inf"};
  for (const char* text : cases) {
    SCOPED_TRACE(text);
    Result<std::uint64_t> parsed = parseByteSize(text);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(parsed.error().message.empty());
  }
}

}  // namespace
}  // namespace deviceops
