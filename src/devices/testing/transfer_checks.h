// Checks every DeviceAllocator's transfers must pass (write/read/copy), shared by the allocator
// tests of each backend. Header-only; uses GoogleTest assertions.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "devices/allocator.h"

namespace deviceops::devices::testing {

// `count` bytes that differ from their neighbours and from any fill: (seed + 7 * i) mod 251.
inline std::vector<unsigned char> numberedBytes(std::size_t count, unsigned seed) {
  std::vector<unsigned char> bytes(count);
  for (std::size_t i = 0; i < count; ++i) {
    bytes[i] = static_cast<unsigned char>((seed + 7 * i) % 251);
  }
  return bytes;
}

// Round trips at odd offsets and sizes, device-to-device copies (between two blocks and within
// one, overlapping both ways, as memmove), bounds (past the end, offset + bytes wrapping around
// 2^64) and empty transfers. Blocks of `blockBytes` (>= 64 KiB) are allocated and released.
inline void expectTransfersWork(DeviceAllocator& allocator, std::uint64_t blockBytes) {
  ASSERT_GE(blockBytes, 64u << 10);
  auto first = allocator.allocate(blockBytes, {});
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = allocator.allocate(blockBytes, {});
  ASSERT_TRUE(second.ok()) << second.error().message;
  const Block& a = *first;
  const Block& b = *second;
  constexpr std::size_t kRegion = 40000;  // the bytes of each block these checks use
  auto readBack = [&](const Block& block, std::uint64_t offset, std::size_t bytes) {
    std::vector<unsigned char> out(bytes, 0xEE);
    Status read = allocator.read(block, offset, out.data(), bytes);
    EXPECT_TRUE(read.ok()) << read.error().message;
    return out;
  };

  // Known contents, then an odd-sized write at an odd offset: only those bytes change.
  std::vector<unsigned char> expectedA = numberedBytes(kRegion, 1);
  std::vector<unsigned char> expectedB = numberedBytes(kRegion, 2);
  ASSERT_TRUE(allocator.write(a, 0, expectedA.data(), kRegion).ok());
  ASSERT_TRUE(allocator.write(b, 0, expectedB.data(), kRegion).ok());
  const std::vector<unsigned char> patch = numberedBytes(1001, 99);
  Status written = allocator.write(a, 3, patch.data(), patch.size());
  ASSERT_TRUE(written.ok()) << written.error().message;
  std::copy(patch.begin(), patch.end(), expectedA.begin() + 3);
  EXPECT_EQ(readBack(a, 0, kRegion), expectedA);
  // A read at an odd offset sees the same bytes.
  EXPECT_EQ(readBack(a, 1000, 13),
            std::vector<unsigned char>(expectedA.begin() + 1000, expectedA.begin() + 1013));

  // Block to block.
  Status copied = allocator.copy(b, 13, a, 5, 7777);
  ASSERT_TRUE(copied.ok()) << copied.error().message;
  std::copy(expectedA.begin() + 5, expectedA.begin() + 5 + 7777, expectedB.begin() + 13);
  EXPECT_EQ(readBack(b, 0, kRegion), expectedB);
  EXPECT_EQ(readBack(a, 0, kRegion), expectedA);  // the source is unchanged

  // Within one block, overlapping forwards and backwards: memmove's result.
  ASSERT_TRUE(allocator.copy(a, 110, a, 100, 20000).ok());
  std::vector<unsigned char> moved(expectedA.begin() + 100, expectedA.begin() + 20100);
  std::copy(moved.begin(), moved.end(), expectedA.begin() + 110);
  EXPECT_EQ(readBack(a, 0, kRegion), expectedA);
  ASSERT_TRUE(allocator.copy(a, 7, a, 4007, 30000).ok());
  moved.assign(expectedA.begin() + 4007, expectedA.begin() + 34007);
  std::copy(moved.begin(), moved.end(), expectedA.begin() + 7);
  EXPECT_EQ(readBack(a, 0, kRegion), expectedA);

  // Empty transfers do nothing, even at the very end of the block.
  EXPECT_TRUE(allocator.write(a, 0, nullptr, 0).ok());
  EXPECT_TRUE(allocator.read(a, blockBytes, nullptr, 0).ok());
  EXPECT_TRUE(allocator.copy(b, blockBytes, a, 0, 0).ok());
  EXPECT_EQ(readBack(a, 0, kRegion), expectedA);

  // Out of range: one byte past the end, an offset past the end, and wrap-around.
  std::vector<unsigned char> buffer(64, 0);
  struct Range {
    const char* name;
    std::uint64_t offset;
    std::uint64_t bytes;
  };
  const Range bad[] = {
      {"one byte past the end", blockBytes - 10, 11},
      {"offset past the end", blockBytes + 1, 0},
      {"offset + bytes wraps around", ~std::uint64_t{0} - 2, 8},
      {"bytes wraps around", 8, ~std::uint64_t{0} - 2},
  };
  for (const Range& range : bad) {
    SCOPED_TRACE(range.name);
    Status w = allocator.write(a, range.offset, buffer.data(), range.bytes);
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.error().code, ErrorCode::kInvalidArgument);
    Status r = allocator.read(a, range.offset, buffer.data(), range.bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    Status toBad = allocator.copy(a, range.offset, b, 0, range.bytes);
    ASSERT_FALSE(toBad.ok());
    EXPECT_EQ(toBad.error().code, ErrorCode::kInvalidArgument);
    Status fromBad = allocator.copy(b, 0, a, range.offset, range.bytes);
    ASSERT_FALSE(fromBad.ok());
    EXPECT_EQ(fromBad.error().code, ErrorCode::kInvalidArgument);
  }
  EXPECT_EQ(readBack(a, 0, kRegion), expectedA);
  EXPECT_EQ(readBack(b, 0, kRegion), expectedB);
  allocator.release(a);
  allocator.release(b);
}

}  // namespace deviceops::devices::testing
