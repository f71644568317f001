#include "http/router.h"

#include <fmt/format.h>

#include <set>

namespace deviceops::http {
namespace {

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> segments;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

bool isParameter(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

// Score: number of literal segments matched; -1 when no match.
int matchPattern(std::string_view pattern, const std::vector<std::string_view>& segments,
                 std::map<std::string, std::string>* params) {
  const std::vector<std::string_view> parts = split(pattern);
  if (parts.size() != segments.size()) return -1;
  int literals = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (isParameter(parts[i])) {
      if (segments[i].empty()) return -1;
      if (params != nullptr) {
        (*params)[std::string(parts[i].substr(1, parts[i].size() - 2))] = std::string(segments[i]);
      }
    } else if (parts[i] == segments[i]) {
      ++literals;
    } else {
      return -1;
    }
  }
  return literals;
}

}  // namespace

Route& Router::add(std::string method, std::string pattern, Handler handler) {
  Route route;
  route.scope = (method == "GET" || method == "HEAD") ? Scope::kRead : Scope::kOperate;
  route.method = std::move(method);
  route.pattern = std::move(pattern);
  route.handler = std::move(handler);
  routes_.push_back(std::move(route));
  return routes_.back();
}

Route& RouteGroup::add(std::string method, std::string pattern, Handler handler) {
  Route& route = router_.add(std::move(method), std::move(pattern), std::move(handler));
  route.errorShape = shape_;
  return route;
}

RouteMatch Router::match(std::string_view method, std::string_view path) const {
  RouteMatch result;
  if (path.empty() || path.front() != '/') return result;
  const std::vector<std::string_view> segments = split(path);
  int best = -1;
  std::set<std::string> allowed;
  for (const Route& route : routes_) {
    const int score = matchPattern(route.pattern, segments, nullptr);
    if (score < 0) continue;
    const bool methodMatches =
        route.method == method || (method == "HEAD" && route.method == "GET");
    if (!methodMatches) {
      allowed.insert(route.method);
      continue;
    }
    if (score > best) {
      best = score;
      result.route = &route;
    }
  }
  if (result.route != nullptr) {
    // Literal-heavy routes for other methods must not shadow this one's 405 logic: done.
    matchPattern(result.route->pattern, segments, &result.params);
    return result;
  }
  result.allowedMethods.assign(allowed.begin(), allowed.end());
  return result;
}

}  // namespace deviceops::http
