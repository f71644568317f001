#include "inference/model_repository.h"

#include <system_error>

namespace deviceops::inference {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxEntries = 10000;

bool isNumber(const std::string& text) {
  return !text.empty() && text.size() <= 18 && text.find_first_not_of("0123456789") == text.npos;
}

// The numeric version directories of one model directory that hold a model.onnx.
void scanVersions(const fs::path& directory, const std::string& name,
                  std::vector<RepositoryEntry>& entries) {
  std::error_code error;
  for (fs::directory_iterator version(directory, error), last;
       !error && version != last && entries.size() < kMaxEntries; version.increment(error)) {
    const std::string versionName = version->path().filename().string();
    std::error_code fileError;
    if (isNumber(versionName) && fs::is_regular_file(version->path() / "model.onnx", fileError)) {
      entries.push_back({name, versionName, version->path() / "model.onnx"});
    }
  }
}

}  // namespace

std::vector<RepositoryEntry> scanRepository(const std::vector<fs::path>& roots) {
  std::vector<RepositoryEntry> entries;
  for (const fs::path& root : roots) {
    std::error_code error;
    for (fs::directory_iterator it(root, error), end;
         !error && it != end && entries.size() < kMaxEntries; it.increment(error)) {
      const fs::path& path = it->path();
      const std::string name = path.filename().string();
      if (name.empty() || name.front() == '.') continue;
      std::error_code statError;
      if (path.extension() == ".onnx" && fs::is_regular_file(path, statError)) {
        entries.push_back({path.stem().string(), "1", path});
      } else if (fs::is_directory(path, statError)) {
        scanVersions(path, name, entries);
      }
    }
  }
  return entries;
}

std::optional<RepositoryEntry> findInRepository(const std::vector<fs::path>& roots,
                                                const std::string& name) {
  std::optional<RepositoryEntry> best;
  for (RepositoryEntry& entry : scanRepository(roots)) {
    if (entry.name != name) continue;
    if (!best || std::stoll(entry.version) > std::stoll(best->version)) best = std::move(entry);
  }
  return best;
}

bool isValidModelName(const std::string& name) {
  return !name.empty() && name.size() <= 128 && name.front() != '.' &&
         name.find('/') == std::string::npos && name.find('\\') == std::string::npos;
}

}  // namespace deviceops::inference
