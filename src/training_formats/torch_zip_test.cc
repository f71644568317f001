#include "training_formats/torch_zip.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace deviceops::training {
namespace {

std::string le(std::uint64_t value, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
  return out;
}

void patch(std::string& bytes, std::size_t offset, std::uint64_t value, int width) {
  bytes.replace(offset, width, le(value, width));
}

struct FakeEntry {
  std::string name;
  std::string data;
  std::uint16_t method = 0;
};

// A hand-made archive and where its parts are, for tests that corrupt them.
struct Built {
  std::string bytes;
  std::vector<std::size_t> localOffsets;
  std::vector<std::size_t> centralOffsets;
  std::size_t centralOffset = 0;
  std::size_t zip64RecordOffset = 0;  // when zip64
  std::size_t eocdOffset = 0;
};

// Stored entries like torch writes them (a padding extra field in the local header); with
// zip64, every size and offset goes through the ZIP64 extra field and end records.
Built makeZip(const std::vector<FakeEntry>& entries, bool zip64) {
  Built built;
  std::string& out = built.bytes;
  for (const FakeEntry& entry : entries) {
    built.localOffsets.push_back(out.size());
    const std::string padding = "FB" + le(3, 2) + "ZZZ";
    out += le(0x04034b50, 4) + le(20, 2) + le(0x0808, 2) + le(entry.method, 2) + le(0, 4) +
           le(0, 4) + le(0, 4) + le(0, 4) + le(entry.name.size(), 2) + le(padding.size(), 2) +
           entry.name + padding + entry.data;
  }
  built.centralOffset = out.size();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const FakeEntry& entry = entries[i];
    built.centralOffsets.push_back(out.size());
    const std::uint64_t size = zip64 ? 0xFFFFFFFFu : entry.data.size();
    const std::uint64_t offset = zip64 ? 0xFFFFFFFFu : built.localOffsets[i];
    const std::string extra = zip64 ? le(1, 2) + le(24, 2) + le(entry.data.size(), 8) +
                                          le(entry.data.size(), 8) + le(built.localOffsets[i], 8)
                                    : "";
    out += le(0x02014b50, 4) + le(45, 2) + le(45, 2) + le(0x0808, 2) + le(entry.method, 2) +
           le(0, 4) + le(0, 4) + le(size, 4) + le(size, 4) + le(entry.name.size(), 2) +
           le(extra.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(offset, 4) +
           entry.name + extra;
  }
  const std::size_t centralSize = out.size() - built.centralOffset;
  if (zip64) {
    built.zip64RecordOffset = out.size();
    out += le(0x06064b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4) +
           le(entries.size(), 8) + le(entries.size(), 8) + le(centralSize, 8) +
           le(built.centralOffset, 8);
    out += le(0x07064b50, 4) + le(0, 4) + le(built.zip64RecordOffset, 8) + le(1, 4);
  }
  built.eocdOffset = out.size();
  out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(zip64 ? 0xFFFF : entries.size(), 2) +
         le(zip64 ? 0xFFFF : entries.size(), 2) + le(zip64 ? 0xFFFFFFFFu : centralSize, 4) +
         le(zip64 ? 0xFFFFFFFFu : built.centralOffset, 4) + le(0, 2);
  return built;
}

const std::vector<FakeEntry> kEntries{{"archive/data.pkl", "\x80\x02}.", 0},
                                      {"archive/data/0", std::string(16, '\x7f'), 0},
                                      {"archive/version", "3\n", 0}};

TEST(TorchZipTest, ReadsStoredEntriesWithAndWithoutZip64) {
  for (const bool zip64 : {false, true}) {
    SCOPED_TRACE(zip64 ? "zip64" : "plain");
    const Built built = makeZip(kEntries, zip64);
    Result<StoredZip> zip = parseStoredZip(built.bytes);
    ASSERT_TRUE(zip.ok()) << zip.error().message;
    ASSERT_EQ(zip->entries().size(), 3u);
    EXPECT_EQ(zip->entries()[1].name, "archive/data/0");
    EXPECT_EQ(zip->entries()[1].localHeaderOffset, built.localOffsets[1]);
    const StoredZipEntry* pickle = zip->find("archive/data.pkl");
    ASSERT_NE(pickle, nullptr);
    EXPECT_EQ(zip->data(*pickle), "\x80\x02}.");
    EXPECT_EQ(zip->data(*zip->find("archive/data/0")), std::string(16, '\x7f'));
    EXPECT_EQ(zip->data(*zip->find("archive/version")), "3\n");
    EXPECT_EQ(zip->find("archive/data/1"), nullptr);
  }
}

TEST(TorchZipTest, EmptyArchiveHasNoEntries) {
  Result<StoredZip> zip = parseStoredZip(makeZip({}, false).bytes);
  ASSERT_TRUE(zip.ok()) << zip.error().message;
  EXPECT_TRUE(zip->entries().empty());
}

void expectInvalid(const std::string& bytes, const std::string& fragment) {
  Result<StoredZip> zip = parseStoredZip(bytes);
  ASSERT_FALSE(zip.ok()) << "expected an error containing: " << fragment;
  EXPECT_EQ(zip.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(zip.error().message.find(fragment), std::string::npos) << zip.error().message;
}

TEST(TorchZipTest, RefusesCompressedEntries) {
  std::vector<FakeEntry> entries = kEntries;
  entries[1].method = 8;
  expectInvalid(makeZip(entries, false).bytes,
                "entry \"archive/data/0\": compressed with method 8; only stored");
}

TEST(TorchZipTest, RefusesTruncatedAndNonZipFiles) {
  const std::string bytes = makeZip(kEntries, true).bytes;
  expectInvalid(bytes.substr(0, bytes.size() - 5), "the file is truncated");
  expectInvalid(bytes.substr(0, bytes.size() / 2), "the file is truncated");
  expectInvalid("", "not a zip file");
  expectInvalid("hello, this is text and certainly not a zip archive", "not a zip file");
}

TEST(TorchZipTest, RefusesACentralDirectoryPastTheEnd) {
  Built built = makeZip(kEntries, false);
  patch(built.bytes, built.eocdOffset + 16, built.bytes.size() + 100, 4);
  expectInvalid(built.bytes, "the central directory (offset");
  built = makeZip(kEntries, false);
  patch(built.bytes, built.eocdOffset + 12, 0xFFFFFF, 4);  // its size
  expectInvalid(built.bytes, "is not inside the file");
}

TEST(TorchZipTest, RefusesZip64Lies) {
  // The ZIP64 record's directory size, its own offset, and an entry's 64-bit size.
  Built built = makeZip(kEntries, true);
  patch(built.bytes, built.zip64RecordOffset + 40, std::uint64_t{1} << 40, 8);
  expectInvalid(built.bytes, "the central directory (offset");
  built = makeZip(kEntries, true);
  patch(built.bytes, built.eocdOffset - 20 + 8, std::uint64_t{1} << 62, 8);
  expectInvalid(built.bytes, "ZIP64 end of central directory offset");
  built = makeZip(kEntries, true);
  const std::size_t extra = built.centralOffsets[1] + 46 + kEntries[1].name.size();
  patch(built.bytes, extra + 4, std::uint64_t{1} << 40, 8);
  patch(built.bytes, extra + 12, std::uint64_t{1} << 40, 8);
  expectInvalid(built.bytes, "entry \"archive/data/0\": its 1099511627776 bytes");
  built = makeZip(kEntries, true);
  patch(built.bytes, extra + 4, 17, 8);  // size 17, compressed size 16
  expectInvalid(built.bytes, "stored entry with compressed size 16 but size 17");
  built = makeZip(kEntries, true);
  patch(built.bytes, extra + 2, 8, 2);  // the extra field too short for three values
  expectInvalid(built.bytes, "the ZIP64 extra field is too short");
}

TEST(TorchZipTest, RefusesAnEntryCountTheDirectoryCannotHold) {
  Built built = makeZip(kEntries, true);
  patch(built.bytes, built.zip64RecordOffset + 24, std::uint64_t{1} << 50, 8);
  patch(built.bytes, built.zip64RecordOffset + 32, std::uint64_t{1} << 50, 8);
  expectInvalid(built.bytes, "entries cannot fit a central directory");
}

TEST(TorchZipTest, RefusesOverlappingEntries) {
  Built built = makeZip(kEntries, false);
  // data.pkl claims 40 bytes, running into data/0's local header.
  patch(built.bytes, built.centralOffsets[0] + 20, 40, 4);
  patch(built.bytes, built.centralOffsets[0] + 24, 40, 4);
  expectInvalid(built.bytes, "entry \"archive/data/0\": overlaps entry \"archive/data.pkl\"");
}

TEST(TorchZipTest, RefusesBadLocalHeadersAndDuplicates) {
  Built built = makeZip(kEntries, false);
  patch(built.bytes, built.centralOffsets[2] + 42, built.localOffsets[1], 4);
  expectInvalid(built.bytes, "entry \"archive/version\": the local header names a different");
  built = makeZip(kEntries, false);
  patch(built.bytes, built.centralOffsets[1] + 42, 3, 4);
  expectInvalid(built.bytes, "entry \"archive/data/0\": no local header at offset 3");
  built = makeZip(kEntries, false);
  patch(built.bytes, built.centralOffsets[1] + 42, built.centralOffset, 4);  // not before the CD
  expectInvalid(built.bytes, "no local header at offset");
  expectInvalid(makeZip({kEntries[0], kEntries[0]}, false).bytes, "the name appears twice");
}

TEST(TorchZipTest, MappedFileReadsAFileAndReportsMissingOnes) {
  Result<MappedFile> missing = MappedFile::open("/nonexistent/deviceops/file.pt");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  Result<MappedFile> directory = MappedFile::open("/");
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().code, ErrorCode::kInvalidArgument);
  Result<MappedFile> source =
      MappedFile::open(std::string(DEVICEOPS_SOURCE_DIR) + "/src/training_formats/torch_zip.h");
  ASSERT_TRUE(source.ok()) << source.error().message;
  MappedFile moved = std::move(source).value();
  EXPECT_TRUE(moved.bytes().starts_with("// A small reader for the zip archives"));
}

}  // namespace
}  // namespace deviceops::training
