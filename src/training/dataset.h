// Training datasets: validation of uploads (CSV, NumPy .npy pairs, safetensors) and conversion
// into the canonical dataset file every trainer reads (docs/TRAINING.md, "Datasets"):
//
//   features F32 [N, F]   always
//   labels   I64 [N]      when the dataset has classes (class index 0..C-1)
//   targets  F32 [N]      when every label is numeric
//
// plus "__metadata__" {"deviceops.schema": DatasetSchema::toJson().dump()}.
//
// Labels: when every label is a finite number the dataset has `targets` (regression); when there
// are at most maxClasses distinct labels it also has classes: the sorted distinct values (numeric
// order when every label is numeric, else byte order of the text), and `labels` holds each row's
// class index. Text labels with more than maxClasses distinct values are refused.
//
// Errors are kInvalidArgument naming the first problem, with details:
//   CSV:                 {"row": R, "column": "name"} (or only "row" for a whole-row problem).
//                        R is the 1-based line number in the file where the record starts, so
//                        the header is row 1 and the first data row is row 2.
//   npy / safetensors:   {"tensor": "features", "row": i, "column": j} with i the sample index
//                        and j the feature index (flattened), both counted from 0.
// A missing input file is kNotFound; failure to write the output is kInternal/kUnavailable.
//
// Thread-safety: the functions are pure apart from their files; call them from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace deviceops::training {

// What a converted dataset holds.
struct DatasetSchema {
  std::int64_t rows = 0;      // samples N
  std::int64_t features = 0;  // features per sample F
  // CSV: the feature columns' header names, in order. npy/safetensors: empty (no names).
  std::vector<std::string> featureNames;
  std::string labelName;       // CSV label column, or the labels tensor name ("labels" for npy)
  bool numericLabels = false;  // every label is numeric: the file has `targets`
  // Class names in class-index order; empty: no classes (no `labels` tensor). Numeric classes are
  // written in shortest round-trip form ("3", "0.5", "1e+20").
  std::vector<std::string> classes;

  // {"rows", "features", "featureNames", "labelName", "numericLabels", "classes"}
  nlohmann::json toJson() const;
  // Inverse of toJson(); kInvalidArgument naming the field when one is missing or mistyped.
  static Result<DatasetSchema> fromJson(const nlohmann::json& json);
};

struct DatasetOptions {
  std::string format = "csv";               // "csv" | "npy" | "safetensors"
  std::string labelColumn;                  // csv: label column name; empty: the last column
  char delimiter = ',';                     // csv; not '"', '\r' or '\n'
  std::string featuresTensor = "features";  // safetensors input
  std::string labelsTensor = "labels";      // safetensors input
  std::int64_t maxFeatures = 1'000'000;     // more features per sample: refused
  std::int64_t maxClasses = 1024;           // more distinct labels: no classes (text: refused)
};

// Reads `input` (options.format "csv" or "safetensors"), validates it and writes the canonical
// file `output` atomically (its directory must exist). Returns the schema. Nothing is written on
// error. CSV: header row required; quoted fields ("a,b", "" for a quote), CRLF line ends, a
// UTF-8 byte-order mark and empty lines are accepted; spaces around numbers are ignored; the
// file is memory-mapped and parsed in one pass.
Result<DatasetSchema> convertDataset(const std::filesystem::path& input,
                                     const DatasetOptions& options,
                                     const std::filesystem::path& output);

// The npy pair: `features` [N, ...] of any numeric dtype (flattened per row, converted to F32) and
// `labels` [N] or [N, 1] of any numeric dtype. Writes `output` like convertDataset.
Result<DatasetSchema> convertNpyDataset(const std::filesystem::path& features,
                                        const std::filesystem::path& labels,
                                        const DatasetOptions& options,
                                        const std::filesystem::path& output);

// Checks one part of an npy pair on its own ("features" or "labels"): readable .npy, numeric
// dtype, the shape rules above, finite values. Lets an upload be refused before its partner
// arrives. Returns the number of samples N.
Result<std::int64_t> checkNpyPart(const std::filesystem::path& file, std::string_view part,
                                  const DatasetOptions& options = {});

// The canonical file's tensor and metadata names.
inline constexpr std::string_view kFeaturesTensor = "features";
inline constexpr std::string_view kLabelsTensor = "labels";
inline constexpr std::string_view kTargetsTensor = "targets";
inline constexpr std::string_view kSchemaMetadataKey = "deviceops.schema";

}  // namespace deviceops::training
