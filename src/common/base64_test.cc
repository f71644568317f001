#include "common/base64.h"

#include <gtest/gtest.h>

namespace deviceops {
namespace {

TEST(Base64Test, Rfc4648Vectors) {
  const std::pair<const char*, const char*> kCases[] = {{"", ""},
                                                        {"f", "Zg=="},
                                                        {"fo", "Zm8="},
                                                        {"foo", "Zm9v"},
                                                        {"foob", "Zm9vYg=="},
                                                        {"fooba", "Zm9vYmE="},
                                                        {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : kCases) {
    SCOPED_TRACE(plain);
    EXPECT_EQ(base64Encode(plain), encoded);
  }
}

TEST(Base64Test, AllByteValues) {
  EXPECT_EQ(base64Encode(std::string("\x00\xff\x80", 3)), "AP+A");
  EXPECT_EQ(base64Encode(std::string("\xfb\xff", 2)), "+/8=");
}

}  // namespace
}  // namespace deviceops
