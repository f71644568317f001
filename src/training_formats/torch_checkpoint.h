// Reading PyTorch checkpoints (.pt, Lightning .ckpt, diffusers .bin) without Python or libtorch
// and without executing anything (SDXL.md section 6).
//
// A torch.save file (torch >= 1.6) is a zip (torch_zip.h) holding <stem>/data.pkl, a pickle of
// the saved object, and <stem>/data/<key>, one raw little-endian storage per key; any single
// top-level directory name is accepted. data.pkl goes through the restricted unpickler
// (torch_pickle.h), which never resolves or calls a global. The state dict is the top level's
// "state_dict" when it is a dict (Lightning), else the top-level dict; its non-tensor values are
// skipped.
//
// Every tensor is validated against its storage before a byte is copied: the storage entry
// exists, holds at least the declared numel (and a whole number of elements), and
// offset + sum((size_i - 1) * stride_i) < storage elements. A tensor may not have more elements
// than its storage (expanded, stride-0 weights are refused), so no declared shape makes the
// reader allocate more than the file holds. Tensors come back contiguous (row-major), gathered
// through their strides.
//
// Errors: kNotFound for a missing file; kInvalidArgument for everything wrong with its contents
// (the legacy pre-zip torch format, a truncated or malformed zip, compressed entries, a refused
// global, out-of-bounds or short storages, huge shapes), the message naming the problem.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "training_formats/torch_pickle.h"
#include "training_formats/torch_zip.h"

namespace deviceops::training {

struct NamedTensor {
  std::string name;
  TorchDtype dtype = TorchDtype::kF32;
  std::vector<std::int64_t> shape;
  std::string data;  // contiguous row-major little-endian elements: product(shape) * dtype size

  std::int64_t elementCount() const;
};

struct StateDict {
  std::vector<NamedTensor> tensors;  // in the order the pickle lists them
  std::vector<std::string> skipped;  // keys whose values are not tensors
  bool nested = false;               // taken from the top level's "state_dict"

  const NamedTensor* find(std::string_view name) const;  // null if absent
};

// The tensor's elements as float: F32 as is, F16 and BF16 widened exactly (subnormals, infinities
// and NaN payloads kept). kInvalidArgument for other dtypes.
Result<std::vector<float>> widenToFloat(const NamedTensor& tensor);

// An opened checkpoint: the file stays mapped, tensors are validated and listed, and data is
// gathered one tensor at a time (a full SDXL checkpoint needs only a few of its tensors for a
// VAE). Movable. const methods are safe to call from several threads at once.
class TorchCheckpoint {
 public:
  static Result<TorchCheckpoint> open(const std::filesystem::path& file);

  // Layouts of the state dict's tensors, all validated against their storages.
  const std::vector<PickledTensor>& tensors() const { return layouts_; }
  const std::vector<std::string>& skipped() const { return skipped_; }
  bool nested() const { return nested_; }

  // The tensor's contiguous bytes. Precondition: `layout` comes from tensors().
  NamedTensor read(const PickledTensor& layout) const;

  // Parses an archive held in memory; `archive` must outlive the result.
  static Result<TorchCheckpoint> fromBytes(std::string_view archive);

 private:
  MappedFile file_;  // empty for fromBytes
  std::vector<PickledTensor> layouts_;
  std::vector<std::string_view> storages_;  // each tensor's storage bytes, parallel to layouts_
  std::vector<std::string> skipped_;
  bool nested_ = false;
};

// Reads the whole state dict (see the file comment).
Result<StateDict> readTorchCheckpoint(const std::filesystem::path& file);

}  // namespace deviceops::training
