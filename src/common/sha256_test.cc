#include "common/sha256.h"

#include <gtest/gtest.h>

#include <fstream>

namespace deviceops {
namespace {

// FIPS 180-4 examples (NIST CSRC "SHA256.pdf", "SHA256_2.pdf") and the long-message vector.
TEST(Sha256Test, MatchesFipsVectors) {
  struct Case {
    std::string input;
    const char* digest;
  };
  const Case cases[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
      {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
       "lmnopqrsmnopqrstnopqrstu",
       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.input.substr(0, 40));
    EXPECT_EQ(sha256Hex(c.input), c.digest);
  }
}

TEST(Sha256Test, IncrementalUpdatesAgreeAcrossBlockBoundaries) {
  std::string input;
  for (int i = 0; i < 300; ++i) input.push_back(static_cast<char>(i * 7));
  const std::string expected = sha256Hex(input);
  for (std::size_t split : {1u, 55u, 56u, 63u, 64u, 65u, 128u, 299u}) {
    Sha256 hash;
    hash.update(std::string_view(input).substr(0, split));
    hash.update(std::string_view(input).substr(split));
    EXPECT_EQ(hash.finishHex(), expected) << "split at " << split;
  }
}

TEST(Sha256Test, HashesFilesAndReportsMissingOnes) {
  const auto path = std::filesystem::temp_directory_path() / "deviceops_sha256_test.bin";
  {
    std::ofstream out(path, std::ios::binary);
    out << "abc";
  }
  auto digest = sha256File(path);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(*digest, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::filesystem::remove(path);
  auto missing = sha256File(path);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace deviceops
