// The model repository: Triton's view of the configured model roots, for /v2/repository.
// A root holds models in Triton's layout, <root>/<model>/<version>/model.onnx (numeric
// versions), or as <root>/<model>.onnx (version "1"). Reading only; the registry loads.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace deviceops::inference {

struct RepositoryEntry {
  std::string name;
  std::string version;
  std::filesystem::path file;
};

// Every model file in `roots`, in directory order. Hidden entries and unreadable directories are
// skipped; at most 10000 entries.
std::vector<RepositoryEntry> scanRepository(const std::vector<std::filesystem::path>& roots);

// The highest numeric version of `name` in `roots`, if any.
std::optional<RepositoryEntry> findInRepository(const std::vector<std::filesystem::path>& roots,
                                                const std::string& name);

// A model name usable as a repository directory: 1..128 characters, no '/' or '\', no leading '.'.
bool isValidModelName(const std::string& name);

}  // namespace deviceops::inference
