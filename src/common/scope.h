// Authorization scopes. Each includes the ones below it: admin > operate > read.
#pragma once

#include <string_view>

namespace deviceops {

enum class Scope { kRead = 0, kOperate = 1, kAdmin = 2 };

constexpr std::string_view scopeName(Scope scope) {
  switch (scope) {
    case Scope::kRead:
      return "read";
    case Scope::kOperate:
      return "operate";
    case Scope::kAdmin:
      return "admin";
  }
  return "read";
}

}  // namespace deviceops
