// An allocation as the ledger records it (and the store persists it).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace deviceops::memory {

using SystemTime = std::chrono::system_clock::time_point;

enum class AllocationKind { kRaw, kModel, kTraining };
std::string_view allocationKindName(AllocationKind kind);  // "raw" | "model" | "training"
std::optional<AllocationKind> parseAllocationKind(std::string_view text);

enum class AllocationState { kHeld, kReleased };
std::string_view allocationStateName(AllocationState state);  // "held" | "released"
std::optional<AllocationState> parseAllocationState(std::string_view text);

struct AllocationRecord {
  std::string id;           // "alloc-" + 16 hex digits
  std::string deviceId;     // as in GET /api/device
  std::uint64_t bytes = 0;  // as requested
  AllocationKind kind = AllocationKind::kRaw;
  std::string label;  // free text from the client, may be empty
  std::string owner;  // principal that made it (token name or "anonymous"), or a model/job id
  SystemTime createdAt;
  std::optional<SystemTime> expiresAt;  // lease: reclaimed by the reaper after this
  bool pinned = false;
  bool simulated = false;  // accounting only
  AllocationState state = AllocationState::kHeld;
  std::optional<SystemTime> releasedAt;
  std::string releaseReason;  // "freed" | "expired" | "shutdown" | "restart" | ...
};

}  // namespace deviceops::memory
