#include "inference/registry_paths.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <system_error>

namespace deviceops::inference {
namespace fs = std::filesystem;
namespace {

std::vector<fs::path> canonicalRoots(const std::vector<fs::path>& roots) {
  std::vector<fs::path> result;
  for (const fs::path& root : roots) {
    std::error_code error;
    fs::path canonical = fs::weakly_canonical(fs::absolute(root, error), error);
    if (!error && !canonical.empty()) result.push_back(canonical);
  }
  return result;
}

bool insideAny(const fs::path& path, const std::vector<fs::path>& roots) {
  return std::any_of(roots.begin(), roots.end(),
                     [&](const fs::path& root) { return isInsideRoot(path, root); });
}

Error outsideRoots(const fs::path& requested, const std::vector<fs::path>& roots) {
  std::vector<std::string> names;
  for (const fs::path& root : roots) names.push_back(root.string());
  const std::string message =
      roots.empty()
          ? fmt::format("model path {} refused: no model roots are configured", requested.string())
          : fmt::format("model path {} is outside the model roots ({})", requested.string(),
                        fmt::join(names, ", "));
  return makeError(ErrorCode::kPermissionDenied, message,
                   {{"path", requested.string()}, {"modelRoots", names}});
}

}  // namespace

bool isInsideRoot(const fs::path& path, const fs::path& root) {
  auto [rootIt, pathIt] = std::mismatch(root.begin(), root.end(), path.begin(), path.end());
  // A trailing separator in root shows up as an empty last component.
  return rootIt == root.end() || (std::next(rootIt) == root.end() && rootIt->empty());
}

Result<fs::path> resolveModelFile(const fs::path& requested, const std::vector<fs::path>& roots) {
  return resolveInRoots(requested, roots, /*directory=*/false);
}

Result<fs::path> resolveModelDirectory(const fs::path& requested,
                                       const std::vector<fs::path>& roots) {
  return resolveInRoots(requested, roots, /*directory=*/true);
}

Result<fs::path> resolveInRoots(const fs::path& requested, const std::vector<fs::path>& roots,
                                bool directory) {
  const std::vector<fs::path> canonical = canonicalRoots(roots);
  if (requested.empty()) {
    return makeError(ErrorCode::kInvalidArgument, "a model path is required");
  }
  std::vector<fs::path> candidates;
  if (requested.is_absolute()) {
    candidates.push_back(requested);
  } else {
    for (const fs::path& root : canonical) candidates.push_back(root / requested);
  }
  if (candidates.empty()) return outsideRoots(requested, canonical);
  std::optional<Error> firstError;
  for (const fs::path& candidate : candidates) {
    std::error_code error;
    // First lexically (so no existence is revealed outside the roots), then with every symlink
    // resolved.
    const fs::path weak = fs::weakly_canonical(candidate, error);
    if (error || !insideAny(weak, canonical)) {
      if (!firstError) firstError = outsideRoots(requested, canonical);
      continue;
    }
    const fs::path resolved = fs::canonical(candidate, error);
    if (error) {
      if (!firstError || firstError->code == ErrorCode::kPermissionDenied) {
        firstError = makeError(ErrorCode::kNotFound,
                               fmt::format("model {} {} does not exist",
                                           directory ? "folder" : "file", requested.string()),
                               {{"path", requested.string()}});
      }
      continue;
    }
    if (!insideAny(resolved, canonical)) {
      Error refused = outsideRoots(requested, canonical);
      refused.message += fmt::format(" (it resolves to {})", resolved.string());
      refused.details["resolvedPath"] = resolved.string();
      return refused;
    }
    if (directory ? !fs::is_directory(resolved, error) : !fs::is_regular_file(resolved, error)) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("model path {} is not a {}", requested.string(),
                                   directory ? "directory" : "regular file"),
                       {{"path", requested.string()}});
    }
    return resolved;
  }
  return *firstError;
}

}  // namespace deviceops::inference
