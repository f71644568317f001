// The spec and the router must agree: every route is documented, every documented operation
// exists. Fails when either side changes alone.
#include <gtest/gtest.h>

#include <set>

#include "api/app.h"
#include "devices/simulated/simulated_backend.h"

namespace deviceops::api {
namespace {

TEST(OpenApiSpecTest, SpecAndRouterAgree) {
  config::Config config;
  devices::Inventory inventory({}, {});
  AppContext context(config, inventory);
  http::Router router;
  registerAllRoutes(router, context);

  std::set<std::string> routed;
  for (const http::Route& route : router.routes()) routed.insert(route.method + " " + route.pattern);

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

}  // namespace
}  // namespace deviceops::api
