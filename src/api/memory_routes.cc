// /api/memory: allocate, free, status, list, optimize. All on the worker pool (real driver
// calls and store writes).
#include <fmt/format.h>

#include "api/app.h"
#include "api/memory_codec.h"
#include "http/errors.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

template <class T, class Encode>
http::Response respond(const Result<T>& result, int status, Encode encode) {
  if (!result.ok()) return http::errorResponse(result.error());
  return http::jsonResponse(status, encode(*result));
}

Result<memory::AllocationFilter> decodeFilter(const http::Request& request) {
  memory::AllocationFilter filter;
  filter.deviceId = request.queryParam("deviceId");
  filter.label = request.queryParam("label");
  if (auto kind = request.queryParam("kind")) {
    filter.kind = memory::parseAllocationKind(*kind);
    if (!filter.kind) {
      return makeError(ErrorCode::kInvalidArgument,
                       "kind '" + *kind + "' is not raw, model or training",
                       {{"parameter", "kind"}});
    }
  }
  if (auto state = request.queryParam("state")) {
    filter.state = memory::parseAllocationState(*state);
    if (!filter.state) {
      return makeError(ErrorCode::kInvalidArgument, "state '" + *state + "' is not held or released",
                       {{"parameter", "state"}});
    }
  }
  if (auto limit = request.queryParam("limit")) {
    char* end = nullptr;
    const unsigned long long value = std::strtoull(limit->c_str(), &end, 10);
    if (limit->empty() || *end != '\0' || value < 1 || value > 10000 || (*limit)[0] == '-') {
      return makeError(ErrorCode::kInvalidArgument, "limit must be an integer from 1 to 10000",
                       {{"parameter", "limit"}});
    }
    filter.limit = value;
  }
  return filter;
}

}  // namespace

void registerMemoryRoutes(http::Router& router, AppContext& context) {
  router.add("POST", "/api/memory/allocate", [&context](http::Request& request) {
    Result<json> body = http::parseJsonBody(request);
    if (!body.ok()) return http::errorResponse(body.error());
    Result<memory::AllocateRequest> decoded = decodeAllocateRequest(*body);
    if (!decoded.ok()) return http::errorResponse(decoded.error());
    decoded->owner = request.principal;
    auto result = context.memory->allocate(*decoded);
    http::Response response = respond(result, 201, encodeAllocateResult);
    if (result.ok()) {
      response.headers.emplace_back("Location", "/api/memory/allocations/" + result->record.id);
    }
    return response;
  });

  router.add("DELETE", "/api/memory/{allocationId}", [&context](http::Request& request) {
    return respond(context.memory->release(request.pathParam("allocationId")), 200,
                   encodeAllocation);
  });

  router.add("GET", "/api/memory/allocations/{allocationId}", [&context](http::Request& request) {
    return respond(context.memory->find(request.pathParam("allocationId")), 200,
                   encodeAllocation);
  });

  router.add("GET", "/api/memory/allocations", [&context](http::Request& request) {
    Result<memory::AllocationFilter> filter = decodeFilter(request);
    if (!filter.ok()) return http::errorResponse(filter.error());
    return respond(context.memory->list(*filter), 200, [](const auto& records) {
      json list = json::array();
      for (const auto& record : records) list.push_back(encodeAllocation(record));
      return json{{"allocations", list}, {"count", list.size()}};
    });
  });

  router.add("GET", "/api/memory/{deviceId}/status", [&context](http::Request& request) {
    return respond(context.memory->status(request.pathParam("deviceId")), 200,
                   encodeMemoryStatus);
  });

  router.add("POST", "/api/memory/{deviceId}/optimize", [&context](http::Request& request) {
    return respond(context.memory->optimize(request.pathParam("deviceId")), 200,
                   [](const memory::OptimizeResult& result) {
                     return json{{"deviceId", result.deviceId},
                                 {"releasedBytes", result.releasedBytes},
                                 {"pool", encodePoolStats(result.pool)}};
                   });
  });
}

}  // namespace deviceops::api
