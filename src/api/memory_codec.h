// JSON encoding and request decoding for /api/memory (shapes in docs/openapi.yaml).
#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "memory/memory_service.h"

namespace deviceops::api {

nlohmann::json encodeAllocation(const memory::AllocationRecord& record);
nlohmann::json encodeAllocateResult(const memory::AllocateResult& result);
nlohmann::json encodePoolStats(const memory::PoolStats& stats);
nlohmann::json encodeMemoryStatus(const memory::DeviceMemoryStatus& status);

// Decodes POST /api/memory/allocate: {deviceId, sizeBytes | size, label?, ttlSeconds?, pinned?,
// verify?}. Unknown keys, wrong types, non-integer or out-of-range sizes -> kInvalidArgument
// naming the field.
Result<memory::AllocateRequest> decodeAllocateRequest(const nlohmann::json& body);

}  // namespace deviceops::api
