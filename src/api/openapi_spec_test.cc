// The spec and the router must agree: every route is documented, every documented operation
// exists. Fails when either side changes alone.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "api/app.h"
#include "common/testing/temp_dir.h"
#include "devices/testing/allocators.h"
#include "memory/ledger_store.h"

namespace deviceops::api {
namespace {

// Every route group registered, the optional components as disabled (same routes, 503).
class ApiRoutesTest : public ::testing::Test {
 protected:
  ApiRoutesTest()
      : inventory_({}, {}),
        memory_(inventory_, std::move(memory::openSqliteLedgerStore(dataDir_.root()).value()),
                memory::MemoryOptions{}, devices::testing::makeCpuOrSimulatedAllocator),
        context_(config_, inventory_, memory_) {
    registerAllRoutesDisabled(router_, context_);
  }

  testing::TempDir dataDir_;
  config::Config config_;
  devices::Inventory inventory_;
  memory::MemoryService memory_;
  AppContext context_;
  http::Router router_;
};

TEST_F(ApiRoutesTest, SpecAndRouterAgree) {
  std::set<std::string> routed;
  for (const http::Route& route : router_.routes())
    routed.insert(route.method + " " + route.pattern);

  const auto spec = nlohmann::json::parse(openApiSpecJson());
  ASSERT_EQ(spec["openapi"].get<std::string>().substr(0, 2), "3.");
  std::set<std::string> documented;
  for (const auto& [path, operations] : spec["paths"].items()) {
    for (const auto& [method, operation] : operations.items()) {
      if (method == "parameters") continue;
      std::string upper = method;
      for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      documented.insert(upper + " " + path);
      EXPECT_TRUE(operation.contains("responses")) << upper << " " << path;
    }
  }
  for (const std::string& route : routed) {
    EXPECT_TRUE(documented.count(route)) << "route missing from docs/openapi.yaml: " << route;
  }
  for (const std::string& operation : documented) {
    EXPECT_TRUE(routed.count(operation)) << "documented but not routed: " << operation;
  }
}

// Swagger UI groups operations by their first tag and sends "Try it out" to servers[0]: every
// operation has one declared tag, and the server is the address the page was loaded from.
TEST(OpenApiSpecTest, EveryOperationIsTaggedAndTheServerIsRelative) {
  const auto spec = nlohmann::json::parse(openApiSpecJson());
  ASSERT_EQ(spec["servers"].size(), 1u);
  EXPECT_EQ(spec["servers"][0]["url"], "/");
  std::set<std::string> declared;
  for (const auto& tag : spec["tags"]) declared.insert(tag["name"].get<std::string>());
  EXPECT_GE(declared.size(), 10u);
  std::map<std::string, int> used;
  for (const auto& [path, operations] : spec["paths"].items()) {
    for (const auto& [method, operation] : operations.items()) {
      if (method == "parameters") continue;
      ASSERT_TRUE(operation.contains("tags")) << method << " " << path;
      ASSERT_EQ(operation["tags"].size(), 1u) << method << " " << path;
      const std::string tag = operation["tags"][0].get<std::string>();
      EXPECT_TRUE(declared.count(tag)) << method << " " << path << ": undeclared tag " << tag;
      ++used[tag];
    }
  }
  for (const std::string& tag : declared)
    EXPECT_GT(used[tag], 0) << "tag without operations: " << tag;
  EXPECT_EQ(spec["paths"]["/v2/models/{m}/infer"]["post"]["tags"][0], "kserve-v2");
  EXPECT_EQ(spec["paths"]["/api/stream"]["get"]["tags"][0], "live");
}

TEST_F(ApiRoutesTest, DisabledComponentsAnswer503NamingTheSetting) {
  const struct {
    const char* method;
    const char* path;
    const char* reason;
    http::ErrorShape shape;
  } cases[] = {
      {"POST", "/api/training/start", "[training] enabled = false", http::ErrorShape::kApi},
      {"GET", "/api/training/job-1/events", "[training] enabled = false", http::ErrorShape::kApi},
      {"POST", "/api/inference/execute", "[inference] enabled = false", http::ErrorShape::kApi},
      {"POST", "/v2/models/m/infer", "[inference] enabled = false", http::ErrorShape::kKServe},
      {"GET", "/api/events", "[telemetry] enabled = false", http::ErrorShape::kApi},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(c.method) + " " + c.path);
    const http::RouteMatch match = router_.match(c.method, c.path);
    ASSERT_NE(match.route, nullptr);
    EXPECT_EQ(match.route->errorShape, c.shape);
    http::Request request;
    request.pathParams = match.params;
    const Result<http::Reply> reply = match.route->handler(request);
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(reply.error().message.find(c.reason), std::string::npos) << reply.error().message;
  }
  // Triton's probes still answer: live, and not ready.
  http::Request request;
  EXPECT_EQ(router_.match("GET", "/v2/health/live").route->handler(request)->status, 200);
  EXPECT_EQ(router_.match("GET", "/v2/health/ready").route->handler(request)->status, 400);
  // The core groups work without the optional components.
  EXPECT_EQ(router_.match("GET", "/health").route->handler(request)->status, 200);
  request.pathParams = {{"deviceId", "nope"}};
  const Result<http::Reply> unknown =
      router_.match("GET", "/api/memory/nope/status").route->handler(request);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace deviceops::api
