#include "memory/allocation.h"

namespace deviceops::memory {

std::string_view allocationKindName(AllocationKind kind) {
  switch (kind) {
    case AllocationKind::kRaw:
      return "raw";
    case AllocationKind::kModel:
      return "model";
    case AllocationKind::kTraining:
      return "training";
  }
  return "raw";
}

std::optional<AllocationKind> parseAllocationKind(std::string_view text) {
  if (text == "raw") return AllocationKind::kRaw;
  if (text == "model") return AllocationKind::kModel;
  if (text == "training") return AllocationKind::kTraining;
  return std::nullopt;
}

std::string_view allocationStateName(AllocationState state) {
  return state == AllocationState::kHeld ? "held" : "released";
}

std::optional<AllocationState> parseAllocationState(std::string_view text) {
  if (text == "held") return AllocationState::kHeld;
  if (text == "released") return AllocationState::kReleased;
  return std::nullopt;
}

}  // namespace deviceops::memory
