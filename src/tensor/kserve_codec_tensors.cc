// Tensor elements on the wire: JSON data (with its number rules and NaN strings), the binary
// extension's layout, and FP16/BF16 rounding. The protocol framing is in kserve_codec.cc.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "tensor/kserve_codec.h"
#include "tensor/kserve_codec_internal.h"

namespace deviceops::inference {
namespace {

using nlohmann::json;

static_assert(std::endian::native == std::endian::little,
              "tensor bytes are little-endian; a big-endian host needs byte swapping here");

constexpr int kMaxNesting = 64;  // JSON `data` arrays nested deeper are refused

std::string shapeText(const std::vector<std::int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ","));
}

using kserve_internal::requestError;
using kserve_internal::tensorError;

// Generic IEEE narrowing with round-to-nearest-even, straight from the double's bits (no double
// rounding through float). Result: sign | exponent | mantissa of a format with `expBits` and
// `mantBits`.
std::uint32_t narrowFloat(double value, int expBits, int mantBits) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  const std::uint32_t sign = static_cast<std::uint32_t>(bits >> 63) << (expBits + mantBits);
  const int exponentField = static_cast<int>((bits >> 52) & 0x7ff);
  const std::uint64_t mantissa = bits & ((1ull << 52) - 1);
  const int bias = (1 << (expBits - 1)) - 1;
  const std::uint32_t infinity = static_cast<std::uint32_t>((1 << expBits) - 1) << mantBits;
  if (exponentField == 0x7ff) {
    return sign | infinity | (mantissa != 0 ? 1u << (mantBits - 1) : 0u);
  }
  if (exponentField == 0) return sign;  // zero or a double subnormal: far below any target
  const int exponent = exponentField - 1023;
  if (exponent > bias) return sign | infinity;
  const int minNormal = 1 - bias;
  std::uint64_t significand = mantissa;
  std::uint32_t base = 0;
  int shift = 52 - mantBits;
  if (exponent >= minNormal) {
    base = static_cast<std::uint32_t>(exponent + bias) << mantBits;
  } else {
    significand |= 1ull << 52;
    shift += minNormal - exponent;
    if (shift > 60) return sign;  // below half the smallest subnormal
  }
  const std::uint64_t quotient = significand >> shift;
  const std::uint64_t remainder = significand & ((1ull << shift) - 1);
  const std::uint64_t halfway = 1ull << (shift - 1);
  std::uint32_t result = base + static_cast<std::uint32_t>(quotient);
  if (remainder > halfway || (remainder == halfway && (result & 1u) != 0)) ++result;
  return sign | result;  // a carry into the exponent is correct, up to infinity
}

double widenFloat(std::uint32_t bits, int expBits, int mantBits) {
  const bool negative = ((bits >> (expBits + mantBits)) & 1u) != 0;
  const int exponentField = static_cast<int>((bits >> mantBits) & ((1u << expBits) - 1));
  const std::uint32_t mantissa = bits & ((1u << mantBits) - 1);
  const int bias = (1 << (expBits - 1)) - 1;
  double magnitude = 0;
  if (exponentField == (1 << expBits) - 1) {
    magnitude = mantissa != 0 ? std::numeric_limits<double>::quiet_NaN()
                              : std::numeric_limits<double>::infinity();
  } else if (exponentField == 0) {
    magnitude = std::ldexp(static_cast<double>(mantissa), 1 - bias - mantBits);
  } else {
    magnitude = std::ldexp(static_cast<double>(mantissa | (1u << mantBits)),
                           exponentField - bias - mantBits);
  }
  return negative ? -magnitude : magnitude;
}

template <class T>
void appendValue(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

template <class T>
T loadValue(const char* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof(T));
  return value;
}

// One JSON element into `out`; returns a description of what was wrong, empty on success.
template <class T>
std::string appendInteger(const json& value, std::string& out) {
  using Limits = std::numeric_limits<T>;
  const auto range = [] {
    return fmt::format("an integer in [{}, {}]", static_cast<std::int64_t>(Limits::min()),
                       Limits::max());
  };
  if (value.is_number_unsigned()) {
    const auto number = value.get<std::uint64_t>();
    if (number > static_cast<std::uint64_t>(Limits::max())) {
      return fmt::format("expected {}, got {}", range(), number);
    }
    appendValue(out, static_cast<T>(number));
    return {};
  }
  if (value.is_number_integer()) {  // negative: nlohmann stores non-negatives as unsigned
    const auto number = value.get<std::int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      return fmt::format("expected {}, got {}", range(), number);
    } else {
      if (number < static_cast<std::int64_t>(Limits::min()) ||
          number > static_cast<std::int64_t>(Limits::max())) {
        return fmt::format("expected {}, got {}", range(), number);
      }
      appendValue(out, static_cast<T>(number));
      return {};
    }
  }
  if (value.is_number_float()) {
    const double number = value.get<double>();
    if (!std::isfinite(number) || std::trunc(number) != number) {
      return fmt::format("expected {}, got the non-integer {}", range(), value.dump());
    }
    // (double)max + 1 is exact for small types and equals 2^63 / 2^64 for the 64-bit ones.
    if (number < static_cast<double>(Limits::min()) ||
        number >= static_cast<double>(Limits::max()) + 1.0) {
      return fmt::format("expected {}, got {}", range(), value.dump());
    }
    appendValue(out, static_cast<T>(number));
    return {};
  }
  return fmt::format("expected {}, got {}", range(), value.type_name());
}

// A float element: a number or "NaN" / "Infinity" / "-Infinity".
std::optional<double> readFloat(const json& value) {
  if (value.is_number()) return value.get<double>();
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (text == "Infinity") return std::numeric_limits<double>::infinity();
    if (text == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  return std::nullopt;
}

std::string appendElement(DataType type, const json& value, std::string& out) {
  switch (type) {
    case DataType::kBool:
      if (!value.is_boolean())
        return fmt::format("expected true or false, got {}", value.type_name());
      out.push_back(value.get<bool>() ? '\1' : '\0');
      return {};
    case DataType::kUint8:
      return appendInteger<std::uint8_t>(value, out);
    case DataType::kUint16:
      return appendInteger<std::uint16_t>(value, out);
    case DataType::kUint32:
      return appendInteger<std::uint32_t>(value, out);
    case DataType::kUint64:
      return appendInteger<std::uint64_t>(value, out);
    case DataType::kInt8:
      return appendInteger<std::int8_t>(value, out);
    case DataType::kInt16:
      return appendInteger<std::int16_t>(value, out);
    case DataType::kInt32:
      return appendInteger<std::int32_t>(value, out);
    case DataType::kInt64:
      return appendInteger<std::int64_t>(value, out);
    case DataType::kFp16:
    case DataType::kBf16:
    case DataType::kFp32:
    case DataType::kFp64: {
      const std::optional<double> number = readFloat(value);
      if (!number) {
        return fmt::format("expected a number or \"NaN\", \"Infinity\", \"-Infinity\", got {}",
                           value.is_string() ? value.dump() : std::string(value.type_name()));
      }
      const auto overflow = [&](std::string_view max) {
        return fmt::format("{} is out of range for {} (largest finite value {})", value.dump(),
                           dataTypeName(type), max);
      };
      if (type == DataType::kFp64) {
        appendValue(out, *number);
      } else if (type == DataType::kFp32) {
        const auto single = static_cast<float>(*number);
        if (std::isinf(single) && std::isfinite(*number)) return overflow("3.4028235e38");
        appendValue(out, single);
      } else if (type == DataType::kFp16) {
        const std::uint16_t half = doubleToHalf(*number);
        if ((half & 0x7fff) == 0x7c00 && std::isfinite(*number)) return overflow("65504");
        appendValue(out, half);
      } else {
        const std::uint16_t brain = doubleToBfloat16(*number);
        if ((brain & 0x7fff) == 0x7f80 && std::isfinite(*number)) return overflow("3.3895314e38");
        appendValue(out, brain);
      }
      return {};
    }
    case DataType::kBytes:
      return "internal: BYTES is not packed";
  }
  return "unknown datatype";
}

// Collects the leaves of a (possibly nested) array in row-major order.
Status collectLeaves(const json& array, int depth, std::vector<const json*>& leaves) {
  if (depth > kMaxNesting) {
    return requestError(fmt::format("'data' is nested deeper than {} levels", kMaxNesting));
  }
  for (const json& item : array) {
    if (item.is_array()) {
      Status nested = collectLeaves(item, depth + 1, leaves);
      if (!nested.ok()) return nested;
    } else {
      leaves.push_back(&item);
    }
  }
  return {};
}

json floatToJson(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

template <class T>
void integersToJson(const std::string& data, json& out) {
  for (std::size_t offset = 0; offset + sizeof(T) <= data.size(); offset += sizeof(T)) {
    out.push_back(loadValue<T>(data.data() + offset));
  }
}

// Reads `shape` from JSON: an array of non-negative integers.
}  // namespace

std::uint16_t doubleToHalf(double value) {
  return static_cast<std::uint16_t>(narrowFloat(value, 5, 10));
}
std::uint16_t doubleToBfloat16(double value) {
  return static_cast<std::uint16_t>(narrowFloat(value, 8, 7));
}
double halfToDouble(std::uint16_t bits) { return widenFloat(bits, 5, 10); }
double bfloat16ToDouble(std::uint16_t bits) { return widenFloat(bits, 8, 7); }

Result<Tensor> tensorFromJson(std::string_view role, std::string name, DataType type,
                              std::vector<std::int64_t> shape, const json& data) {
  Result<std::uint64_t> bytes = byteCount(type, shape);
  if (!bytes.ok()) return tensorError(role, name, bytes.error().message);
  const std::uint64_t count = *elementCount(shape);
  if (!data.is_array()) {
    return tensorError(role, name,
                       fmt::format("'data' must be an array, got {}", data.type_name()));
  }
  std::vector<const json*> leaves;
  if (Status collected = collectLeaves(data, 1, leaves); !collected.ok()) {
    return tensorError(role, name, collected.error().message);
  }
  if (leaves.size() != count) {
    return tensorError(role, name,
                       fmt::format("expected {} {} elements for shape {}, got {}", count,
                                   dataTypeName(type), shapeText(shape), leaves.size()),
                       {{"expectedElements", count}, {"elements", leaves.size()}});
  }
  Tensor tensor;
  tensor.name = std::move(name);
  tensor.type = type;
  tensor.shape = std::move(shape);
  if (type == DataType::kBytes) {
    tensor.strings.reserve(leaves.size());
    for (std::size_t index = 0; index < leaves.size(); ++index) {
      if (!leaves[index]->is_string()) {
        return tensorError(role, tensor.name,
                           fmt::format("element {}: expected a string for BYTES, got {}", index,
                                       leaves[index]->type_name()));
      }
      tensor.strings.push_back(leaves[index]->get<std::string>());
    }
    return tensor;
  }
  tensor.data.reserve(static_cast<std::size_t>(*bytes));
  for (std::size_t index = 0; index < leaves.size(); ++index) {
    const std::string problem = appendElement(type, *leaves[index], tensor.data);
    if (!problem.empty()) {
      return tensorError(role, tensor.name,
                         fmt::format("element {}: {} ({})", index, problem, dataTypeName(type)),
                         {{"element", index}});
    }
  }
  return tensor;
}

json tensorDataToJson(const Tensor& tensor) {
  json out = json::array();
  const std::string& data = tensor.data;
  switch (tensor.type) {
    case DataType::kBool:
      for (const char byte : data) out.push_back(byte != 0);
      break;
    case DataType::kUint8:
      integersToJson<std::uint8_t>(data, out);
      break;
    case DataType::kUint16:
      integersToJson<std::uint16_t>(data, out);
      break;
    case DataType::kUint32:
      integersToJson<std::uint32_t>(data, out);
      break;
    case DataType::kUint64:
      integersToJson<std::uint64_t>(data, out);
      break;
    case DataType::kInt8:
      integersToJson<std::int8_t>(data, out);
      break;
    case DataType::kInt16:
      integersToJson<std::int16_t>(data, out);
      break;
    case DataType::kInt32:
      integersToJson<std::int32_t>(data, out);
      break;
    case DataType::kInt64:
      integersToJson<std::int64_t>(data, out);
      break;
    case DataType::kFp16:
      for (std::size_t offset = 0; offset + 2 <= data.size(); offset += 2) {
        out.push_back(floatToJson(halfToDouble(loadValue<std::uint16_t>(data.data() + offset))));
      }
      break;
    case DataType::kBf16:
      for (std::size_t offset = 0; offset + 2 <= data.size(); offset += 2) {
        out.push_back(
            floatToJson(bfloat16ToDouble(loadValue<std::uint16_t>(data.data() + offset))));
      }
      break;
    case DataType::kFp32:
      for (std::size_t offset = 0; offset + 4 <= data.size(); offset += 4) {
        out.push_back(floatToJson(loadValue<float>(data.data() + offset)));
      }
      break;
    case DataType::kFp64:
      for (std::size_t offset = 0; offset + 8 <= data.size(); offset += 8) {
        out.push_back(floatToJson(loadValue<double>(data.data() + offset)));
      }
      break;
    case DataType::kBytes:
      for (const std::string& element : tensor.strings) out.push_back(element);
      break;
  }
  return out;
}

std::uint64_t binarySize(const Tensor& tensor) {
  if (tensor.type != DataType::kBytes) return tensor.data.size();
  std::uint64_t size = 0;
  for (const std::string& element : tensor.strings) size += 4 + element.size();
  return size;
}

void appendBinary(const Tensor& tensor, std::string& out) {
  if (tensor.type != DataType::kBytes) {
    out += tensor.data;
    return;
  }
  for (const std::string& element : tensor.strings) {
    appendValue(out, static_cast<std::uint32_t>(element.size()));
    out += element;
  }
}

Result<Tensor> tensorFromBinary(std::string_view role, std::string name, DataType type,
                                std::vector<std::int64_t> shape, std::string_view bytes) {
  Result<std::uint64_t> expected = byteCount(type, shape);
  if (!expected.ok()) return tensorError(role, name, expected.error().message);
  const std::uint64_t count = *elementCount(shape);
  Tensor tensor;
  tensor.name = std::move(name);
  tensor.type = type;
  tensor.shape = std::move(shape);
  if (type == DataType::kBytes) {
    tensor.strings.reserve(std::min<std::uint64_t>(count, bytes.size() / 4));
    std::size_t offset = 0;
    while (offset < bytes.size()) {
      if (bytes.size() - offset < 4) {
        return tensorError(role, tensor.name,
                           fmt::format("BYTES element {} is truncated: its 4-byte length prefix "
                                       "starts {} bytes before the end",
                                       tensor.strings.size(), bytes.size() - offset));
      }
      const auto length = loadValue<std::uint32_t>(bytes.data() + offset);
      offset += 4;
      if (length > bytes.size() - offset) {
        return tensorError(role, tensor.name,
                           fmt::format("BYTES element {} declares {} bytes but only {} remain",
                                       tensor.strings.size(), length, bytes.size() - offset));
      }
      if (tensor.strings.size() == count) {
        return tensorError(role, tensor.name,
                           fmt::format("expected {} BYTES elements for shape {}, the binary data "
                                       "holds more",
                                       count, shapeText(tensor.shape)));
      }
      tensor.strings.emplace_back(bytes.substr(offset, length));
      offset += length;
    }
    if (tensor.strings.size() != count) {
      return tensorError(role, tensor.name,
                         fmt::format("expected {} BYTES elements for shape {}, got {}", count,
                                     shapeText(tensor.shape), tensor.strings.size()));
    }
    return tensor;
  }
  if (bytes.size() != *expected) {
    return tensorError(
        role, tensor.name,
        fmt::format("expected {} bytes ({} {} elements for shape {}), got {} "
                    "bytes of binary data",
                    *expected, count, dataTypeName(type), shapeText(tensor.shape), bytes.size()),
        {{"expectedBytes", *expected}, {"bytes", bytes.size()}});
  }
  if (type == DataType::kBool) {
    for (std::size_t index = 0; index < bytes.size(); ++index) {
      if (bytes[index] != 0 && bytes[index] != 1) {
        return tensorError(role, tensor.name,
                           fmt::format("element {}: BOOL bytes must be 0 or 1, got {}", index,
                                       static_cast<int>(static_cast<unsigned char>(bytes[index]))));
      }
    }
  }
  tensor.data.assign(bytes.data(), bytes.size());
  return tensor;
}

}  // namespace deviceops::inference
