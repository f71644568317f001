#include "training_formats/torch_zip.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

namespace deviceops::training {
namespace {

constexpr std::uint32_t kLocalHeaderSignature = 0x04034b50;
constexpr std::uint32_t kCentralHeaderSignature = 0x02014b50;
constexpr std::uint32_t kEocdSignature = 0x06054b50;
constexpr std::uint32_t kZip64EocdSignature = 0x06064b50;
constexpr std::uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr std::uint64_t kEocdSize = 22;
constexpr std::uint64_t kZip64LocatorSize = 20;
constexpr std::uint64_t kZip64EocdSize = 56;  // without its extensible data
constexpr std::uint64_t kCentralHeaderSize = 46;
constexpr std::uint64_t kLocalHeaderSize = 30;
constexpr std::uint16_t kZip64ExtraId = 0x0001;

Error invalid(const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument, "not a valid torch zip archive: " + message);
}

Error entryError(const std::string& name, const std::string& message) {
  return makeError(ErrorCode::kInvalidArgument,
                   fmt::format("not a valid torch zip archive: entry \"{}\": {}", name, message),
                   {{"entry", name}});
}

// Little-endian integer of N bytes at `offset`. Precondition: offset + N <= bytes.size().
template <class T>
T load(std::string_view bytes, std::uint64_t offset) {
  T value = 0;
  for (std::size_t i = sizeof(T); i-- > 0;) {
    value = static_cast<T>((value << 8) | static_cast<unsigned char>(bytes[offset + i]));
  }
  return value;
}

// True when [offset, offset + length) lies inside [0, limit), without overflow.
bool fits(std::uint64_t offset, std::uint64_t length, std::uint64_t limit) {
  return offset <= limit && length <= limit - offset;
}

struct Directory {
  std::uint64_t entryCount = 0;
  std::uint64_t offset = 0;
  std::uint64_t size = 0;
  std::uint64_t end = 0;  // where the EOCD records begin: the directory must end at or before it
};

// The last EOCD whose comment reaches exactly the end of the archive.
std::optional<std::uint64_t> findEocd(std::string_view archive) {
  if (archive.size() < kEocdSize) return std::nullopt;
  const std::uint64_t last = archive.size() - kEocdSize;
  const std::uint64_t first = last > 0xFFFF ? last - 0xFFFF : 0;
  for (std::uint64_t pos = last + 1; pos-- > first;) {
    if (load<std::uint32_t>(archive, pos) == kEocdSignature &&
        load<std::uint16_t>(archive, pos + 20) == last - pos) {
      return pos;
    }
  }
  return std::nullopt;
}

Result<Directory> readDirectory(std::string_view archive) {
  const std::optional<std::uint64_t> eocd = findEocd(archive);
  if (!eocd) {
    return invalid(archive.size() >= 4 && archive.substr(0, 4) == "PK\x03\x04"
                       ? "no end of central directory record (the file is truncated)"
                       : "no end of central directory record (not a zip file)");
  }
  const auto disk = load<std::uint16_t>(archive, *eocd + 4);
  const auto directoryDisk = load<std::uint16_t>(archive, *eocd + 6);
  const auto diskEntries = load<std::uint16_t>(archive, *eocd + 8);
  Directory directory;
  directory.entryCount = load<std::uint16_t>(archive, *eocd + 10);
  directory.size = load<std::uint32_t>(archive, *eocd + 12);
  directory.offset = load<std::uint32_t>(archive, *eocd + 16);
  directory.end = *eocd;
  const bool hasLocator =
      *eocd >= kZip64LocatorSize &&
      load<std::uint32_t>(archive, *eocd - kZip64LocatorSize) == kZip64LocatorSignature;
  if (hasLocator) {
    const std::uint64_t locator = *eocd - kZip64LocatorSize;
    const auto zip64Disk = load<std::uint32_t>(archive, locator + 4);
    const auto record = load<std::uint64_t>(archive, locator + 8);
    const auto diskCount = load<std::uint32_t>(archive, locator + 16);
    if (zip64Disk != 0 || diskCount > 1) return invalid("multi-disk archives are not supported");
    if (!fits(record, kZip64EocdSize, locator)) {
      return invalid(
          fmt::format("the ZIP64 end of central directory offset {} is outside the "
                      "file before its locator ({} bytes)",
                      record, locator));
    }
    if (load<std::uint32_t>(archive, record) != kZip64EocdSignature) {
      return invalid("no ZIP64 end of central directory record where the locator points");
    }
    if (load<std::uint32_t>(archive, record + 16) != 0 ||
        load<std::uint32_t>(archive, record + 20) != 0 ||
        load<std::uint64_t>(archive, record + 24) != load<std::uint64_t>(archive, record + 32)) {
      return invalid("multi-disk archives are not supported");
    }
    directory.entryCount = load<std::uint64_t>(archive, record + 32);
    directory.size = load<std::uint64_t>(archive, record + 40);
    directory.offset = load<std::uint64_t>(archive, record + 48);
    directory.end = record;
  } else if (disk != 0 || directoryDisk != 0 || diskEntries != directory.entryCount) {
    return invalid("multi-disk archives are not supported");
  }
  if (!fits(directory.offset, directory.size, directory.end)) {
    return invalid(
        fmt::format("the central directory (offset {}, {} bytes) is not inside the "
                    "file before its end records ({} bytes)",
                    directory.offset, directory.size, directory.end));
  }
  // Each entry takes at least 46 bytes: a count above that is a lie, refused before reserving.
  if (directory.entryCount > directory.size / kCentralHeaderSize) {
    return invalid(fmt::format("{} entries cannot fit a central directory of {} bytes",
                               directory.entryCount, directory.size));
  }
  return directory;
}

// Replaces the 0xFFFF... placeholders of a central directory entry by its ZIP64 extra field.
Status applyZip64Extra(std::string_view extra, const std::string& name, std::uint64_t& size,
                       std::uint64_t& compressedSize, std::uint64_t& localOffset) {
  const bool needSize = size == 0xFFFFFFFFu;
  const bool needCompressed = compressedSize == 0xFFFFFFFFu;
  const bool needOffset = localOffset == 0xFFFFFFFFu;
  if (!needSize && !needCompressed && !needOffset) return Status::success();
  std::uint64_t pos = 0;
  while (pos + 4 <= extra.size()) {
    const auto id = load<std::uint16_t>(extra, pos);
    const auto length = load<std::uint16_t>(extra, pos + 2);
    if (!fits(pos + 4, length, extra.size())) break;
    if (id == kZip64ExtraId) {
      const std::string_view field = extra.substr(pos + 4, length);
      std::uint64_t at = 0;
      for (std::uint64_t* value :
           {needSize ? &size : nullptr, needCompressed ? &compressedSize : nullptr,
            needOffset ? &localOffset : nullptr}) {
        if (value == nullptr) continue;
        if (at + 8 > field.size()) return entryError(name, "the ZIP64 extra field is too short");
        *value = load<std::uint64_t>(field, at);
        at += 8;
      }
      return Status::success();
    }
    pos += 4 + length;
  }
  return entryError(name, "a size or offset says ZIP64 but there is no ZIP64 extra field");
}

}  // namespace

Result<MappedFile> MappedFile::open(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    if (error == ENOENT) return makeError(ErrorCode::kNotFound, "no such file: " + file.string());
    return makeError(ErrorCode::kInternal,
                     fmt::format("cannot open {}: {}", file.string(), std::strerror(error)));
  }
  struct stat info {};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return makeError(ErrorCode::kInvalidArgument, "not a regular file: " + file.string());
  }
  MappedFile mapped;
  mapped.size_ = static_cast<std::size_t>(info.st_size);
  if (mapped.size_ > 0) {
    void* data = ::mmap(nullptr, mapped.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int error = errno;
    if (data == MAP_FAILED) {
      ::close(fd);
      return makeError(ErrorCode::kInternal,
                       fmt::format("cannot map {}: {}", file.string(), std::strerror(error)));
    }
    mapped.data_ = data;
  }
  ::close(fd);
  return mapped;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(data_, size_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

const StoredZipEntry* StoredZip::find(std::string_view name) const {
  const auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : &entries_[it->second];
}

Result<StoredZip> parseStoredZip(std::string_view archive) {
  ASSIGN_OR_RETURN(const Directory directory, readDirectory(archive));
  StoredZip zip;
  zip.archive_ = archive;
  zip.entries_.reserve(directory.entryCount);
  const std::string_view central = archive.substr(directory.offset, directory.size);
  std::uint64_t pos = 0;
  for (std::uint64_t index = 0; index < directory.entryCount; ++index) {
    if (!fits(pos, kCentralHeaderSize, central.size()) ||
        load<std::uint32_t>(central, pos) != kCentralHeaderSignature) {
      return invalid(fmt::format("central directory entry {} is missing or cut short", index));
    }
    const auto flags = load<std::uint16_t>(central, pos + 8);
    const auto method = load<std::uint16_t>(central, pos + 10);
    std::uint64_t compressedSize = load<std::uint32_t>(central, pos + 20);
    std::uint64_t size = load<std::uint32_t>(central, pos + 24);
    const auto nameLength = load<std::uint16_t>(central, pos + 28);
    const auto extraLength = load<std::uint16_t>(central, pos + 30);
    const auto commentLength = load<std::uint16_t>(central, pos + 32);
    const auto diskStart = load<std::uint16_t>(central, pos + 34);
    std::uint64_t localOffset = load<std::uint32_t>(central, pos + 42);
    const std::uint64_t variable = std::uint64_t{nameLength} + extraLength + commentLength;
    if (!fits(pos + kCentralHeaderSize, variable, central.size())) {
      return invalid(fmt::format("central directory entry {} runs past the directory", index));
    }
    StoredZipEntry entry;
    entry.name.assign(central.substr(pos + kCentralHeaderSize, nameLength));
    const std::string_view extra =
        central.substr(pos + kCentralHeaderSize + nameLength, extraLength);
    pos += kCentralHeaderSize + variable;

    if ((flags & 0x1u) != 0) return entryError(entry.name, "encrypted entries are not supported");
    if (method != 0) {
      return entryError(entry.name,
                        fmt::format("compressed with method {}; only stored (uncompressed) "
                                    "entries are read, as torch.save writes them",
                                    method));
    }
    if (diskStart != 0 && diskStart != 0xFFFF) {
      return entryError(entry.name, "multi-disk archives are not supported");
    }
    RETURN_IF_ERROR(applyZip64Extra(extra, entry.name, size, compressedSize, localOffset));
    if (compressedSize != size) {
      return entryError(entry.name, fmt::format("stored entry with compressed size {} but size {}",
                                                compressedSize, size));
    }
    // The local header, its name and extra field, and the data lie before the directory.
    if (!fits(localOffset, kLocalHeaderSize, directory.offset) ||
        load<std::uint32_t>(archive, localOffset) != kLocalHeaderSignature) {
      return entryError(entry.name, fmt::format("no local header at offset {}", localOffset));
    }
    const auto localNameLength = load<std::uint16_t>(archive, localOffset + 26);
    const auto localExtraLength = load<std::uint16_t>(archive, localOffset + 28);
    const std::uint64_t dataOffset =
        localOffset + kLocalHeaderSize + localNameLength + localExtraLength;
    if (!fits(localOffset + kLocalHeaderSize, std::uint64_t{localNameLength} + localExtraLength,
              directory.offset) ||
        archive.substr(localOffset + kLocalHeaderSize, localNameLength) != entry.name) {
      return entryError(entry.name, "the local header names a different entry");
    }
    if (load<std::uint16_t>(archive, localOffset + 8) != 0) {
      return entryError(entry.name, "the local header says compressed");
    }
    if (!fits(dataOffset, size, directory.offset)) {
      return entryError(entry.name,
                        fmt::format("its {} bytes at offset {} run past the data area ({} bytes "
                                    "before the central directory)",
                                    size, dataOffset, directory.offset));
    }
    entry.localHeaderOffset = localOffset;
    entry.dataOffset = dataOffset;
    entry.size = size;
    if (!zip.byName_.emplace(entry.name, zip.entries_.size()).second) {
      return entryError(entry.name, "the name appears twice");
    }
    zip.entries_.push_back(std::move(entry));
  }
  // No two entries share bytes: sorted by position, each starts after the previous one's data.
  std::vector<const StoredZipEntry*> sorted;
  sorted.reserve(zip.entries_.size());
  for (const StoredZipEntry& entry : zip.entries_) sorted.push_back(&entry);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) {
    return a->localHeaderOffset < b->localHeaderOffset;
  });
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->localHeaderOffset < sorted[i - 1]->dataOffset + sorted[i - 1]->size) {
      return entryError(sorted[i]->name, fmt::format("overlaps entry \"{}\"", sorted[i - 1]->name));
    }
  }
  return zip;
}

}  // namespace deviceops::training
