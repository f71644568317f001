// The file side of checkpoints (docs/TRAINING.md, "Files in <workDir>"): atomic writes, sha256
// sidecars, naming, pruning to keepLast and choosing the newest valid checkpoint on resume.
// No libtorch here: what a checkpoint contains is checkpoint.h's business.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/atomic_file.h"
#include "common/result.h"

namespace deviceops::trainer {

// "<dir>/ckpt-<step:010>.pt".
std::filesystem::path checkpointPath(const std::filesystem::path& dir, std::int64_t step);
// "<file>.sha256".
std::filesystem::path sidecarPath(const std::filesystem::path& file);

// Writes `file` and then its sidecar (hex digest + newline), both atomically.
Status writeCheckpointFile(const std::filesystem::path& file, std::string_view bytes);

// The ckpt-*.pt files in `dir`, newest (highest step) first; best.pt and others excluded.
std::vector<std::filesystem::path> listCheckpoints(const std::filesystem::path& dir);

// Removes all but the newest `keepLast` ckpt-*.pt files (and their sidecars). best.pt stays.
void pruneCheckpoints(const std::filesystem::path& dir, std::int64_t keepLast);

struct ChosenCheckpoint {
  std::filesystem::path file;
  std::string bytes;
};
// The newest checkpoint in `dir` whose sidecar matches its contents and for which `load` succeeds
// (it restores the state as a side effect). Every skipped file is reported through `log` with the
// reason. kNotFound when none qualifies.
Result<ChosenCheckpoint> chooseCheckpoint(const std::filesystem::path& dir,
                                          const std::function<Status(std::string_view bytes)>& load,
                                          const std::function<void(const std::string&)>& log);

}  // namespace deviceops::trainer
