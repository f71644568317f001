// /api/memory: allocate, free, status, list, optimize. All on the worker pool (real driver
// calls and store writes). The template for a route group: each handler decodes with its codec,
// makes one domain call and encodes; errors are returned and rendered by http/errors.cc.
#include "api/app.h"
#include "api/memory_codec.h"
#include "api/route_table.h"
#include "api/routes.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

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
      return makeError(ErrorCode::kInvalidArgument,
                       "state '" + *state + "' is not held or released", {{"parameter", "state"}});
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

json encodeAllocations(const std::vector<memory::AllocationRecord>& records) {
  json list = json::array();
  for (const auto& record : records) list.push_back(encodeAllocation(record));
  return {{"allocations", list}, {"count", list.size()}};
}

json encodeOptimizeResult(const memory::OptimizeResult& result) {
  return {{"deviceId", result.deviceId},
          {"releasedBytes", result.releasedBytes},
          {"pool", encodePoolStats(result.pool)}};
}

class MemoryRoutes {
 public:
  explicit MemoryRoutes(memory::MemoryService& memory) : memory_(memory) {}

  Result<http::Reply> allocate(http::Request& request) {
    ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
    ASSIGN_OR_RETURN(memory::AllocateRequest decoded, decodeAllocateRequest(body));
    decoded.owner = request.principal;
    ASSIGN_OR_RETURN(const memory::AllocateResult result, memory_.allocate(decoded));
    return http::jsonReply(201, encodeAllocateResult(result))
        .withHeader("Location", "/api/memory/allocations/" + result.record.id);
  }

  Result<http::Reply> release(http::Request& request) {
    return encoded(memory_.release(request.pathParam("allocationId")), encodeAllocation);
  }

  Result<http::Reply> find(http::Request& request) {
    return encoded(memory_.find(request.pathParam("allocationId")), encodeAllocation);
  }

  Result<http::Reply> list(http::Request& request) {
    ASSIGN_OR_RETURN(const memory::AllocationFilter filter, decodeFilter(request));
    return encoded(memory_.list(filter), encodeAllocations);
  }

  Result<http::Reply> status(http::Request& request) {
    return encoded(memory_.status(request.pathParam("deviceId")), encodeMemoryStatus);
  }

  Result<http::Reply> optimize(http::Request& request) {
    return encoded(memory_.optimize(request.pathParam("deviceId")), encodeOptimizeResult);
  }

 private:
  memory::MemoryService& memory_;
};

constexpr RouteSpec<MemoryRoutes> kMemoryRoutes[] = {
    {"POST", "/api/memory/allocate", &MemoryRoutes::allocate},
    {"DELETE", "/api/memory/{allocationId}", &MemoryRoutes::release},
    {"GET", "/api/memory/allocations/{allocationId}", &MemoryRoutes::find},
    {"GET", "/api/memory/allocations", &MemoryRoutes::list},
    {"GET", "/api/memory/{deviceId}/status", &MemoryRoutes::status},
    {"POST", "/api/memory/{deviceId}/optimize", &MemoryRoutes::optimize},
};

}  // namespace

void registerMemoryRoutes(http::Router& router, AppContext& context) {
  addRoutes<MemoryRoutes>(router, context.config, http::ErrorShape::kApi,
                          std::make_shared<MemoryRoutes>(context.memory), kMemoryRoutes);
}

}  // namespace deviceops::api
