#include "api/auth.h"

#include <fmt/format.h>

namespace deviceops::api {

bool constantTimeEquals(std::string_view a, std::string_view b) {
  const std::size_t length = std::max(a.size(), b.size());
  unsigned difference = static_cast<unsigned>(a.size() ^ b.size());
  for (std::size_t i = 0; i < length; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    difference |= static_cast<unsigned>(x ^ y);
  }
  return difference == 0;
}

http::Authorizer makeAuthorizer(const config::Config& config) {
  const bool required = config.authRequired();
  std::vector<config::Token> tokens = config.tokens;
  return [required, tokens](const http::Request& request, Scope needed) -> Result<std::string> {
    const std::string_view header = request.header("authorization");
    if (header.empty()) {
      if (!required) return std::string("anonymous");
      return makeError(ErrorCode::kUnauthenticated,
                       "this endpoint needs an 'Authorization: Bearer <token>' header");
    }
    constexpr std::string_view kScheme = "bearer ";
    bool schemeMatches = header.size() > kScheme.size();
    for (std::size_t i = 0; schemeMatches && i < kScheme.size(); ++i) {
      schemeMatches = std::tolower(static_cast<unsigned char>(header[i])) == kScheme[i];
    }
    if (!schemeMatches) {
      return makeError(ErrorCode::kUnauthenticated,
                       "the Authorization header must use the Bearer scheme");
    }
    const std::string_view secret = header.substr(kScheme.size());
    const config::Token* found = nullptr;
    for (const config::Token& token : tokens) {
      // Every token is compared, so timing does not reveal which one (or whether any) matched.
      if (constantTimeEquals(secret, token.secret) && found == nullptr) found = &token;
    }
    if (found == nullptr) {
      if (!required) return std::string("anonymous");
      return makeError(ErrorCode::kUnauthenticated, "the bearer token is not valid");
    }
    if (required && static_cast<int>(found->scope) < static_cast<int>(needed)) {
      return makeError(
          ErrorCode::kPermissionDenied,
          fmt::format("token '{}' has scope '{}'; this endpoint needs '{}'", found->name,
                      scopeName(found->scope), scopeName(needed)),
          {{"tokenScope", scopeName(found->scope)}, {"requiredScope", scopeName(needed)}});
    }
    return found->name;
  };
}

}  // namespace deviceops::api
