#include "training_formats/safetensors.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <system_error>

#include "common/atomic_file.h"

namespace deviceops::training {
namespace {

constexpr std::string_view kMetadataKey = "__metadata__";
// The reference implementation refuses headers above 100 MB; so do we.
constexpr std::uint64_t kMaxHeaderBytes = 100u * 1024u * 1024u;
// Byte counts stay below 2^62 so that sums of offsets never overflow.
constexpr std::uint64_t kMaxTensorBytes = std::uint64_t{1} << 62;

struct DtypeEntry {
  std::string_view name;
  SafeDtype dtype;
  std::size_t size;
};

constexpr std::array<DtypeEntry, 10> kDtypes{{
    {"F32", SafeDtype::kF32, 4},
    {"F64", SafeDtype::kF64, 8},
    {"F16", SafeDtype::kF16, 2},
    {"BF16", SafeDtype::kBF16, 2},
    {"I64", SafeDtype::kI64, 8},
    {"I32", SafeDtype::kI32, 4},
    {"I16", SafeDtype::kI16, 2},
    {"I8", SafeDtype::kI8, 1},
    {"U8", SafeDtype::kU8, 1},
    {"BOOL", SafeDtype::kBool, 1},
}};

std::optional<SafeDtype> parseDtype(std::string_view name) {
  for (const DtypeEntry& entry : kDtypes) {
    if (entry.name == name) return entry.dtype;
  }
  return std::nullopt;
}

Error invalid(const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, "not a valid safetensors file: " + message);
}

Error tensorError(const std::string& name, const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument,
                   fmt::format("not a valid safetensors file: tensor \"{}\": {}", name, message),
                   {{"tensor", name}});
}

// IEEE 754 half -> float, exact (subnormals included).
float halfToFloat(std::uint16_t half) {
  const std::uint32_t sign = static_cast<std::uint32_t>(half & 0x8000u) << 16;
  const std::uint32_t exponent = (half >> 10) & 0x1Fu;
  std::uint32_t mantissa = half & 0x3FFu;
  std::uint32_t bits = 0;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: value = mantissa * 2^-24
      const float value = std::ldexp(static_cast<float>(mantissa), -24);
      return sign != 0 ? -value : value;
    }
  } else if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  }
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

template <class T>
T loadLittleEndian(const char* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof value);  // hosts are little-endian (x86-64, aarch64)
  return value;
}

// Element i of `tensor` as double. Precondition: i < elementCount().
double elementAsDouble(const SafeTensor& tensor, std::size_t i) {
  const char* p = tensor.data.data() + i * safeDtypeSize(tensor.dtype);
  switch (tensor.dtype) {
    case SafeDtype::kF32:
      return loadLittleEndian<float>(p);
    case SafeDtype::kF64:
      return loadLittleEndian<double>(p);
    case SafeDtype::kF16:
      return halfToFloat(loadLittleEndian<std::uint16_t>(p));
    case SafeDtype::kBF16: {
      const std::uint32_t bits = static_cast<std::uint32_t>(loadLittleEndian<std::uint16_t>(p))
                                 << 16;
      float value;
      std::memcpy(&value, &bits, sizeof value);
      return value;
    }
    case SafeDtype::kI64:
      return static_cast<double>(loadLittleEndian<std::int64_t>(p));
    case SafeDtype::kI32:
      return loadLittleEndian<std::int32_t>(p);
    case SafeDtype::kI16:
      return loadLittleEndian<std::int16_t>(p);
    case SafeDtype::kI8:
      return loadLittleEndian<std::int8_t>(p);
    case SafeDtype::kU8:
      return loadLittleEndian<std::uint8_t>(p);
    case SafeDtype::kBool:
      return loadLittleEndian<std::uint8_t>(p) != 0 ? 1.0 : 0.0;
  }
  return 0.0;
}

bool isFloating(SafeDtype dtype) {
  return dtype == SafeDtype::kF32 || dtype == SafeDtype::kF64 || dtype == SafeDtype::kF16 ||
         dtype == SafeDtype::kBF16;
}

// Byte count of a tensor, or nullopt when it would reach 2^62.
std::optional<std::uint64_t> checkedByteCount(const std::vector<std::int64_t>& shape,
                                              std::size_t elementSize) {
  std::uint64_t bytes = elementSize;
  for (std::int64_t dim : shape) {
    if (dim < 0) return std::nullopt;
    const auto extent = static_cast<std::uint64_t>(dim);
    if (extent != 0 && bytes > kMaxTensorBytes / extent) return std::nullopt;
    bytes *= extent;
  }
  return bytes;
}

struct Entry {
  std::string name;
  SafeDtype dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin, end;
};

Result<Entry> parseEntry(const std::string& name, const nlohmann::json& value) {
  if (!value.is_object()) return tensorError(name, "the entry is not a JSON object");
  const auto dtypeIt = value.find("dtype");
  const auto shapeIt = value.find("shape");
  const auto offsetsIt = value.find("data_offsets");
  if (dtypeIt == value.end() || !dtypeIt->is_string()) {
    return tensorError(name, "\"dtype\" is missing or not a string");
  }
  const std::optional<SafeDtype> dtype = parseDtype(dtypeIt->get_ref<const std::string&>());
  if (!dtype) {
    return tensorError(name, "unsupported dtype \"" + dtypeIt->get<std::string>() +
                                 "\" (supported: F32, F64, F16, BF16, I64, I32, I16, I8, U8, "
                                 "BOOL)");
  }
  if (shapeIt == value.end() || !shapeIt->is_array()) {
    return tensorError(name, "\"shape\" is missing or not an array");
  }
  Entry entry{name, *dtype, {}, 0, 0};
  for (const nlohmann::json& dim : *shapeIt) {
    if (!dim.is_number_integer() || dim.get<std::int64_t>() < 0) {
      return tensorError(name, "\"shape\" holds something other than non-negative integers");
    }
    entry.shape.push_back(dim.get<std::int64_t>());
  }
  if (offsetsIt == value.end() || !offsetsIt->is_array() || offsetsIt->size() != 2 ||
      !(*offsetsIt)[0].is_number_unsigned() || !(*offsetsIt)[1].is_number_unsigned()) {
    return tensorError(name, "\"data_offsets\" is not a pair of non-negative integers");
  }
  entry.begin = (*offsetsIt)[0].get<std::uint64_t>();
  entry.end = (*offsetsIt)[1].get<std::uint64_t>();
  if (entry.end < entry.begin) return tensorError(name, "\"data_offsets\" end before begin");
  const std::optional<std::uint64_t> bytes = checkedByteCount(entry.shape, safeDtypeSize(*dtype));
  if (!bytes) return tensorError(name, "the shape's byte count overflows");
  if (entry.end - entry.begin != *bytes) {
    return tensorError(name, fmt::format("shape and dtype need {} bytes but data_offsets span {}",
                                         *bytes, entry.end - entry.begin));
  }
  return entry;
}

// The JSON header (without the length prefix or padding) for `file`, tensors in name order.
std::string headerJson(const SafeTensorFile& file) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) header[std::string(kMetadataKey)] = file.metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : file.tensors) {
    const std::uint64_t end = offset + tensor.data.size();
    header[name] = {{"dtype", safeDtypeName(tensor.dtype)},
                    {"shape", tensor.shape},
                    {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  return json;
}

std::string lengthPrefix(std::uint64_t length) {
  std::string prefix(8, '\0');
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((length >> (8 * i)) & 0xFFu);
  return prefix;
}

Status ioError(const std::string& what, const std::filesystem::path& path, int error) {
  return makeError(ErrorCode::kInternal,
                   fmt::format("cannot {} {}: {}", what, path.string(), std::strerror(error)));
}

}  // namespace

std::string_view safeDtypeName(SafeDtype dtype) {
  for (const DtypeEntry& entry : kDtypes) {
    if (entry.dtype == dtype) return entry.name;
  }
  return "F32";
}

std::size_t safeDtypeSize(SafeDtype dtype) {
  for (const DtypeEntry& entry : kDtypes) {
    if (entry.dtype == dtype) return entry.size;
  }
  return 4;
}

std::int64_t SafeTensor::elementCount() const {
  std::int64_t count = 1;
  for (std::int64_t dim : shape) count *= dim;
  return count;
}

std::vector<float> SafeTensor::toFloat() const {
  const std::size_t count = data.size() / safeDtypeSize(dtype);
  std::vector<float> values(count);
  if (dtype == SafeDtype::kF32) {
    std::memcpy(values.data(), data.data(), count * sizeof(float));
    return values;
  }
  for (std::size_t i = 0; i < count; ++i) values[i] = static_cast<float>(elementAsDouble(*this, i));
  return values;
}

std::vector<std::int64_t> SafeTensor::toInt64() const {
  const std::size_t count = data.size() / safeDtypeSize(dtype);
  std::vector<std::int64_t> values(count);
  if (dtype == SafeDtype::kI64) {
    std::memcpy(values.data(), data.data(), count * sizeof(std::int64_t));
    return values;
  }
  for (std::size_t i = 0; i < count; ++i) {
    const double value = elementAsDouble(*this, i);
    if (!isFloating(dtype)) {
      values[i] = static_cast<std::int64_t>(value);  // |value| < 2^31: exact
    } else if (std::isnan(value)) {
      values[i] = 0;
    } else if (value >= 9.2233720368547758e18) {
      values[i] = std::numeric_limits<std::int64_t>::max();
    } else if (value < -9.2233720368547758e18) {
      values[i] = std::numeric_limits<std::int64_t>::min();
    } else {
      values[i] = static_cast<std::int64_t>(value);  // truncates toward zero
    }
  }
  return values;
}

const SafeTensor* SafeTensorFile::find(const std::string& name) const {
  const auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

Result<SafeTensorFile> parseSafeTensors(std::string_view bytes) {
  if (bytes.size() < 8) return invalid("shorter than the 8-byte header length");
  std::uint64_t headerLength = 0;
  for (int i = 7; i >= 0; --i) {
    headerLength = (headerLength << 8) | static_cast<unsigned char>(bytes[i]);
  }
  if (headerLength > kMaxHeaderBytes) {
    return invalid(fmt::format("header length {} is above the limit of {} bytes", headerLength,
                               kMaxHeaderBytes));
  }
  if (headerLength > bytes.size() - 8) {
    return invalid(fmt::format("header length {} runs past the end of the file ({} bytes)",
                               headerLength, bytes.size()));
  }
  const std::string_view headerText = bytes.substr(8, headerLength);
  const std::string_view data = bytes.substr(8 + headerLength);
  const nlohmann::json header = nlohmann::json::parse(headerText, nullptr, false);
  if (header.is_discarded()) return invalid("the header is not valid JSON");
  if (!header.is_object()) return invalid("the header is not a JSON object");

  SafeTensorFile file;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey) {
      if (!value.is_object()) return invalid("\"__metadata__\" is not an object");
      for (const auto& [metaKey, metaValue] : value.items()) {
        if (!metaValue.is_string()) {
          return invalid("\"__metadata__\" value of \"" + metaKey + "\" is not a string");
        }
        file.metadata[metaKey] = metaValue.get<std::string>();
      }
      continue;
    }
    Result<Entry> entry = parseEntry(key, value);
    if (!entry.ok()) return entry.error();
    entries.push_back(std::move(entry).value());
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t expected = 0;
  for (const Entry& entry : entries) {
    if (entry.begin != expected) {
      return tensorError(
          entry.name,
          entry.begin < expected
              ? fmt::format("data_offsets overlap another tensor (begin {})", entry.begin)
              : fmt::format("gap in the data section before offset {}", entry.begin));
    }
    if (entry.end > data.size()) {
      return tensorError(entry.name,
                         fmt::format("data_offsets end {} is past the data section ({} bytes)",
                                     entry.end, data.size()));
    }
    expected = entry.end;
  }
  if (expected != data.size()) {
    return invalid(fmt::format("the data section has {} bytes but the tensors cover {}",
                               data.size(), expected));
  }
  for (Entry& entry : entries) {
    SafeTensor tensor;
    tensor.dtype = entry.dtype;
    tensor.shape = std::move(entry.shape);
    tensor.data.assign(data.substr(entry.begin, entry.end - entry.begin));
    file.tensors.emplace(entry.name, std::move(tensor));
  }
  return file;
}

Result<SafeTensorFile> readSafeTensorsFile(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) {
      return makeError(ErrorCode::kNotFound, "no such file: " + file.string());
    }
    return ioError("open", file, error).error();
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    return ioError("stat", file, error).error();
  }
  const auto size = static_cast<std::size_t>(info.st_size);
  if (size == 0) {
    ::close(fd);
    return parseSafeTensors({});
  }
  // Mapped, not read: the data is copied once, into the tensors.
  void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int mapError = errno;
  ::close(fd);
  if (mapped == MAP_FAILED) return ioError("map", file, mapError).error();
  Result<SafeTensorFile> parsed = parseSafeTensors({static_cast<const char*>(mapped), size});
  ::munmap(mapped, size);
  return parsed;
}

std::string serializeSafeTensors(const SafeTensorFile& file) {
  const std::string header = headerJson(file);
  std::string bytes = lengthPrefix(header.size());
  bytes += header;
  for (const auto& [name, tensor] : file.tensors) bytes += tensor.data;
  return bytes;
}

Status writeSafeTensorsFile(const std::filesystem::path& file, const SafeTensorFile& contents) {
  // Streamed from the tensors themselves (no second copy of the data in memory).
  const std::string header = headerJson(contents);
  const std::string prefix = lengthPrefix(header.size());
  std::vector<std::string_view> pieces{prefix, header};
  for (const auto& [name, tensor] : contents.tensors) pieces.emplace_back(tensor.data);
  return writeFileAtomically(file, pieces);
}

SafeTensor makeF32Tensor(std::vector<std::int64_t> shape, const std::vector<float>& values) {
  SafeTensor tensor;
  tensor.dtype = SafeDtype::kF32;
  tensor.shape = std::move(shape);
  tensor.data.resize(values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

SafeTensor makeI64Tensor(std::vector<std::int64_t> shape, const std::vector<std::int64_t>& values) {
  SafeTensor tensor;
  tensor.dtype = SafeDtype::kI64;
  tensor.shape = std::move(shape);
  tensor.data.resize(values.size() * sizeof(std::int64_t));
  if (!values.empty()) std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

}  // namespace deviceops::training
