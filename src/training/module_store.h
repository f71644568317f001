// Uploaded TorchScript modules for training jobs with model {"type": "torchscript", "module":
// name}. Stored as <dataDir>/training/modules/<name>.pt (+ <name>.sha256). The daemon checks only
// that the file is a TorchScript (zip) archive; whether it loads and fits the dataset is found by
// the trainer, which fails the job with exit code 2 and the reason.
//
// Thread-safety: the functions may be called concurrently; a name is replaced atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/result.h"

namespace deviceops::training {

struct ModuleInfo {
  std::string name;
  std::string path;  // absolute
  std::uint64_t sizeBytes = 0;
  std::string sha256;

  nlohmann::json toJson() const;
};

// Moves `uploadedFile` into the store as `name` (1-64 of [A-Za-z0-9._-]). kInvalidArgument for a
// bad name or a file that is not a zip archive (nothing is kept); kConflict for a name in use.
Result<ModuleInfo> addModule(const std::filesystem::path& dataDir, const std::string& name,
                             const std::filesystem::path& uploadedFile);
// kNotFound naming the module when it does not exist.
Result<ModuleInfo> findModule(const std::filesystem::path& dataDir, const std::string& name);
std::vector<ModuleInfo> listModules(const std::filesystem::path& dataDir);

}  // namespace deviceops::training
