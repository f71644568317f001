#include "training/module_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>

#include "common/sha256.h"
#include "training/dataset_catalog.h"

namespace deviceops::training {
namespace {

namespace fs = std::filesystem;

fs::path modulesDir(const fs::path& dataDir) { return dataDir / "training" / "modules"; }

// A dataset name that is also safe as a file name.
bool validName(const std::string& name) { return isValidName(name) && name != "." && name != ".."; }

Result<ModuleInfo> describe(const fs::path& file) {
  ModuleInfo info;
  info.name = file.stem().string();
  info.path = file.string();
  std::error_code error;
  info.sizeBytes = fs::file_size(file, error);
  std::ifstream sidecar(file.string() + ".sha256");
  sidecar >> info.sha256;
  return info;
}

}  // namespace

nlohmann::json ModuleInfo::toJson() const {
  return {{"name", name}, {"path", path}, {"sizeBytes", sizeBytes}, {"sha256", sha256}};
}

Result<ModuleInfo> addModule(const fs::path& dataDir, const std::string& name,
                             const fs::path& uploadedFile) {
  std::error_code error;
  auto discard = [&] { fs::remove(uploadedFile, error); };
  if (!validName(name)) {
    discard();
    return makeError(ErrorCode::kInvalidArgument,
                     "name: 1-64 characters of [A-Za-z0-9._-], got \"" + name + "\"");
  }
  char magic[4] = {};
  std::ifstream(uploadedFile, std::ios::binary).read(magic, sizeof magic);
  if (!(magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4)) {
    discard();
    return makeError(ErrorCode::kInvalidArgument,
                     "the body is not a TorchScript module (expected the zip archive "
                     "torch.jit.save writes)");
  }
  const fs::path directory = modulesDir(dataDir);
  fs::create_directories(directory, error);
  const fs::path target = directory / (name + ".pt");
  if (fs::exists(target)) {
    discard();
    return makeError(ErrorCode::kConflict, fmt::format("module \"{}\" exists", name));
  }
  Result<std::string> digest = sha256File(uploadedFile);
  if (!digest.ok()) {
    discard();
    return digest.error();
  }
  std::ofstream(target.string() + ".sha256") << *digest << "\n";
  fs::rename(uploadedFile, target, error);
  if (error) {
    fs::copy_file(uploadedFile, target, error);
    discard();
    if (error) {
      return makeError(ErrorCode::kUnavailable, "cannot store the module: " + error.message());
    }
  }
  return describe(target);
}

Result<ModuleInfo> findModule(const fs::path& dataDir, const std::string& name) {
  const fs::path file = modulesDir(dataDir) / (name + ".pt");
  if (!validName(name) || !fs::exists(file)) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("model.module: no TorchScript module \"{}\" (upload it with POST "
                                 "/api/training/models/upload)",
                                 name));
  }
  return describe(file);
}

std::vector<ModuleInfo> listModules(const fs::path& dataDir) {
  std::vector<ModuleInfo> out;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(modulesDir(dataDir), error)) {
    if (entry.path().extension() == ".pt") {
      if (Result<ModuleInfo> info = describe(entry.path()); info.ok()) out.push_back(*info);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const ModuleInfo& a, const ModuleInfo& b) { return a.name < b.name; });
  return out;
}

}  // namespace deviceops::training
