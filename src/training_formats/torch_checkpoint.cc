#include "training_formats/torch_checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

namespace deviceops::training {
namespace {

// Output byte counts stay below 2^62, so no sum or product below overflows.
constexpr std::uint64_t kMaxTensorBytes = std::uint64_t{1} << 62;
// What torch.save (before 1.6, or with _use_new_zipfile_serialization=False) writes first:
// PROTO 2, LONG1 of 10 bytes, the magic number 0x1950a86a20f9469cfc6c.
constexpr std::string_view kLegacyMagic =
    "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19";

Error tensorError(const std::string& name, const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument,
                   fmt::format("not a valid torch checkpoint: tensor \"{}\": {}", name, message),
                   {{"tensor", name}});
}

// IEEE 754 binary16 -> binary32, exact: every half is a float.
float halfToFloat(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1Fu;
  const std::uint32_t mantissa = half & 0x3FFu;
  std::uint32_t bits = sign;
  if (exponent == 0x1F) {
    bits |= 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits |= ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa != 0) {  // subnormal: mantissa * 2^-24, normal as a float
    const float value = std::ldexp(static_cast<float>(mantissa), -24);
    return sign != 0 ? -value : value;
  }
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

// The one <stem>/data.pkl of the archive.
Result<const StoredZipEntry*> findPickle(const StoredZip& zip) {
  const StoredZipEntry* found = nullptr;
  for (const StoredZipEntry& entry : zip.entries()) {
    const std::size_t slash = entry.name.find('/');
    if (slash == 0 || slash == std::string::npos || entry.name.substr(slash) != "/data.pkl") {
      continue;
    }
    if (found != nullptr) {
      return makeError(ErrorCode::kInvalidArgument,
                       "not a valid torch checkpoint: the archive holds more than one data.pkl");
    }
    found = &entry;
  }
  if (found == nullptr) {
    return makeError(ErrorCode::kInvalidArgument,
                     "not a valid torch checkpoint: the zip has no <name>/data.pkl (not written "
                     "by torch.save)");
  }
  return found;
}

// Validates `tensor` against `storage` (its bytes); see the header for the rules.
Status checkLayout(const PickledTensor& tensor, std::string_view storage) {
  const std::uint64_t elementSize = torchDtypeSize(tensor.dtype);
  if (tensor.storageNumel > storage.size() / elementSize) {
    return tensorError(
        tensor.name,
        fmt::format("its storage data/{} holds {} bytes but the pickle declares {} "
                    "elements of {} bytes",
                    tensor.storageKey, storage.size(), tensor.storageNumel, elementSize));
  }
  std::uint64_t count = 1;
  for (const std::int64_t dim : tensor.shape) {
    const auto extent = static_cast<std::uint64_t>(dim);
    if (extent != 0 && count > kMaxTensorBytes / elementSize / extent) {
      return tensorError(tensor.name,
                         fmt::format("its shape [{}] is too large", fmt::join(tensor.shape, ", ")));
    }
    count *= extent;
  }
  if (count == 0) return Status::success();
  if (count > tensor.storageNumel) {
    return tensorError(
        tensor.name,
        fmt::format("its shape [{}] has {} elements, more than its storage data/{} "
                    "({}); expanded tensors are not read",
                    fmt::join(tensor.shape, ", "), count, tensor.storageKey, tensor.storageNumel));
  }
  // Highest element index reached; every term is below 2^62 (checked) so the sum cannot wrap.
  std::uint64_t last = static_cast<std::uint64_t>(tensor.storageOffset);
  bool outside = last >= tensor.storageNumel;
  for (std::size_t i = 0; i < tensor.shape.size() && !outside; ++i) {
    std::uint64_t reach = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(tensor.shape[i] - 1),
                               static_cast<std::uint64_t>(tensor.stride[i]), &reach) ||
        reach >= tensor.storageNumel) {
      outside = true;
      break;
    }
    last += reach;
    outside = last >= tensor.storageNumel;
  }
  if (outside) {
    return tensorError(
        tensor.name,
        fmt::format("offset {} with shape [{}] and strides [{}] reaches past the "
                    "end of its storage data/{} ({} elements)",
                    tensor.storageOffset, fmt::join(tensor.shape, ", "),
                    fmt::join(tensor.stride, ", "), tensor.storageKey, tensor.storageNumel));
  }
  return Status::success();
}

}  // namespace

std::int64_t NamedTensor::elementCount() const {
  std::int64_t count = 1;
  for (const std::int64_t dim : shape) count *= dim;
  return count;
}

const NamedTensor* StateDict::find(std::string_view name) const {
  for (const NamedTensor& tensor : tensors) {
    if (tensor.name == name) return &tensor;
  }
  return nullptr;
}

Result<std::vector<float>> widenToFloat(const NamedTensor& tensor) {
  const std::size_t count = tensor.data.size() / torchDtypeSize(tensor.dtype);
  std::vector<float> values(count);
  switch (tensor.dtype) {
    case TorchDtype::kF32:
      if (count > 0) std::memcpy(values.data(), tensor.data.data(), count * sizeof(float));
      return values;
    case TorchDtype::kF16:
    case TorchDtype::kBF16:
      for (std::size_t i = 0; i < count; ++i) {
        std::uint16_t half;
        std::memcpy(&half, tensor.data.data() + 2 * i, sizeof half);
        if (tensor.dtype == TorchDtype::kF16) {
          values[i] = halfToFloat(half);
        } else {
          const std::uint32_t bits = static_cast<std::uint32_t>(half) << 16;
          std::memcpy(&values[i], &bits, sizeof bits);
        }
      }
      return values;
    default:
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("tensor \"{}\" is {}; only F32, F16 and BF16 widen to float",
                                   tensor.name, torchDtypeName(tensor.dtype)));
  }
}

Result<TorchCheckpoint> TorchCheckpoint::fromBytes(std::string_view archive) {
  if (archive.starts_with(kLegacyMagic) || archive.starts_with("\x80")) {
    return makeError(ErrorCode::kInvalidArgument,
                     "this is the legacy (pre-1.6, non-zip) torch.save format, which is not "
                     "read; re-save it with a current torch.save or convert it to safetensors");
  }
  ASSIGN_OR_RETURN(const StoredZip zip, parseStoredZip(archive));
  ASSIGN_OR_RETURN(const StoredZipEntry* pickle, findPickle(zip));
  ASSIGN_OR_RETURN(PickledStateDict dict, unpickleStateDict(zip.data(*pickle)));
  const std::string prefix = pickle->name.substr(0, pickle->name.size() - 8) + "data/";
  TorchCheckpoint checkpoint;
  for (const PickledTensor& tensor : dict.tensors) {
    const StoredZipEntry* storage = zip.find(prefix + tensor.storageKey);
    if (storage == nullptr) {
      return tensorError(tensor.name, fmt::format("its storage {}{} is not in the archive", prefix,
                                                  tensor.storageKey));
    }
    RETURN_IF_ERROR(checkLayout(tensor, zip.data(*storage)));
    checkpoint.storages_.push_back(zip.data(*storage));
  }
  checkpoint.layouts_ = std::move(dict.tensors);
  checkpoint.skipped_ = std::move(dict.skipped);
  checkpoint.nested_ = dict.nested;
  return checkpoint;
}

Result<TorchCheckpoint> TorchCheckpoint::open(const std::filesystem::path& file) {
  ASSIGN_OR_RETURN(MappedFile mapped, MappedFile::open(file));
  // The views into the mapping stay valid when `mapped` moves into the checkpoint.
  ASSIGN_OR_RETURN(TorchCheckpoint checkpoint, fromBytes(mapped.bytes()));
  checkpoint.file_ = std::move(mapped);
  return checkpoint;
}

NamedTensor TorchCheckpoint::read(const PickledTensor& layout) const {
  const auto position = static_cast<std::size_t>(&layout - layouts_.data());
  const std::string_view storage = storages_[position];
  const std::size_t elementSize = torchDtypeSize(layout.dtype);
  NamedTensor tensor{layout.name, layout.dtype, layout.shape, {}};
  const auto count = static_cast<std::size_t>(tensor.elementCount());
  tensor.data.resize(count * elementSize);
  if (count == 0) return tensor;
  // The innermost dimensions that are contiguous in the storage are copied as one run.
  const std::size_t rank = layout.shape.size();
  std::size_t runDims = 0;
  std::size_t run = 1;
  while (runDims < rank && (layout.shape[rank - 1 - runDims] == 1 ||
                            static_cast<std::size_t>(layout.stride[rank - 1 - runDims]) == run)) {
    run *= static_cast<std::size_t>(layout.shape[rank - 1 - runDims]);
    ++runDims;
  }
  const std::size_t outerRank = rank - runDims;
  std::vector<std::int64_t> index(outerRank, 0);
  std::size_t source = static_cast<std::size_t>(layout.storageOffset);
  for (std::size_t written = 0; written < count; written += run) {
    std::memcpy(tensor.data.data() + written * elementSize, storage.data() + source * elementSize,
                run * elementSize);
    // Odometer over the outer dimensions.
    for (std::size_t d = outerRank; d-- > 0;) {
      source += static_cast<std::size_t>(layout.stride[d]);
      if (++index[d] < layout.shape[d]) break;
      source -= static_cast<std::size_t>(layout.stride[d] * layout.shape[d]);
      index[d] = 0;
    }
  }
  return tensor;
}

Result<StateDict> readTorchCheckpoint(const std::filesystem::path& file) {
  ASSIGN_OR_RETURN(const TorchCheckpoint checkpoint, TorchCheckpoint::open(file));
  StateDict dict;
  dict.tensors.reserve(checkpoint.tensors().size());
  for (const PickledTensor& layout : checkpoint.tensors()) {
    dict.tensors.push_back(checkpoint.read(layout));
  }
  dict.skipped = checkpoint.skipped();
  dict.nested = checkpoint.nested();
  return dict;
}

}  // namespace deviceops::training
