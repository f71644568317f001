// Shared by kserve_codec.cc and kserve_codec_tensors.cc only: the codec's error constructors.
#pragma once

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/result.h"

namespace deviceops::inference::kserve_internal {

// kInvalidArgument "<role> '<name>': <what>" with details.tensor = name.
inline Error tensorError(std::string_view role, std::string_view name, const std::string& what,
                         nlohmann::json details = nlohmann::json::object()) {
  details["tensor"] = std::string(name);
  return makeError(ErrorCode::kInvalidArgument, fmt::format("{} '{}': {}", role, name, what),
                   std::move(details));
}

inline Error requestError(const std::string& what) {
  return makeError(ErrorCode::kInvalidArgument, what);
}

}  // namespace deviceops::inference::kserve_internal
