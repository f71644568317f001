// Bearer-token authentication on a daemon bound to a non-loopback address (0.0.0.0; the test
// still connects through 127.0.0.1).
#include <gtest/gtest.h>

#include "test_daemon.h"

namespace deviceops::testing {
namespace {

constexpr const char* kReadToken = "read-token-7f3a9c2e51b04d";
constexpr const char* kOperateToken = "operate-token-c41d88e0a2f3";
constexpr const char* kAdminToken = "admin-token-99e1b7c3d5a0f2";

const char* kConfig = R"(
[server]
listen = "0.0.0.0:0"
[[auth.tokens]]
name = "dashboard"
token = "read-token-7f3a9c2e51b04d"
scope = "read"
[[auth.tokens]]
name = "scheduler"
token = "operate-token-c41d88e0a2f3"
scope = "operate"
[[auth.tokens]]
name = "ops"
token = "admin-token-99e1b7c3d5a0f2"
scope = "admin"
)";

std::map<std::string, std::string> bearer(const char* token) {
  return {{"Authorization", std::string("Bearer ") + token}};
}

TEST(AuthIntegrationTest, TokensAndScopesAreEnforcedOnNonLoopbackAddresses) {
  // --listen would override the config's 0.0.0.0, so pass it again explicitly.
  TestDaemon daemon(kConfig, {"--listen", "0.0.0.0:0"});
  ASSERT_TRUE(daemon.started()) << daemon.log();

  EXPECT_EQ(daemon.get("/health").status, 200);  // probes need no token
  EXPECT_EQ(daemon.get("/ready").status, 200);

  RawResponse missing = daemon.get("/api/device");
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.json()["error"]["code"], "UNAUTHENTICATED");
  EXPECT_EQ(missing.headers["www-authenticate"], "Bearer realm=\"deviceops\"");
  EXPECT_EQ(daemon.request("GET", "/api/device", "", bearer("wrong-token-000000000000")).status,
            401);
  EXPECT_EQ(daemon.request("GET", "/api/device", "", bearer(kReadToken)).status, 200);

  RawResponse forbidden = daemon.request("GET", "/api/config", "", bearer(kOperateToken));
  EXPECT_EQ(forbidden.status, 403);
  EXPECT_EQ(forbidden.json()["error"]["details"]["requiredScope"], "admin");
  RawResponse config = daemon.request("GET", "/api/config", "", bearer(kAdminToken));
  ASSERT_EQ(config.status, 200) << config.body;
  EXPECT_EQ(config.json()["authRequired"], true);
  EXPECT_EQ(config.body.find(kAdminToken), std::string::npos);  // secrets never shown

  EXPECT_EQ(daemon.stop(), 0);
  const std::string log = daemon.log();
  for (const char* secret : {kReadToken, kOperateToken, kAdminToken}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << "a token secret was logged";
  }
  EXPECT_NE(log.find("principal=ops"), std::string::npos);
}

TEST(AuthIntegrationTest, RefusesToStartOnANetworkAddressWithoutTokens) {
  TestDaemon daemon("", {"--listen", "0.0.0.0:0"});
  EXPECT_FALSE(daemon.started());
  EXPECT_NE(daemon.log().find("no [[auth.tokens]] are configured"), std::string::npos)
      << daemon.log();
}

}  // namespace
}  // namespace deviceops::testing
