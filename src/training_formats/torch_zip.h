// A small reader for the zip archives that torch.save writes (.pt, .ckpt, diffusers .bin):
// stored (uncompressed) entries only, ZIP64 understood, nothing decompressed and nothing copied.
//
// The archive is parsed from the end: the end of central directory record (EOCD), the ZIP64
// EOCD locator and record when present (torch always writes them; files over 4 GB need them),
// the central directory entries with their ZIP64 extra fields, and each entry's local header
// (torch pads its extra field to align the data to 64 bytes; its sizes are in a data
// descriptor, so the central directory's sizes are the ones used).
//
// Every offset and size is checked against the archive before it is used: the central
// directory lies inside the file before the EOCD records, every entry's local header and data
// lie before the central directory, entries do not overlap, names are unique, stored entries
// have equal compressed and uncompressed sizes. Multi-disk archives, encrypted entries and
// compressed entries (any method but 0) are refused. Every violation is kInvalidArgument with a
// message that names the entry and the problem. CRC-32 values are not verified.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace deviceops::training {

// A read-only file mapped into memory (mmap, MAP_PRIVATE): multi-GB checkpoints are paged in on
// demand rather than read. Movable, not copyable; unmaps on destruction. Thread-safe for
// concurrent reads of bytes().
class MappedFile {
 public:
  // kNotFound for a missing file, kInvalidArgument for something that is not a regular file,
  // kInternal for other I/O errors.
  static Result<MappedFile> open(const std::filesystem::path& file);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  // The whole file; valid while this object lives.
  std::string_view bytes() const { return {static_cast<const char*>(data_), size_}; }

 private:
  void* data_ = nullptr;
  std::size_t size_ = 0;
};

struct StoredZipEntry {
  std::string name;
  std::uint64_t localHeaderOffset = 0;
  std::uint64_t dataOffset = 0;  // of the first data byte, from the start of the archive
  std::uint64_t size = 0;        // bytes of data (stored: compressed == uncompressed)
};

// The directory of a stored-only zip. Does not own the archive bytes: data() returns views into
// the string_view given to parseStoredZip, which must outlive their use.
class StoredZip {
 public:
  const std::vector<StoredZipEntry>& entries() const { return entries_; }  // central dir order
  const StoredZipEntry* find(std::string_view name) const;                 // null if absent
  // The entry's bytes. Precondition: `entry` comes from this object.
  std::string_view data(const StoredZipEntry& entry) const {
    return archive_.substr(entry.dataOffset, entry.size);
  }

 private:
  friend Result<StoredZip> parseStoredZip(std::string_view archive);
  std::string_view archive_;
  std::vector<StoredZipEntry> entries_;
  std::map<std::string, std::size_t, std::less<>> byName_;
};

// Parses and validates the directory of `archive` (see the file comment). The result refers to
// `archive`'s bytes.
Result<StoredZip> parseStoredZip(std::string_view archive);

}  // namespace deviceops::training
