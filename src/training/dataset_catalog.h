// The persistent list of training datasets: rows in <dataDir>/training/datasets.db (DatasetStore),
// files under <dataDir>/training/datasets/<id>/ (the canonical file is data.safetensors there; see
// docs/TRAINING.md, "Datasets").
//
// An upload is a raw body already on disk (the HTTP layer streamed it). add() takes it over,
// hashes it, validates and converts it; on success only the canonical file is kept (the raw
// upload is deleted), on failure nothing is left behind. npy datasets arrive in two uploads
// (part "features" and part "labels", either first) and stay "incomplete", holding the first
// part's .npy file, until the other arrives.
//
// Thread-safety: every method may be called from any thread. `mutex_` guards the in-memory
// state; conversions (seconds for large files) run without it, so get()/list() never wait for an
// upload. Two concurrent uploads of the same name: the second gets kConflict.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "training/dataset.h"

namespace deviceops::training {

class DatasetStore;

struct DatasetInfo {
  std::string id;               // "ds-" + 12 lowercase hex digits
  std::string name;             // unique; 1-64 of [A-Za-z0-9._-]
  std::string format;           // "csv" | "npy" | "safetensors"
  std::string state;            // "ready" | "incomplete" (npy with one part so far)
  std::string missingPart;      // incomplete only: "features" | "labels"
  DatasetSchema schema;         // while incomplete: only rows, of the part received
  std::uint64_t sizeBytes = 0;  // of the upload(s), in bytes
  // Hex SHA-256 of the upload; npy: of the features upload's bytes followed by the labels
  // upload's bytes (`cat features.npy labels.npy | sha256sum`); while incomplete: of the part.
  std::string sha256;
  std::string createdAt;  // ISO-8601 UTC, milliseconds
  std::string path;       // absolute canonical file; empty while incomplete

  // {"id", "name", "format", "state", "schema", "sizeBytes", "sha256", "createdAt", "path"}
  // plus "missingPart" while incomplete.
  nlohmann::json toJson() const;
};

// The names of datasets and TorchScript modules: 1-64 characters of [A-Za-z0-9._-].
bool isValidName(const std::string& name);

class DatasetCatalog {
 public:
  // Returns the job ids that use dataset `id` (empty: none); remove() refuses while non-empty.
  using InUseCheck = std::function<std::vector<std::string>(const std::string& id)>;

  // Opens (creating if needed) the catalog under `dataDir`. Folders under datasets/ without a
  // row (left by a crash during add()) are removed.
  static Result<std::unique_ptr<DatasetCatalog>> open(std::filesystem::path dataDir);
  ~DatasetCatalog();
  DatasetCatalog(const DatasetCatalog&) = delete;
  DatasetCatalog& operator=(const DatasetCatalog&) = delete;

  // Takes ownership of `uploadedFile` (it is moved or deleted in every case), validates and
  // converts it. `options.format` picks the format; `part` ("features" | "labels") is used only
  // for npy. Errors: kInvalidArgument (bad name, format or part, or the content: with row/column
  // details, see dataset.h); kConflict when the name exists (unless this upload is the missing
  // part of an incomplete npy dataset; a part it already has is kConflict too) or another upload
  // of it is in progress. On error no row and no file of the upload remain; an incomplete
  // dataset whose second part failed stays as it was.
  Result<DatasetInfo> add(const std::string& name, const DatasetOptions& options,
                          const std::string& part, const std::filesystem::path& uploadedFile);

  // By id or name; kNotFound if neither matches.
  Result<DatasetInfo> get(const std::string& idOrName) const;
  // Every dataset, oldest first.
  std::vector<DatasetInfo> list() const;
  // Deletes the row and the files. kNotFound; kConflict naming the jobs (details {"jobs": [..]})
  // when the in-use check reports any.
  Status remove(const std::string& idOrName);
  // Replaces the in-use check (default: never in use).
  void setInUseCheck(InUseCheck check);

  const std::filesystem::path& datasetsDir() const { return datasetsDir_; }

 private:
  DatasetCatalog(std::filesystem::path datasetsDir, std::unique_ptr<DatasetStore> store);
  Result<DatasetInfo> addNew(const std::string& name, const DatasetOptions& options,
                             const std::string& part, const std::filesystem::path& uploadedFile);
  Result<DatasetInfo> completeNpy(DatasetInfo info, const DatasetOptions& options,
                                  const std::string& part,
                                  const std::filesystem::path& uploadedFile);
  std::string newId();

  const std::filesystem::path datasetsDir_;
  const std::unique_ptr<DatasetStore> store_;  // serialises its own calls

  mutable std::mutex mutex_;
  std::set<std::string> uploading_;  // guarded by mutex_: names with an add() in progress
  InUseCheck inUse_;                 // guarded by mutex_
  std::mt19937_64 random_;           // guarded by mutex_
};

}  // namespace deviceops::training
