#include "api/memory_codec.h"

#include <fmt/format.h>

#include <set>

#include "common/byte_size.h"
#include "common/time_format.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

json timeOrNull(const std::optional<memory::SystemTime>& time) {
  return time ? json(formatIso8601(*time)) : json(nullptr);
}

Error fieldError(const std::string& field, const std::string& expected) {
  return makeError(ErrorCode::kInvalidArgument, fmt::format("'{}' must be {}", field, expected),
                   {{"field", field}});
}

Result<std::uint64_t> decodeSize(const json& body) {
  const bool hasBytes = body.contains("sizeBytes");
  const bool hasSize = body.contains("size");
  if (hasBytes == hasSize) {
    return makeError(ErrorCode::kInvalidArgument,
                     "give exactly one of 'sizeBytes' (an integer) or 'size' (e.g. \"512MiB\")",
                     {{"field", "sizeBytes"}});
  }
  const std::string field = hasBytes ? "sizeBytes" : "size";
  const json& value = body.at(field);
  if (value.is_number_unsigned()) {
    const std::uint64_t bytes = value.get<std::uint64_t>();
    if (bytes == 0 || bytes > kMaxByteSize) {
      return fieldError(field, "between 1 and 2^53 bytes");
    }
    return bytes;
  }
  if (value.is_string() && hasSize) {
    Result<std::uint64_t> parsed = parseByteSize(value.get<std::string>());
    if (!parsed.ok()) {
      return makeError(ErrorCode::kInvalidArgument, "'size': " + parsed.error().message,
                       {{"field", "size"}});
    }
    if (*parsed == 0) return fieldError(field, "at least 1 byte");
    return *parsed;
  }
  if (value.is_number_integer()) return fieldError(field, "a positive integer (got a negative)");
  if (value.is_number_float()) return fieldError(field, "a whole number of bytes within 2^53");
  return fieldError(
      field, hasBytes ? "an integer number of bytes" : "an integer or a string like \"512MiB\"");
}

}  // namespace

json encodeAllocation(const memory::AllocationRecord& record) {
  return {
      {"id", record.id},
      {"deviceId", record.deviceId},
      {"sizeBytes", record.bytes},
      {"kind", memory::allocationKindName(record.kind)},
      {"label", record.label},
      {"owner", record.owner},
      {"createdAt", formatIso8601(record.createdAt)},
      {"expiresAt", timeOrNull(record.expiresAt)},
      {"pinned", record.pinned},
      {"simulated", record.simulated},
      {"state", memory::allocationStateName(record.state)},
      {"releasedAt", timeOrNull(record.releasedAt)},
      {"releaseReason", record.releaseReason.empty() ? json(nullptr) : json(record.releaseReason)}};
}

json encodeAllocateResult(const memory::AllocateResult& result) {
  json body = encodeAllocation(result.record);
  body["blockBytes"] = result.blockBytes;
  body["fromPool"] = result.fromPool;
  body["allocator"] = result.allocatorKind;
  if (result.record.simulated) body["note"] = "simulated device: accounting only, no memory held";
  if (result.verify) {
    const devices::VerifyReport& report = *result.verify;
    body["verify"] = {
        {"passed", report.errors == 0},
        {"bytesTested", report.bytesTested},
        {"errors", report.errors},
        {"firstErrorOffset", report.errors > 0 ? json(report.firstErrorOffset) : json(nullptr)},
        {"writeBytesPerSecond", report.writeBytesPerSecond()},
        {"readBytesPerSecond", report.readBytesPerSecond()}};
  } else {
    body["verify"] = nullptr;
  }
  return body;
}

json encodePoolStats(const memory::PoolStats& stats) {
  return {{"reservedBytes", stats.reservedBytes},
          {"inUseBytes", stats.inUseBytes},
          {"requestedBytes", stats.requestedBytes},
          {"cachedBytes", stats.cachedBytes},
          {"cachedBlocks", stats.cachedBlocks},
          {"largestCachedBlockBytes", stats.largestCachedBlockBytes},
          {"fragmentationRatio", stats.fragmentationRatio},
          {"driverAllocations", stats.driverAllocations},
          {"cacheHits", stats.cacheHits},
          {"driverReleases", stats.driverReleases}};
}

json encodeMemoryStatus(const memory::DeviceMemoryStatus& status) {
  const auto optional = [](const std::optional<std::uint64_t>& value) {
    return value ? json(*value) : json(nullptr);
  };
  return {{"deviceId", status.deviceId},
          {"simulated", status.simulated},
          {"allocator", status.allocatorKind.empty() ? json(nullptr) : json(status.allocatorKind)},
          {"totalBytes", status.totalBytes},
          {"driverUsedBytes", optional(status.driverUsedBytes)},
          {"driverFreeBytes", optional(status.driverFreeBytes)},
          {"budgetBytes", status.budgetBytes},
          {"heldBytes", status.heldBytes},
          {"heldBytesByKind", status.heldBytesByKind},
          {"availableBytes", status.availableBytes},
          {"allocationCount", status.allocationCount},
          {"backendLiveBytes", status.backendLiveBytes},
          {"poolStrategy", memory::poolStrategyName(status.strategy)},
          {"pool", encodePoolStats(status.pool)}};
}

Result<memory::AllocateRequest> decodeAllocateRequest(const json& body) {
  static const std::set<std::string> kKnown = {"deviceId",   "sizeBytes", "size",  "label",
                                               "ttlSeconds", "pinned",    "verify"};
  for (const auto& [key, value] : body.items()) {
    if (kKnown.count(key) == 0) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("unknown field '{}'; expected deviceId, sizeBytes or size, "
                                   "label, ttlSeconds, pinned, verify",
                                   key),
                       {{"field", key}});
    }
  }
  memory::AllocateRequest request;
  if (!body.contains("deviceId") || !body["deviceId"].is_string() ||
      body["deviceId"].get<std::string>().empty()) {
    return fieldError("deviceId", "a device id string from GET /api/device");
  }
  request.deviceId = body["deviceId"].get<std::string>();
  Result<std::uint64_t> bytes = decodeSize(body);
  if (!bytes.ok()) return bytes.error();
  request.bytes = *bytes;
  if (body.contains("label")) {
    if (!body["label"].is_string()) return fieldError("label", "a string");
    request.label = body["label"].get<std::string>();
    if (request.label.size() > 256) return fieldError("label", "at most 256 bytes long");
  }
  if (body.contains("ttlSeconds")) {
    const json& ttl = body["ttlSeconds"];
    if (!ttl.is_number_unsigned() || ttl.get<std::uint64_t>() == 0 ||
        ttl.get<std::uint64_t>() > 100ull * 365 * 24 * 3600) {
      return fieldError("ttlSeconds", "a positive integer number of seconds");
    }
    request.ttl = std::chrono::seconds(ttl.get<std::uint64_t>());
  }
  for (const char* flag : {"pinned", "verify"}) {
    if (!body.contains(flag)) continue;
    if (!body[flag].is_boolean()) return fieldError(flag, "true or false");
  }
  request.pinned = body.value("pinned", false);
  request.verify = body.value("verify", false);
  return request;
}

}  // namespace deviceops::api
