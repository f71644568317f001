// Writing a file so that a reader (or a process restarted after a crash) finds the old contents
// or the new, never a mix: a temporary file in the same directory, the pieces written in order,
// fsync, rename over the target, fsync of the directory. On failure the temporary file is gone
// and the target is as it was. Used for checkpoints, datasets, weights and exported models.
#pragma once

#include <filesystem>
#include <span>
#include <string_view>

#include "common/result.h"

namespace deviceops {

// Errors are kUnavailable (cannot create, write, sync or rename: a full disk, a missing or
// read-only directory), naming the path and the system's reason.
Status writeFileAtomically(const std::filesystem::path& file,
                           std::span<const std::string_view> pieces);
inline Status writeFileAtomically(const std::filesystem::path& file, std::string_view bytes) {
  return writeFileAtomically(file, std::span<const std::string_view>(&bytes, 1));
}

}  // namespace deviceops
