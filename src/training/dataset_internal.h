// Pieces shared by the dataset converters (dataset.cc, dataset_csv.cc). Not a public API.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "training/dataset.h"
#include "training_formats/safetensors.h"

namespace deviceops::training::internal {

// Labels as read, one per row, before classes are decided.
// Whether `text` is well-formed UTF-8 (names and labels end up in JSON, which must be UTF-8).
bool validUtf8(std::string_view text);

struct RawLabels {
  bool allNumeric = true;
  std::vector<double> numbers;     // one per row while allNumeric; each finite in float32 range
  std::vector<std::string> texts;  // CSV only: the label text of every row (empty for tensors)
};

// Decides classes and targets, writes the canonical file `output` and returns the schema.
// Preconditions: `features` is F32 [rows, F] with finite values; labels have `rows` entries.
// kInvalidArgument when text labels have more than options.maxClasses distinct values.
Result<DatasetSchema> finishDataset(SafeTensor features, std::vector<std::string> featureNames,
                                    std::string labelName, RawLabels labels,
                                    const DatasetOptions& options,
                                    const std::filesystem::path& output);

Result<DatasetSchema> convertCsv(const std::filesystem::path& input, const DatasetOptions& options,
                                 const std::filesystem::path& output);

}  // namespace deviceops::training::internal
