#include "inference/ort_model_proto.h"

#include <fmt/format.h>

#include <fstream>
#include <system_error>

namespace deviceops::inference {
namespace {

// Strings and opset entries are tiny in real models; anything larger is not a model we serve.
constexpr std::uint64_t kMaxSmallField = 1u << 20;

enum WireType : std::uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

class MemorySource {
 public:
  explicit MemorySource(std::string_view bytes) : bytes_(bytes) {}
  std::uint64_t position() const { return position_; }
  std::uint64_t remaining() const { return bytes_.size() - position_; }
  bool read(char* out, std::uint64_t n) {
    if (n > remaining()) return false;
    bytes_.copy(out, n, position_);
    position_ += n;
    return true;
  }
  bool skip(std::uint64_t n) {
    if (n > remaining()) return false;
    position_ += n;
    return true;
  }

 private:
  std::string_view bytes_;
  std::uint64_t position_ = 0;
};

class FileSource {
 public:
  FileSource(std::ifstream& in, std::uint64_t size) : in_(in), size_(size) {}
  std::uint64_t position() const { return position_; }
  std::uint64_t remaining() const { return size_ - position_; }
  bool read(char* out, std::uint64_t n) {
    if (n > remaining()) return false;
    if (!in_.read(out, static_cast<std::streamsize>(n))) return false;
    position_ += n;
    return true;
  }
  bool skip(std::uint64_t n) {
    if (n > remaining()) return false;
    if (!in_.seekg(static_cast<std::streamoff>(n), std::ios::cur)) return false;
    position_ += n;
    return true;
  }

 private:
  std::ifstream& in_;
  std::uint64_t size_;
  std::uint64_t position_ = 0;
};

Error malformed(std::uint64_t offset, std::string_view what) {
  return makeError(ErrorCode::kInvalidArgument,
                   fmt::format("not a valid ONNX model: {} at byte {}", what, offset),
                   {{"offset", offset}});
}

template <class Source>
Result<std::uint64_t> readVarint(Source& source) {
  const std::uint64_t start = source.position();
  std::uint64_t value = 0;
  for (int i = 0; i < 10; ++i) {
    char byte = 0;
    if (!source.read(&byte, 1)) return malformed(start, "truncated varint");
    const auto bits = static_cast<std::uint8_t>(byte);
    if (i == 9 && bits > 1) return malformed(start, "varint overflows 64 bits");
    value |= static_cast<std::uint64_t>(bits & 0x7f) << (7 * i);
    if ((bits & 0x80) == 0) return value;
  }
  return malformed(start, "varint longer than 10 bytes");
}

// One field of a message: its number, wire type and, for varints, the value; for
// length-delimited fields the length (the payload is left for the caller to read or skip).
struct FieldHeader {
  std::uint64_t offset = 0;
  std::uint64_t number = 0;
  std::uint32_t wireType = 0;
  std::uint64_t value = 0;
};

template <class Source>
Result<FieldHeader> readField(Source& source) {
  FieldHeader field;
  field.offset = source.position();
  Result<std::uint64_t> key = readVarint(source);
  if (!key.ok()) return key.error();
  field.number = key.value() >> 3;
  field.wireType = static_cast<std::uint32_t>(key.value() & 7);
  if (field.number == 0 || field.number > 536870911) {
    return malformed(field.offset, "invalid field number");
  }
  switch (field.wireType) {
    case kVarint:
    case kLengthDelimited: {
      Result<std::uint64_t> value = readVarint(source);
      if (!value.ok()) return value.error();
      field.value = value.value();
      if (field.wireType == kLengthDelimited && field.value > source.remaining()) {
        return malformed(field.offset,
                         fmt::format("field {} of {} bytes runs past the end of the data "
                                     "(truncated file?)",
                                     field.number, field.value));
      }
      return field;
    }
    case kFixed64:
    case kFixed32:
      if (!source.skip(field.wireType == kFixed64 ? 8 : 4)) {
        return malformed(field.offset, "truncated fixed-size field");
      }
      return field;
    default:
      return malformed(field.offset, fmt::format("invalid wire type {}", field.wireType));
  }
}

template <class Source>
Result<std::string> readBytes(Source& source, const FieldHeader& field) {
  if (field.value > kMaxSmallField) return malformed(field.offset, "oversized string field");
  std::string bytes(field.value, '\0');
  if (!source.read(bytes.data(), field.value)) return malformed(field.offset, "truncated field");
  return bytes;
}

// OperatorSetIdProto { string domain = 1; int64 version = 2; } -> opset of the default domain.
Result<std::int64_t> defaultDomainVersion(std::string_view bytes, std::uint64_t baseOffset) {
  MemorySource source(bytes);
  std::string domain;
  std::int64_t version = 0;
  while (source.remaining() > 0) {
    Result<FieldHeader> field = readField(source);
    if (!field.ok()) return malformed(baseOffset + source.position(), "bad opset_import entry");
    if (field->wireType == kLengthDelimited) {
      Result<std::string> text = readBytes(source, *field);
      if (!text.ok()) return text.error();
      if (field->number == 1) domain = std::move(text.value());
    } else if (field->wireType == kVarint && field->number == 2) {
      version = static_cast<std::int64_t>(field->value);
    }
  }
  return domain.empty() || domain == "ai.onnx" ? version : std::int64_t{-1};
}

template <class Source>
Result<ModelProtoSummary> parseTopLevel(Source& source) {
  ModelProtoSummary summary;
  bool sawGraph = false;
  while (source.remaining() > 0) {
    Result<FieldHeader> field = readField(source);
    if (!field.ok()) return field.error();
    if (field->wireType == kVarint) {
      if (field->number == 1) summary.irVersion = static_cast<std::int64_t>(field->value);
      continue;
    }
    if (field->wireType != kLengthDelimited) continue;
    switch (field->number) {
      case 2:
      case 3:
      case 8: {
        Result<std::string> bytes = readBytes(source, *field);
        if (!bytes.ok()) return bytes.error();
        if (field->number == 2) summary.producerName = std::move(bytes.value());
        if (field->number == 3) summary.producerVersion = std::move(bytes.value());
        if (field->number == 8) {
          Result<std::int64_t> version = defaultDomainVersion(bytes.value(), field->offset);
          if (!version.ok()) return version.error();
          if (version.value() >= 0) summary.opset = version.value();
        }
        break;
      }
      case 7:
        sawGraph = true;
        [[fallthrough]];
      default:
        if (!source.skip(field->value)) return malformed(field->offset, "truncated field");
    }
  }
  if (summary.irVersion <= 0) return malformed(0, "no ir_version");
  if (!sawGraph) return malformed(0, "no graph");
  return summary;
}

}  // namespace

Result<ModelProtoSummary> parseModelProto(std::string_view bytes) {
  MemorySource source(bytes);
  return parseTopLevel(source);
}

Result<ModelProtoSummary> readModelProto(const std::filesystem::path& file) {
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(file, error);
  if (error) {
    return makeError(ErrorCode::kNotFound,
                     fmt::format("cannot read model file {}: {}", file.string(), error.message()));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return makeError(ErrorCode::kNotFound, fmt::format("cannot open model file {}", file.string()));
  }
  FileSource source(in, size);
  return parseTopLevel(source);
}

}  // namespace deviceops::inference
