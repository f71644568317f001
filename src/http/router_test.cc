#include "http/router.h"

#include <gtest/gtest.h>

#include "http/errors.h"

namespace deviceops::http {
namespace {

Handler named(std::string name) {
  return [name](Request&) -> Result<Reply> { return bytesReply(200, "text/plain", name); };
}

class RouterTest : public testing::Test {
 protected:
  void SetUp() override {
    router.add("GET", "/api/device", named("list"));
    router.add("GET", "/api/device/{deviceId}", named("one"));
    router.add("GET", "/api/device/{deviceId}/health", named("health"));
    router.add("GET", "/api/memory/allocations", named("allocations"));
    router.add("GET", "/api/memory/{deviceId}/status", named("status"));
    router.add("DELETE", "/api/memory/{allocationId}", named("free"));
    router.add("POST", "/api/memory/allocate", named("allocate"));
  }
  std::string run(std::string_view method, std::string_view path) {
    RouteMatch match = router.match(method, path);
    if (match.route == nullptr) {
      return match.allowedMethods.empty() ? "NOT_FOUND" : "METHOD_NOT_ALLOWED";
    }
    Request request;
    request.pathParams = match.params;
    return match.route->handler(request)->body;
  }
  Router router;
};

TEST_F(RouterTest, MatchesLiteralsAndParameters) {
  const std::tuple<const char*, const char*, const char*> cases[] = {
      {"GET", "/api/device", "list"},
      {"GET", "/api/device/gpu-0", "one"},
      {"GET", "/api/device/gpu-0/health", "health"},
      {"HEAD", "/api/device", "list"},
      {"GET", "/api/memory/allocations", "allocations"},  // literal beats {allocationId}
      {"DELETE", "/api/memory/abc", "free"},
      {"POST", "/api/memory/allocate", "allocate"},
      {"GET", "/api/device/", "NOT_FOUND"},  // an empty segment is no parameter
      {"GET", "/api/devices", "NOT_FOUND"},
      {"GET", "/api/device/a/b/c", "NOT_FOUND"},
      {"GET", "/", "NOT_FOUND"},
      {"POST", "/api/device", "METHOD_NOT_ALLOWED"},
      {"PUT", "/api/memory/allocate", "METHOD_NOT_ALLOWED"},
      {"GET", "api/device", "NOT_FOUND"},
  };
  for (const auto& [method, path, expected] : cases) {
    SCOPED_TRACE(std::string(method) + " " + path);
    EXPECT_EQ(run(method, path), expected);
  }
}

TEST_F(RouterTest, CapturesParametersAndListsAllowedMethods) {
  RouteMatch match = router.match("GET", "/api/memory/gpu-1/status");
  ASSERT_NE(match.route, nullptr);
  EXPECT_EQ(match.params.at("deviceId"), "gpu-1");
  RouteMatch wrong = router.match("PATCH", "/api/memory/allocate");
  EXPECT_EQ(wrong.route, nullptr);
  EXPECT_EQ(wrong.allowedMethods, (std::vector<std::string>{"DELETE", "POST"}));
  const Reply reply = methodNotAllowedReply("PATCH", "/api/memory/allocate", wrong.allowedMethods);
  EXPECT_EQ(reply.status, 405);
  const auto body = nlohmann::json::parse(reply.body);
  EXPECT_EQ(body["error"]["code"], "METHOD_NOT_ALLOWED");
  EXPECT_EQ(body["error"]["details"]["allowed"], nlohmann::json::array({"DELETE", "POST"}));
  EXPECT_EQ(reply.headers,
            (std::vector<std::pair<std::string, std::string>>{{"Allow", "DELETE, POST"}}));
  EXPECT_EQ(router.match("GET", "/nowhere").allowedMethods.size(), 0u);
}

TEST_F(RouterTest, GroupsGiveTheirRoutesTheirErrorShape) {
  RouteGroup kserve = router.group(ErrorShape::kKServe);
  kserve.add("GET", "/v2/thing", named("thing"));
  EXPECT_EQ(router.match("GET", "/v2/thing").route->errorShape, ErrorShape::kKServe);
  EXPECT_EQ(router.match("GET", "/api/device").route->errorShape, ErrorShape::kApi);
}

TEST_F(RouterTest, DefaultScopesFollowTheMethod) {
  EXPECT_EQ(router.match("GET", "/api/device").route->scope, Scope::kRead);
  EXPECT_EQ(router.match("POST", "/api/memory/allocate").route->scope, Scope::kOperate);
  EXPECT_EQ(router.match("DELETE", "/api/memory/x").route->scope, Scope::kOperate);
}

TEST(TargetTest, DecodesPathAndQuery) {
  auto parsed = parseTarget("/api/device/gpu%2D1?type=gpu&label=a+b&x=%41&flag");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->path, "/api/device/gpu-1");
  EXPECT_EQ(parsed->query.at("type"), "gpu");
  EXPECT_EQ(parsed->query.at("label"), "a b");
  EXPECT_EQ(parsed->query.at("x"), "A");
  EXPECT_EQ(parsed->query.at("flag"), "");
}

TEST(TargetTest, RejectsMalformedTargets) {
  for (const char* target : {"", "api", "/a%", "/a%4", "/a%zz", "/a%00b", "/?x=%G1", "http://x/"}) {
    SCOPED_TRACE(target);
    EXPECT_FALSE(parseTarget(target).has_value());
  }
}

TEST(ErrorsTest, EveryCodeHasOneStatusAndTheBodyShape) {
  const std::pair<ErrorCode, int> cases[] = {{ErrorCode::kInvalidArgument, 400},
                                             {ErrorCode::kUnauthenticated, 401},
                                             {ErrorCode::kPermissionDenied, 403},
                                             {ErrorCode::kNotFound, 404},
                                             {ErrorCode::kConflict, 409},
                                             {ErrorCode::kPayloadTooLarge, 413},
                                             {ErrorCode::kUnsupportedMediaType, 415},
                                             {ErrorCode::kUnprocessable, 422},
                                             {ErrorCode::kResourceExhausted, 507},
                                             {ErrorCode::kUnavailable, 503},
                                             {ErrorCode::kDeadlineExceeded, 504},
                                             {ErrorCode::kInternal, 500}};
  for (const auto& [code, status] : cases) {
    Reply response = errorReply(makeError(code, "what went wrong", {{"k", 1}}));
    EXPECT_EQ(response.status, status);
    auto body = nlohmann::json::parse(response.body);
    EXPECT_EQ(body["error"]["code"], errorCodeName(code));
    EXPECT_EQ(body["error"]["message"], "what went wrong");
    EXPECT_EQ(body["error"]["details"]["k"], 1);
  }
}

TEST(ErrorsTest, KServeShapeRetryAfterAndAuthenticateHeaders) {
  const auto header = [](const Reply& reply, const std::string& name) {
    for (const auto& [key, value] : reply.headers) {
      if (key == name) return value;
    }
    return std::string("<none>");
  };
  Error full = makeError(ErrorCode::kUnavailable, "queue is full", {{"queued", 3}});
  full.retryAfter = std::chrono::seconds(4);
  const Reply kserve = errorReply(full, ErrorShape::kKServe);
  EXPECT_EQ(kserve.status, 503);
  EXPECT_EQ(nlohmann::json::parse(kserve.body), (nlohmann::json{{"error", "queue is full"}}));
  EXPECT_EQ(header(kserve, "Retry-After"), "4");
  const Reply api = errorReply(full);
  EXPECT_EQ(nlohmann::json::parse(api.body)["error"]["details"]["queued"], 3);
  EXPECT_EQ(header(api, "Retry-After"), "4");
  // kUnavailable without a typed delay: one second; other codes: no Retry-After.
  EXPECT_EQ(header(errorReply(makeError(ErrorCode::kUnavailable, "x")), "Retry-After"), "1");
  EXPECT_EQ(header(errorReply(makeError(ErrorCode::kConflict, "x")), "Retry-After"), "<none>");
  for (const ErrorShape shape : {ErrorShape::kApi, ErrorShape::kKServe}) {
    const Reply unauthenticated = errorReply(makeError(ErrorCode::kUnauthenticated, "x"), shape);
    EXPECT_EQ(unauthenticated.status, 401);
    EXPECT_EQ(header(unauthenticated, "WWW-Authenticate"), "Bearer realm=\"deviceops\"");
  }
}

TEST(ErrorsTest, JsonBodyErrorsNameThePosition) {
  Request request;
  request.body = R"({"a": tru})";
  auto parsed = parseJsonBody(request);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(parsed.error().message.find("at byte"), std::string::npos);
  EXPECT_TRUE(parsed.error().details.contains("position"));

  request.body = R"({"sizeBytes": -3e25475})";  // found by json_body_fuzzer: out_of_range
  EXPECT_EQ(parseJsonBody(request).error().code, ErrorCode::kInvalidArgument);
  request.body = "[1, 2]";
  EXPECT_EQ(parseJsonBody(request).error().code, ErrorCode::kInvalidArgument);
  request.body = "";
  EXPECT_EQ(parseJsonBody(request).error().code, ErrorCode::kInvalidArgument);
  request.body = "{}";
  request.headers["content-type"] = "text/plain";
  EXPECT_EQ(parseJsonBody(request).error().code, ErrorCode::kUnsupportedMediaType);
  request.headers["content-type"] = "application/json; charset=utf-8";
  EXPECT_TRUE(parseJsonBody(request).ok());
}

}  // namespace
}  // namespace deviceops::http
