#include "api/auth.h"

#include <gtest/gtest.h>

namespace deviceops::api {
namespace {

config::Config configWithTokens(config::AuthMode mode) {
  config::Config config;
  config.authMode = mode;
  config.tokens.push_back({"reader", "read-secret-0123456789", Scope::kRead});
  config.tokens.push_back({"operator", "operate-secret-0123456789", Scope::kOperate});
  config.tokens.push_back({"root", "admin-secret-0123456789", Scope::kAdmin});
  return config;
}

http::Request withHeader(std::string value) {
  http::Request request;
  if (!value.empty()) request.headers["authorization"] = std::move(value);
  return request;
}

TEST(AuthTest, ScopesAreHierarchical) {
  auto authorize = makeAuthorizer(configWithTokens(config::AuthMode::kAlways));
  struct Case {
    std::string header;
    Scope needed;
    std::optional<ErrorCode> error;
    std::string principal;
  };
  const Case cases[] = {
      {"", Scope::kRead, ErrorCode::kUnauthenticated, ""},
      {"Basic abc", Scope::kRead, ErrorCode::kUnauthenticated, ""},
      {"Bearer ", Scope::kRead, ErrorCode::kUnauthenticated, ""},
      {"Bearer wrong-secret-0123456789", Scope::kRead, ErrorCode::kUnauthenticated, ""},
      {"Bearer read-secret-012345678", Scope::kRead, ErrorCode::kUnauthenticated, ""},  // prefix
      {"Bearer read-secret-0123456789", Scope::kRead, std::nullopt, "reader"},
      {"bearer read-secret-0123456789", Scope::kRead, std::nullopt, "reader"},
      {"Bearer read-secret-0123456789", Scope::kOperate, ErrorCode::kPermissionDenied, ""},
      {"Bearer operate-secret-0123456789", Scope::kOperate, std::nullopt, "operator"},
      {"Bearer operate-secret-0123456789", Scope::kAdmin, ErrorCode::kPermissionDenied, ""},
      {"Bearer admin-secret-0123456789", Scope::kAdmin, std::nullopt, "root"},
      {"Bearer admin-secret-0123456789", Scope::kRead, std::nullopt, "root"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.header + " needs " + std::string(scopeName(c.needed)));
    Result<std::string> result = authorize(withHeader(c.header), c.needed);
    if (c.error) {
      ASSERT_FALSE(result.ok());
      EXPECT_EQ(result.error().code, *c.error);
      // The secret is never echoed back.
      EXPECT_EQ(result.error().message.find("secret"), std::string::npos);
    } else {
      ASSERT_TRUE(result.ok()) << result.error().message;
      EXPECT_EQ(*result, c.principal);
    }
  }
}

TEST(AuthTest, LoopbackWithoutRequirementLetsAnonymousThrough) {
  auto authorize = makeAuthorizer(configWithTokens(config::AuthMode::kAuto));
  EXPECT_EQ(*authorize(withHeader(""), Scope::kAdmin), "anonymous");
  EXPECT_EQ(*authorize(withHeader("Bearer operate-secret-0123456789"), Scope::kAdmin), "operator");
}

TEST(AuthTest, ConstantTimeEqualsIsEquality) {
  EXPECT_TRUE(constantTimeEquals("", ""));
  EXPECT_TRUE(constantTimeEquals("abc", "abc"));
  EXPECT_FALSE(constantTimeEquals("abc", "abd"));
  EXPECT_FALSE(constantTimeEquals("abc", "ab"));
  EXPECT_FALSE(constantTimeEquals("", "a"));
  EXPECT_FALSE(constantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
}

}  // namespace
}  // namespace deviceops::api
