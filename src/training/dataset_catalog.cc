#include "training/dataset_catalog.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <fstream>
#include <optional>
#include <system_error>

#include "common/sha256.h"
#include "common/time_format.h"
#include "training/dataset_store.h"

namespace deviceops::training {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kCanonicalFile = "data.safetensors";

Error invalid(std::string message, nlohmann::json details = nlohmann::json::object()) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message), std::move(details));
}

Error fileError(const std::string& what, const fs::path& path, const std::error_code& error) {
  return makeError(ErrorCode::kInternal,
                   fmt::format("cannot {} {}: {}", what, path.string(), error.message()));
}

// Moves `from` to `to` (copying across file systems).
Status takeFile(const fs::path& from, const fs::path& to) {
  std::error_code error;
  fs::rename(from, to, error);
  if (!error) return {};
  if (error == std::errc::no_such_file_or_directory) {
    return makeError(ErrorCode::kNotFound, "no uploaded file " + from.string());
  }
  if (error != std::errc::cross_device_link) return fileError("move", from, error);
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, error);
  if (error) return fileError("copy", from, error);
  fs::remove(from, error);
  return {};
}

// SHA-256 of the files' bytes, one after the other.
Result<std::string> hashFiles(const std::vector<fs::path>& files) {
  Sha256 hash;
  std::string buffer(1 << 20, '\0');
  for (const fs::path& file : files) {
    std::ifstream input(file, std::ios::binary);
    if (!input) return makeError(ErrorCode::kInternal, "cannot read " + file.string());
    while (input) {
      input.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      hash.update(std::string_view(buffer.data(), static_cast<std::size_t>(input.gcount())));
    }
    if (!input.eof()) return makeError(ErrorCode::kInternal, "cannot read " + file.string());
  }
  return hash.finishHex();
}

Result<std::uint64_t> totalSize(const std::vector<fs::path>& files) {
  std::uint64_t total = 0;
  for (const fs::path& file : files) {
    std::error_code error;
    const std::uintmax_t size = fs::file_size(file, error);
    if (error) return fileError("stat", file, error);
    total += size;
  }
  return total;
}

// Removes `path` (recursively) when destroyed unless dismissed.
class RemoveOnFailure {
 public:
  explicit RemoveOnFailure(fs::path path) : path_(std::move(path)) {}
  ~RemoveOnFailure() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  RemoveOnFailure(const RemoveOnFailure&) = delete;
  RemoveOnFailure& operator=(const RemoveOnFailure&) = delete;
  void dismiss() { path_.clear(); }

 private:
  fs::path path_;
};

}  // namespace

bool isValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

nlohmann::json DatasetInfo::toJson() const {
  nlohmann::json json = {{"id", id},
                         {"name", name},
                         {"format", format},
                         {"state", state},
                         {"schema", schema.toJson()},
                         {"sizeBytes", sizeBytes},
                         {"sha256", sha256},
                         {"createdAt", createdAt},
                         {"path", path}};
  if (state == "incomplete") json["missingPart"] = missingPart;
  return json;
}

DatasetCatalog::DatasetCatalog(fs::path datasetsDir, std::unique_ptr<DatasetStore> store)
    : datasetsDir_(std::move(datasetsDir)),
      store_(std::move(store)),
      random_(std::random_device{}()) {}

DatasetCatalog::~DatasetCatalog() = default;

Result<std::unique_ptr<DatasetCatalog>> DatasetCatalog::open(fs::path dataDir) {
  std::error_code error;
  const fs::path training = fs::absolute(dataDir, error) / "training";
  const fs::path datasets = training / "datasets";
  fs::create_directories(datasets, error);
  if (error) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("cannot create {}: {}", datasets.string(), error.message()));
  }
  Result<std::unique_ptr<DatasetStore>> store = DatasetStore::open(training / "datasets.db");
  if (!store.ok()) return store.error();
  std::unique_ptr<DatasetCatalog> catalog(new DatasetCatalog(datasets, std::move(store).value()));
  // Folders without a row were left by an add() that did not finish.
  std::vector<std::string> known;
  for (const DatasetInfo& info : catalog->list()) known.push_back(info.id);
  for (const fs::directory_entry& entry : fs::directory_iterator(datasets, error)) {
    const std::string id = entry.path().filename().string();
    if (std::find(known.begin(), known.end(), id) == known.end()) {
      std::error_code ignored;
      fs::remove_all(entry.path(), ignored);
    }
  }
  return catalog;
}

Result<DatasetInfo> DatasetCatalog::add(const std::string& name, const DatasetOptions& options,
                                        const std::string& part, const fs::path& uploadedFile) {
  // The upload is ours: whatever happens, it does not stay where it was.
  struct DropUpload {
    const fs::path& file;
    ~DropUpload() {
      std::error_code ignored;
      fs::remove(file, ignored);
    }
  } dropUpload{uploadedFile};

  if (!isValidName(name)) {
    return invalid("dataset name \"" + name + "\" must be 1-64 characters of A-Z a-z 0-9 . _ -",
                   {{"field", "name"}});
  }
  const std::string& format = options.format;
  if (format != "csv" && format != "npy" && format != "safetensors") {
    return invalid("format \"" + format + "\" is not one of: csv, npy, safetensors",
                   {{"field", "format"}});
  }
  if (format == "npy" && part != "features" && part != "labels") {
    return invalid("npy uploads need part=features or part=labels, not \"" + part + "\"",
                   {{"field", "part"}});
  }
  std::optional<DatasetInfo> incomplete;
  {
    std::lock_guard lock(mutex_);
    if (uploading_.count(name) != 0) {
      return makeError(ErrorCode::kConflict,
                       "another upload of dataset \"" + name + "\" is in progress");
    }
    Result<DatasetInfo> existing = store_->find(name);
    if (existing.ok()) {
      if (existing->name != name || existing->state != "incomplete" || format != "npy" ||
          existing->missingPart != part) {
        return makeError(ErrorCode::kConflict,
                         existing->state == "incomplete" && format == "npy"
                             ? "dataset \"" + name + "\" already has its " + part + " part"
                             : "a dataset named \"" + name + "\" already exists",
                         {{"id", existing->id}});
      }
      incomplete = std::move(existing).value();
    } else if (existing.error().code != ErrorCode::kNotFound) {
      return existing.error();
    }
    uploading_.insert(name);
  }
  Result<DatasetInfo> result =
      incomplete ? completeNpy(std::move(*incomplete), options, part, uploadedFile)
                 : addNew(name, options, part, uploadedFile);
  std::lock_guard lock(mutex_);
  uploading_.erase(name);
  return result;
}

Result<DatasetInfo> DatasetCatalog::addNew(const std::string& name, const DatasetOptions& options,
                                           const std::string& part, const fs::path& uploadedFile) {
  DatasetInfo info;
  info.id = newId();
  info.name = name;
  info.format = options.format;
  info.createdAt = formatIso8601(std::chrono::system_clock::now());
  const fs::path dir = datasetsDir_ / info.id;
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) return fileError("create", dir, error);
  RemoveOnFailure cleanup(dir);

  const fs::path upload = dir / (info.format == "npy" ? part + ".npy" : "upload." + info.format);
  if (Status taken = takeFile(uploadedFile, upload); !taken.ok()) return taken.error();
  Result<std::uint64_t> size = totalSize({upload});
  if (!size.ok()) return size.error();
  Result<std::string> sha = hashFiles({upload});
  if (!sha.ok()) return sha.error();
  info.sizeBytes = *size;
  info.sha256 = *sha;

  if (info.format == "npy") {
    Result<std::int64_t> samples = checkNpyPart(upload, part, options);
    if (!samples.ok()) return samples.error();
    info.schema.rows = *samples;
    info.state = "incomplete";
    info.missingPart = part == "features" ? "labels" : "features";
  } else {
    const fs::path canonical = dir / kCanonicalFile;
    Result<DatasetSchema> schema = convertDataset(upload, options, canonical);
    if (!schema.ok()) return schema.error();
    fs::remove(upload, error);
    info.state = "ready";
    info.schema = std::move(schema).value();
    info.path = canonical.string();
  }
  if (Status inserted = store_->insert(info); !inserted.ok()) return inserted.error();
  cleanup.dismiss();
  return info;
}

Result<DatasetInfo> DatasetCatalog::completeNpy(DatasetInfo info, const DatasetOptions& options,
                                                const std::string& part,
                                                const fs::path& uploadedFile) {
  const fs::path dir = datasetsDir_ / info.id;
  const fs::path features = dir / "features.npy";
  const fs::path labels = dir / "labels.npy";
  const fs::path canonical = dir / kCanonicalFile;
  RemoveOnFailure dropPart(part == "features" ? features : labels);
  RemoveOnFailure dropCanonical(canonical);
  if (Status taken = takeFile(uploadedFile, part == "features" ? features : labels); !taken.ok()) {
    return taken.error();
  }
  Result<std::uint64_t> size = totalSize({features, labels});
  if (!size.ok()) return size.error();
  Result<std::string> sha = hashFiles({features, labels});
  if (!sha.ok()) return sha.error();
  Result<DatasetSchema> schema = convertNpyDataset(features, labels, options, canonical);
  if (!schema.ok()) return schema.error();

  info.state = "ready";
  info.missingPart.clear();
  info.schema = std::move(schema).value();
  info.sizeBytes = *size;
  info.sha256 = *sha;
  info.path = canonical.string();
  if (Status updated = store_->update(info); !updated.ok()) return updated.error();
  dropCanonical.dismiss();
  std::error_code ignored;
  fs::remove(features, ignored);
  fs::remove(labels, ignored);
  dropPart.dismiss();
  return info;
}

Result<DatasetInfo> DatasetCatalog::get(const std::string& idOrName) const {
  return store_->find(idOrName);
}

std::vector<DatasetInfo> DatasetCatalog::list() const {
  Result<std::vector<DatasetInfo>> all = store_->list();
  return all.ok() ? std::move(all).value() : std::vector<DatasetInfo>{};
}

Status DatasetCatalog::remove(const std::string& idOrName) {
  InUseCheck check;
  DatasetInfo info;
  {
    std::lock_guard lock(mutex_);
    Result<DatasetInfo> found = store_->find(idOrName);
    if (!found.ok()) return found.error();
    info = std::move(found).value();
    if (uploading_.count(info.name) != 0) {
      return makeError(ErrorCode::kConflict,
                       "an upload of dataset \"" + info.name + "\" is in progress");
    }
    check = inUse_;
  }
  // Called without mutex_ held: the check may call back into the catalog.
  const std::vector<std::string> jobs = check ? check(info.id) : std::vector<std::string>{};
  if (!jobs.empty()) {
    return makeError(ErrorCode::kConflict,
                     fmt::format("dataset \"{}\" is used by job{} {}", info.name,
                                 jobs.size() == 1 ? "" : "s", fmt::join(jobs, ", ")),
                     {{"jobs", jobs}});
  }
  if (Status removed = store_->remove(info.id); !removed.ok()) return removed;
  std::error_code error;
  fs::remove_all(datasetsDir_ / info.id, error);
  if (error) return fileError("remove", datasetsDir_ / info.id, error);
  return {};
}

void DatasetCatalog::setInUseCheck(InUseCheck check) {
  std::lock_guard lock(mutex_);
  inUse_ = std::move(check);
}

std::string DatasetCatalog::newId() {
  std::lock_guard lock(mutex_);
  return fmt::format("ds-{:012x}", random_() & 0xFFFFFFFFFFFFull);
}

}  // namespace deviceops::training
