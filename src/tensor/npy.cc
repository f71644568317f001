#include "tensor/npy.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

namespace deviceops::inference {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

Error npyError(const std::string& what) {
  return makeError(ErrorCode::kInvalidArgument, "not a supported .npy file: " + what);
}

struct DtypeInfo {
  std::string_view code;  // without the byte-order character
  DataType type;
};

constexpr std::array<DtypeInfo, 11> kDtypes{{
    {"f2", DataType::kFp16},
    {"f4", DataType::kFp32},
    {"f8", DataType::kFp64},
    {"b1", DataType::kBool},
    {"i1", DataType::kInt8},
    {"i2", DataType::kInt16},
    {"i4", DataType::kInt32},
    {"i8", DataType::kInt64},
    {"u1", DataType::kUint8},
    {"u2", DataType::kUint16},
    {"u4", DataType::kUint32},
}};

// The header dictionary, as far as we read it.
struct Header {
  std::string descr;
  bool fortranOrder = false;
  std::vector<std::int64_t> shape;
  bool hasDescr = false, hasOrder = false, hasShape = false;
};

// A tiny reader for the Python literal NumPy writes:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
 public:
  explicit HeaderParser(std::string_view text) : text_(text) {}

  Result<Header> parse() {
    Header header;
    skipSpace();
    if (!consume('{')) return npyError("the header is not a Python dict");
    while (true) {
      skipSpace();
      if (consume('}')) break;
      std::optional<std::string> key = readString();
      if (!key) return npyError("a header key is not a quoted string");
      skipSpace();
      if (!consume(':')) return npyError("expected ':' after '" + *key + "' in the header");
      skipSpace();
      if (*key == "descr") {
        std::optional<std::string> descr = readString();
        if (!descr) {
          return npyError(
              "'descr' is not a simple dtype string (structured dtypes are not "
              "supported)");
        }
        header.descr = *descr;
        header.hasDescr = true;
      } else if (*key == "fortran_order") {
        if (consumeWord("True")) {
          header.fortranOrder = true;
        } else if (!consumeWord("False")) {
          return npyError("'fortran_order' is not True or False");
        }
        header.hasOrder = true;
      } else if (*key == "shape") {
        if (!readShape(header.shape)) return npyError("'shape' is not a tuple of integers");
        header.hasShape = true;
      } else {
        return npyError("unexpected header key '" + *key + "'");
      }
      skipSpace();
      if (consume(',')) continue;
      skipSpace();
      if (consume('}')) break;
      return npyError("expected ',' or '}' in the header");
    }
    skipSpace();
    if (position_ != text_.size()) return npyError("text after the header dict");
    if (!header.hasDescr || !header.hasOrder || !header.hasShape) {
      return npyError("the header lacks 'descr', 'fortran_order' or 'shape'");
    }
    return header;
  }

 private:
  void skipSpace() {
    while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\n' ||
                                        text_[position_] == '\t' || text_[position_] == '\r')) {
      ++position_;
    }
  }
  bool consume(char c) {
    if (position_ < text_.size() && text_[position_] == c) {
      ++position_;
      return true;
    }
    return false;
  }
  bool consumeWord(std::string_view word) {
    if (text_.substr(position_, word.size()) != word) return false;
    position_ += word.size();
    return true;
  }
  std::optional<std::string> readString() {
    if (position_ >= text_.size() || (text_[position_] != '\'' && text_[position_] != '"')) {
      return std::nullopt;
    }
    const char quote = text_[position_++];
    const std::size_t end = text_.find(quote, position_);
    if (end == std::string_view::npos) return std::nullopt;
    std::string value(text_.substr(position_, end - position_));
    if (value.find('\\') != std::string::npos) return std::nullopt;
    position_ = end + 1;
    return value;
  }
  bool readShape(std::vector<std::int64_t>& shape) {
    if (!consume('(')) return false;
    while (true) {
      skipSpace();
      if (consume(')')) return true;
      std::uint64_t value = 0;
      std::size_t digits = 0;
      while (position_ < text_.size() && text_[position_] >= '0' && text_[position_] <= '9') {
        if (++digits > 18) return false;  // beyond any real array; keeps value < 2^63
        value = value * 10 + static_cast<std::uint64_t>(text_[position_++] - '0');
      }
      if (digits == 0) return false;
      consume('L');  // Python 2 long suffix
      shape.push_back(static_cast<std::int64_t>(value));
      skipSpace();
      if (consume(',')) continue;
      skipSpace();
      if (consume(')')) return true;
      return false;
    }
  }

  std::string_view text_;
  std::size_t position_ = 0;
};

std::uint32_t loadLittle32(const char* bytes) {
  std::uint32_t value = 0;
  std::memcpy(&value, bytes, 4);
  return value;
}

void appendUtf8(std::uint32_t codePoint, std::string& out) {
  if (codePoint < 0x80) {
    out.push_back(static_cast<char>(codePoint));
  } else if (codePoint < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (codePoint >> 6)));
    out.push_back(static_cast<char>(0x80 | (codePoint & 0x3f)));
  } else if (codePoint < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (codePoint >> 12)));
    out.push_back(static_cast<char>(0x80 | ((codePoint >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (codePoint & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (codePoint >> 18)));
    out.push_back(static_cast<char>(0x80 | ((codePoint >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((codePoint >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (codePoint & 0x3f)));
  }
}

// Fixed-width string items (|S<n> or <U<n>) -> BYTES elements.
Result<Tensor> readStrings(Tensor tensor, std::string_view data, std::uint64_t count,
                           std::uint64_t width, bool unicode) {
  const std::uint64_t itemBytes = unicode ? width * 4 : width;
  if (width == 0 || itemBytes / (unicode ? 4 : 1) != width ||
      (count != 0 && itemBytes > std::numeric_limits<std::uint64_t>::max() / count) ||
      data.size() != count * itemBytes) {
    return npyError(fmt::format("expected {} items of {} bytes after the header, got {} bytes",
                                count, itemBytes, data.size()));
  }
  tensor.strings.reserve(count);
  for (std::uint64_t item = 0; item < count; ++item) {
    std::string_view raw = data.substr(item * itemBytes, itemBytes);
    std::string element;
    if (unicode) {
      std::size_t used = width;
      while (used > 0 && loadLittle32(raw.data() + (used - 1) * 4) == 0) --used;
      for (std::size_t index = 0; index < used; ++index) {
        const std::uint32_t codePoint = loadLittle32(raw.data() + index * 4);
        if (codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) {
          return npyError(
              fmt::format("item {} holds the invalid code point {:#x}", item, codePoint));
        }
        appendUtf8(codePoint, element);
      }
    } else {
      std::size_t used = raw.size();
      while (used > 0 && raw[used - 1] == '\0') --used;
      element.assign(raw.substr(0, used));
    }
    tensor.strings.push_back(std::move(element));
  }
  return tensor;
}

std::string shapeLiteral(const std::vector<std::int64_t>& shape) {
  if (shape.empty()) return "()";
  std::string text = "(";
  for (std::size_t index = 0; index < shape.size(); ++index) {
    if (index > 0) text += ", ";
    text += std::to_string(shape[index]);
  }
  if (shape.size() == 1) text += ",";
  return text + ")";
}

}  // namespace

Result<Tensor> readNpy(std::string_view bytes, std::string name) {
  if (bytes.size() < 10 || bytes.substr(0, kMagic.size()) != kMagic) {
    return npyError("it does not start with the \\x93NUMPY magic");
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  std::size_t headerStart = 10;
  std::uint64_t headerLength = 0;
  if (major == 1) {
    headerLength = static_cast<unsigned char>(bytes[8]) |
                   (static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[9])) << 8);
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return npyError("the header length is truncated");
    headerLength = loadLittle32(bytes.data() + 8);
    headerStart = 12;
  } else {
    return npyError(fmt::format("format version {} is not 1, 2 or 3", major));
  }
  if (headerLength > bytes.size() - headerStart) {
    return npyError(fmt::format("the header claims {} bytes but the file has {} after the preamble",
                                headerLength, bytes.size() - headerStart));
  }
  Result<Header> header = HeaderParser(bytes.substr(headerStart, headerLength)).parse();
  if (!header.ok()) return header.error();
  if (header->fortranOrder) {
    return npyError("Fortran-order arrays are not supported; save with np.ascontiguousarray");
  }
  const std::string& descr = header->descr;
  if (descr.size() < 2) return npyError("dtype '" + descr + "' is not supported");
  const char order = descr[0];
  const std::string code = descr.substr(1);
  Tensor tensor;
  tensor.name = std::move(name);
  tensor.shape = header->shape;
  Result<std::uint64_t> count = elementCount(tensor.shape);
  if (!count.ok()) return npyError(count.error().message);
  const std::string_view data = bytes.substr(headerStart + headerLength);

  if ((code[0] == 'S' || code[0] == 'U') && code.size() > 1 &&
      code.find_first_not_of("0123456789", 1) == std::string::npos && code.size() <= 10) {
    const bool unicode = code[0] == 'U';
    if (order != '|' && order != '<' && !(order == '>' && !unicode)) {
      return npyError("dtype '" + descr + "' is big-endian; only little-endian is supported");
    }
    tensor.type = DataType::kBytes;
    return readStrings(std::move(tensor), data, *count, std::stoull(code.substr(1)), unicode);
  }
  std::optional<DataType> type;
  for (const DtypeInfo& info : kDtypes) {
    if (info.code == code) type = info.type;
  }
  if (code == "u8") type = DataType::kUint64;
  if (!type) {
    return npyError("dtype '" + descr +
                    "' is not supported (use f2 f4 f8 b1 i1 i2 i4 i8 u1 u2 u4 u8, S<n> or U<n>)");
  }
  const std::size_t size = elementSize(*type);
  if (order == '>' && size > 1) {
    return npyError("dtype '" + descr + "' is big-endian; only little-endian is supported");
  }
  if (order != '<' && order != '|' && order != '=' && order != '>') {
    return npyError("dtype '" + descr + "' has an unknown byte-order character");
  }
  tensor.type = *type;
  Result<std::uint64_t> expected = byteCount(*type, tensor.shape);
  if (!expected.ok()) return npyError(expected.error().message);
  if (data.size() != *expected) {
    return npyError(fmt::format("shape {} of {} needs {} data bytes, the file has {}",
                                shapeLiteral(tensor.shape), descr, *expected, data.size()));
  }
  tensor.data.assign(data.data(), data.size());
  if (tensor.type == DataType::kBool) {
    for (char& byte : tensor.data) byte = byte != 0 ? '\1' : '\0';
  }
  return tensor;
}

Result<Tensor> readNpyFile(const std::filesystem::path& file, std::string name) {
  std::ifstream input(file, std::ios::binary);
  if (!input) {
    return makeError(ErrorCode::kNotFound, "cannot open " + file.string());
  }
  std::ostringstream content;
  content << input.rdbuf();
  Result<Tensor> tensor = readNpy(content.str(), std::move(name));
  if (!tensor.ok()) {
    return makeError(tensor.error().code, file.string() + ": " + tensor.error().message);
  }
  return tensor;
}

std::string writeNpy(const Tensor& tensor) {
  std::string descr;
  std::string data;
  switch (tensor.type) {
    case DataType::kBool:
      descr = "|b1";
      break;
    case DataType::kUint8:
      descr = "|u1";
      break;
    case DataType::kUint16:
      descr = "<u2";
      break;
    case DataType::kUint32:
      descr = "<u4";
      break;
    case DataType::kUint64:
      descr = "<u8";
      break;
    case DataType::kInt8:
      descr = "|i1";
      break;
    case DataType::kInt16:
      descr = "<i2";
      break;
    case DataType::kInt32:
      descr = "<i4";
      break;
    case DataType::kInt64:
      descr = "<i8";
      break;
    case DataType::kFp16:
      descr = "<f2";
      break;
    case DataType::kFp32:
      descr = "<f4";
      break;
    case DataType::kFp64:
      descr = "<f8";
      break;
    case DataType::kBf16: {
      descr = "<f4";  // a bfloat16 is the upper half of the float32 with the same value
      data.reserve(tensor.data.size() * 2);
      for (std::size_t offset = 0; offset + 2 <= tensor.data.size(); offset += 2) {
        data.append(2, '\0');
        data.append(tensor.data, offset, 2);
      }
      break;
    }
    case DataType::kBytes: {
      std::size_t width = 1;
      for (const std::string& element : tensor.strings) width = std::max(width, element.size());
      descr = fmt::format("|S{}", width);
      data.reserve(width * tensor.strings.size());
      for (const std::string& element : tensor.strings) {
        data += element;
        data.append(width - element.size(), '\0');
      }
      break;
    }
  }
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                   descr, shapeLiteral(tensor.shape));
  // Version 1.0 has a 16-bit header length; 2.0 a 32-bit one.
  const bool version1 = (10 + header.size() + 1 + 63) / 64 * 64 - 10 <= 65535;
  const std::size_t preamble = version1 ? 10 : 12;
  const std::size_t total = (preamble + header.size() + 1 + 63) / 64 * 64;
  header.append(total - preamble - header.size() - 1, ' ');
  header.push_back('\n');
  std::string out(kMagic);
  out.push_back(static_cast<char>(version1 ? 1 : 2));
  out.push_back('\0');
  const auto length = static_cast<std::uint32_t>(header.size());
  out.push_back(static_cast<char>(length & 0xff));
  out.push_back(static_cast<char>((length >> 8) & 0xff));
  if (!version1) {
    out.push_back(static_cast<char>((length >> 16) & 0xff));
    out.push_back(static_cast<char>((length >> 24) & 0xff));
  }
  out += header;
  if (tensor.type == DataType::kBf16 || tensor.type == DataType::kBytes) {
    out += data;
  } else {
    out += tensor.data;
  }
  return out;
}

Status writeNpyFile(const std::filesystem::path& file, const Tensor& tensor) {
  std::ofstream output(file, std::ios::binary | std::ios::trunc);
  const std::string bytes = writeNpy(tensor);
  output.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  output.close();
  if (!output) {
    return makeError(ErrorCode::kInternal, "cannot write " + file.string());
  }
  return {};
}

}  // namespace deviceops::inference
