#include "trainer/checkpoint_files.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/sha256.h"

namespace deviceops::trainer {

namespace fs = std::filesystem;

namespace {

// Step encoded in "ckpt-<digits>.pt"; -1 for any other name.
std::int64_t stepOf(const fs::path& file) {
  std::string name = file.filename().string();
  constexpr std::string_view kPrefix = "ckpt-", kSuffix = ".pt";
  if (name.size() <= kPrefix.size() + kSuffix.size() || !name.starts_with(kPrefix) ||
      !name.ends_with(kSuffix)) {
    return -1;
  }
  std::string digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
  if (digits.empty() || digits.size() > 18 ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return -1;
  }
  return std::stoll(digits);
}

Result<std::string> readWhole(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return makeError(ErrorCode::kNotFound, "cannot open " + file.string());
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return makeError(ErrorCode::kUnavailable, "cannot read " + file.string());
  return buffer.str();
}

}  // namespace

fs::path checkpointPath(const fs::path& dir, std::int64_t step) {
  std::string digits = std::to_string(step);
  if (digits.size() < 10) digits.insert(0, 10 - digits.size(), '0');
  return dir / ("ckpt-" + digits + ".pt");
}

fs::path sidecarPath(const fs::path& file) { return fs::path(file.string() + ".sha256"); }

Status writeCheckpointFile(const fs::path& file, std::string_view bytes) {
  if (Status s = writeFileAtomically(file, bytes); !s.ok()) return s;
  return writeFileAtomically(sidecarPath(file), sha256Hex(bytes) + "\n");
}

std::vector<fs::path> listCheckpoints(const fs::path& dir) {
  std::vector<std::pair<std::int64_t, fs::path>> found;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::int64_t step = stepOf(it->path());
    if (step >= 0 && it->is_regular_file(ec)) found.emplace_back(step, it->path());
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<fs::path> files;
  for (auto& entry : found) files.push_back(std::move(entry.second));
  return files;
}

void pruneCheckpoints(const fs::path& dir, std::int64_t keepLast) {
  std::vector<fs::path> files = listCheckpoints(dir);
  for (std::size_t i = static_cast<std::size_t>(std::max<std::int64_t>(keepLast, 1));
       i < files.size(); ++i) {
    std::error_code ignored;
    fs::remove(files[i], ignored);
    fs::remove(sidecarPath(files[i]), ignored);
  }
}

Result<ChosenCheckpoint> chooseCheckpoint(const fs::path& dir,
                                          const std::function<Status(std::string_view)>& load,
                                          const std::function<void(const std::string&)>& log) {
  for (const fs::path& file : listCheckpoints(dir)) {
    Result<std::string> sidecar = readWhole(sidecarPath(file));
    if (!sidecar.ok()) {
      log("skipping " + file.string() + ": no readable .sha256 sidecar");
      continue;
    }
    std::string expected = sidecar->substr(0, sidecar->find_first_of(" \t\r\n"));
    Result<std::string> bytes = readWhole(file);
    if (!bytes.ok()) {
      log("skipping " + file.string() + ": " + bytes.error().message);
      continue;
    }
    if (sha256Hex(*bytes) != expected) {
      log("skipping " + file.string() + ": contents do not match the .sha256 sidecar");
      continue;
    }
    if (Status s = load(*bytes); !s.ok()) {
      log("skipping " + file.string() + ": does not load: " + s.error().message);
      continue;
    }
    return ChosenCheckpoint{file, std::move(*bytes)};
  }
  return makeError(ErrorCode::kNotFound, "no valid checkpoint in " + dir.string());
}

}  // namespace deviceops::trainer
