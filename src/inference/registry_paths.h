// Where the model registry may read model files from (internal to the registry).
//
// resolveModelFile() turns a client-given path into the canonical file it names (every symlink
// resolved) and refuses anything that is not inside one of `roots`: outside -> kPermissionDenied
// naming the path and the roots (also when a symlink inside a root points out of it); missing ->
// kNotFound; a directory or other non-regular file -> kInvalidArgument. A relative path is taken
// relative to each root in turn. Thread-safe (no shared state).
#pragma once

#include <filesystem>
#include <vector>

#include "common/result.h"

namespace deviceops::inference {

Result<std::filesystem::path> resolveModelFile(const std::filesystem::path& requested,
                                               const std::vector<std::filesystem::path>& roots);

// The same for a folder (model suites): anything but a directory is kInvalidArgument.
Result<std::filesystem::path> resolveModelDirectory(
    const std::filesystem::path& requested, const std::vector<std::filesystem::path>& roots);
Result<std::filesystem::path> resolveInRoots(const std::filesystem::path& requested,
                                             const std::vector<std::filesystem::path>& roots,
                                             bool directory);

// True when `path` is `root` or below it; both must already be canonical.
bool isInsideRoot(const std::filesystem::path& path, const std::filesystem::path& root);

}  // namespace deviceops::inference
