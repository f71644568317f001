#include "clip/clip_tokenizer.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/testing/temp_dir.h"

namespace deviceops::clip {
namespace {

using deviceops::testing::TempDir;
using Ids = std::vector<std::int64_t>;

const std::string kReference = DEVICEOPS_SOURCE_DIR "/tests/models/clip_reference_tokenizer.py";

void writeFile(const std::filesystem::path& path, std::string_view contents) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << contents;
}

std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

int runCommand(const std::string& command) { return std::system(command.c_str()); }

struct PromptCase {
  std::string name;
  std::string prompt;     // what the C++ tokenizer gets
  std::string reference;  // what the Python reference gets (valid UTF-8), when it differs
};

std::string repeat(std::string_view text, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += text;
  return out;
}

const std::vector<PromptCase>& promptCases() {
  static const std::vector<PromptCase> cases = {
      {"ascii", "a photograph of an astronaut riding a horse", ""},
      {"punctuation",
       "Hello, world!!! (masterpiece:1.2) [best]{quality}; a-b_c/d... \"q\" ~`@#$%^&*", ""},
      {"digits", "1234 apples and 3.14 pies, 2024", ""},
      {"contractions", "it's they're we've I'll I'm you'd don't IT'S 'twas ''s it'\xC5\xBF", ""},
      {"mixed_case", "ThE QuIcK BrOwN FoX JUMPS", ""},
      {"whitespace", "  a   photo\tof\n\na  \r\n cat \xC2\xA0 and\xE2\x80\xA8 dog\xE3\x80\x80!  ",
       ""},
      {"accented_nfd",
       "cafe\xCC\x81 cre\xCC\x80me bru\xCC\x82le\xCC\x81"
       "e Ame\xCC\x81lie",
       ""},
      {"accented_nfc",
       "caf\xC3\xA9 cr\xC3\xA8me br\xC3\xBBl\xC3\xA9"
       "e Am\xC3\xA9lie",
       ""},
      {"cjk",
       "\xE6\x9D\xB1\xE4\xBA\xAC\xE3\x82\xBF\xE3\x83\xAF\xE3\x83\xBC\xE3\x81\xAE\xE5\x86"
       "\x99\xE7\x9C\x9F ab\xE4\xB8\xAD\xE6\x96\x87"
       "cd",
       ""},
      {"emoji",
       "a cat \xF0\x9F\x90\xB1 thumbs \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD family "
       "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7!",
       ""},
      {"special_tokens", "a <|startoftext|> b <|endoftext|>c !<|endoftext|> <|ENDOFTEXT|>x", ""},
      {"greek_and_turkish",
       "\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3 \xC4\xB0stanbul \xE1\xBE\xB3 a\xCD\x85"
       "b",
       ""},
      {"controls_and_fullwidth",
       "a\x07"
       "b\xE2\x80\x8B"
       "c \xEF\xBC\xA1\xEF\xBC\xA2\xEF\xBC\x91"
       "\xEF\xBC\x92 \xE2\x85\xA0 \xC2\xB2",
       ""},
      {"long", repeat("a photograph of an astronaut riding a horse, ", 12), ""},
      {"empty", "", ""},
      {"only_spaces", "   \t \n  ", ""},
      {"invalid_utf8",
       "a\xFF"
       "b\xC3(c \xED\xA0\x80"
       "d \xF0\x9F\x90",
       "a\xEF\xBF\xBD"
       "b\xEF\xBF\xBD(c "
       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
       "d \xEF\xBF\xBD"},
  };
  return cases;
}

// Both toy tokenizer folders and the reference ids of every prompt, made once by the Python
// reference (tests/models/clip_reference_tokenizer.py).
class ClipReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    directory_ = new TempDir("clip-test");
    nlohmann::json prompts = nlohmann::json::array();
    for (const PromptCase& entry : promptCases()) {
      prompts.push_back(entry.reference.empty() ? entry.prompt : entry.reference);
    }
    writeFile(directory_->path("prompts.json"), prompts.dump());
    for (const char* name : {"tokenizer", "tokenizer_2"}) {
      const std::string folder = directory_->path(name).string();
      const std::string pad = std::string(name) == "tokenizer" ? "'<|endoftext|>'" : "'!'";
      ASSERT_EQ(runCommand("/usr/bin/python3 " + kReference + " write " + folder + " " + pad), 0);
      const std::string ids = directory_->path(std::string(name) + ".ids.json").string();
      ASSERT_EQ(runCommand("/usr/bin/python3 " + kReference + " encode " + folder + " < " +
                           directory_->path("prompts.json").string() + " > " + ids),
                0);
    }
  }
  static void TearDownTestSuite() {
    delete directory_;
    directory_ = nullptr;
  }

  static std::filesystem::path folder(const std::string& name) { return directory_->path(name); }
  static std::vector<Ids> referenceIds(const std::string& name) {
    return nlohmann::json::parse(readFile(directory_->path(name + ".ids.json")))
        .get<std::vector<Ids>>();
  }
  static ClipTokenizer loaded(const std::string& name) {
    auto tokenizer = ClipTokenizer::load(folder(name));
    EXPECT_TRUE(tokenizer.ok()) << tokenizer.error().message;
    return std::move(tokenizer).value();
  }

  static TempDir* directory_;
};

TempDir* ClipReferenceTest::directory_ = nullptr;

TEST_F(ClipReferenceTest, ToyFoldersHaveClipVocabularyLayout) {
  const ClipTokenizer first = loaded("tokenizer");
  const ClipTokenizer second = loaded("tokenizer_2");
  ASSERT_GT(first.vocabularySize(), 512u + 250u);
  EXPECT_EQ(first.vocabularySize(), second.vocabularySize());
  const auto size = static_cast<std::int64_t>(first.vocabularySize());
  EXPECT_EQ(first.bosId(), size - 2);
  EXPECT_EQ(first.eosId(), size - 1);
  EXPECT_EQ(first.padId(), size - 1);  // "<|endoftext|>"
  EXPECT_EQ(second.padId(), 0);        // "!", the first byte symbol
  EXPECT_EQ(first.maxLength(), 77);
  EXPECT_EQ(second.maxLength(), 77);
}

TEST_F(ClipReferenceTest, EveryPromptMatchesTheReference) {
  for (const char* name : {"tokenizer", "tokenizer_2"}) {
    const ClipTokenizer tokenizer = loaded(name);
    const std::vector<Ids> expected = referenceIds(name);
    ASSERT_EQ(expected.size(), promptCases().size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      SCOPED_TRACE(std::string(name) + " / " + promptCases()[i].name);
      const Encoding encoding = tokenizer.encode(promptCases()[i].prompt);
      EXPECT_EQ(encoding.ids, expected[i]);
      EXPECT_EQ(encoding.ids.size(), 77u);
    }
  }
}

TEST_F(ClipReferenceTest, ExactFramingCountsAndNormalisation) {
  const ClipTokenizer tokenizer = loaded("tokenizer_2");
  const std::int64_t bos = tokenizer.bosId();
  const std::int64_t eos = tokenizer.eosId();

  Ids emptyIds(77, 0);
  emptyIds[0] = bos;
  emptyIds[1] = eos;
  EXPECT_EQ(tokenizer.encode("").ids, emptyIds);
  EXPECT_EQ(tokenizer.encode(" \t\n ").ids, emptyIds);
  EXPECT_EQ(tokenizer.encode("\x01\xFF").ids, emptyIds);
  EXPECT_EQ(tokenizer.encode("").tokenCount, 0);

  // A digit is always one piece of one symbol: 100 tokens, 75 kept.
  const Encoding digits = tokenizer.encode(repeat("7 ", 100));
  EXPECT_EQ(digits.tokenCount, 100);
  EXPECT_EQ(digits.truncatedTokens, 25);
  EXPECT_EQ(digits.ids.front(), bos);
  EXPECT_EQ(digits.ids.back(), eos);
  const Encoding four = tokenizer.encode("1234");
  EXPECT_EQ(four.tokenCount, 4);
  EXPECT_EQ(four.truncatedTokens, 0);

  // The special tokens inside a prompt are their ids; case folds before matching.
  EXPECT_EQ(tokenizer.tokenize("<|startoftext|><|endoftext|><|EndOfText|>"), (Ids{bos, eos, eos}));

  EXPECT_EQ(tokenizer.encode("cafe\xCC\x81").ids, tokenizer.encode("caf\xC3\xA9").ids);
  EXPECT_EQ(tokenizer.encode("A  Photo").ids, tokenizer.encode("a photo").ids);
  EXPECT_EQ(tokenizer
                .encode("a\xFF"
                        "b")
                .ids,
            tokenizer.encode("ab").ids);
  EXPECT_NE(tokenizer.encode("a b").ids, tokenizer.encode("ab").ids);
}

TEST_F(ClipReferenceTest, ConcurrentEncodingGivesTheSameIds) {
  const ClipTokenizer tokenizer = loaded("tokenizer");
  std::vector<Ids> expected;
  for (const PromptCase& entry : promptCases())
    expected.push_back(tokenizer.encode(entry.prompt).ids);
  std::vector<int> mismatches(8, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < mismatches.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (std::size_t i = 0; i < expected.size(); ++i) {
          if (tokenizer.encode(promptCases()[(i + t) % expected.size()].prompt).ids !=
              expected[(i + t) % expected.size()]) {
            ++mismatches[t];
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int count : mismatches) EXPECT_EQ(count, 0);
}

// A hand-made vocabulary whose BPE steps are known exactly.
constexpr std::string_view kSmallVocab =
    R"({"a":0,"b":1,"c":2,"a</w>":3,"b</w>":4,"c</w>":5,"ab":6,"abc</w>":7,"!":8,)"
    R"("<|startoftext|>":9,"<|endoftext|>":10})";
constexpr std::string_view kSmallMerges = "#version: 0.2\na b\nab c</w>\n";

TEST(ClipTokenizerTest, BpeMergesByRank) {
  auto tokenizer = ClipTokenizer::fromText(kSmallVocab, kSmallMerges, "!", 5);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.error().message;
  EXPECT_EQ(tokenizer->tokenize("abc"), (Ids{7}));
  EXPECT_EQ(tokenizer->tokenize("ab"), (Ids{0, 4}));       // (a, b</w>) is not a merge
  EXPECT_EQ(tokenizer->tokenize("abab"), (Ids{6, 0, 4}));  // every (a, b) merges, left to right
  EXPECT_EQ(tokenizer->tokenize("ABC x"), (Ids{7, 10}));   // unknown symbol -> <|endoftext|>
  EXPECT_EQ(tokenizer->vocabularySize(), 11u);
  EXPECT_EQ(tokenizer->padId(), 8);

  const Encoding encoding = tokenizer->encode("abc abc abc abc");
  EXPECT_EQ(encoding.ids, (Ids{9, 7, 7, 7, 10}));
  EXPECT_EQ(encoding.tokenCount, 4);
  EXPECT_EQ(encoding.truncatedTokens, 1);
  EXPECT_EQ(tokenizer->encode("").ids, (Ids{9, 10, 8, 8, 8}));
}

TEST(ClipTokenizerTest, MergesFormatVariants) {
  // No header, CRLF, trailing blank lines; a later duplicate line takes the later rank.
  auto plain = ClipTokenizer::fromText(kSmallVocab, "a b\r\nab c</w>\r\n\r\n\n");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(plain->tokenize("abc"), (Ids{7}));
  auto empty = ClipTokenizer::fromText(kSmallVocab, "");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->tokenize("abc"), (Ids{0, 1, 5}));
  // Ranks: (b c</w>) 1, (a b) 2 once the duplicate is read: b+c</w> wins, "bc</w>" is unknown.
  auto duplicate = ClipTokenizer::fromText(kSmallVocab, "a b\nb c</w>\na b\n");
  ASSERT_TRUE(duplicate.ok());
  EXPECT_EQ(duplicate->tokenize("abc"), (Ids{0, 10}));
}

struct BadText {
  std::string name;
  std::string vocab;
  std::string merges;
  std::string pad;
  int maxLength;
  std::string messagePart;
};

TEST(ClipTokenizerTest, RejectsMalformedText) {
  const std::string vocab(kSmallVocab);
  const std::string merges(kSmallMerges);
  const std::vector<BadText> cases = {
      {"merge_three_symbols", vocab, "#version: 0.2\na b\na b c\n", "!", 77, "merges.txt line 3"},
      {"merge_one_symbol", vocab, "a b\nab\n", "!", 77, "merges.txt line 2"},
      {"merge_two_spaces", vocab, "a  b\n", "!", 77, "merges.txt line 1"},
      {"merge_blank_in_middle", vocab, "a b\n\nab c</w>\n", "!", 77, "merges.txt line 2"},
      {"vocab_not_json", "{\"a\": 0,", merges, "!", 77, "vocab.json: not valid JSON at byte"},
      {"vocab_not_object", "[1, 2]", merges, "!", 77, "vocab.json: expected an object"},
      {"vocab_negative_id", R"({"a": -1})", merges, "!", 77, "\"a\" is -1"},
      {"vocab_string_id", R"({"a": "1"})", merges, "!", 77, "non-negative integer"},
      {"vocab_float_id", R"({"a": 1.5})", merges, "!", 77, "non-negative integer"},
      {"vocab_number_overflow", R"({"a": 1e400})", merges, "!", 77, "vocab.json: not valid JSON"},
      {"vocab_huge_id", R"({"a": 18446744073709551615})", merges, "!", 77, "non-negative"},
      {"missing_bos", R"({"<|endoftext|>": 1, "!": 0})", merges, "!", 77, "<|startoftext|>"},
      {"missing_eos", R"({"<|startoftext|>": 1, "!": 0})", merges, "!", 77, "<|endoftext|>"},
      {"pad_not_in_vocab", vocab, merges, "<pad>", 77, "pad token \"<pad>\""},
      {"max_length_too_small", vocab, merges, "!", 1, "maximum length"},
  };
  for (const BadText& entry : cases) {
    SCOPED_TRACE(entry.name);
    auto result = ClipTokenizer::fromText(entry.vocab, entry.merges, entry.pad, entry.maxLength);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(result.error().message.find(entry.messagePart), std::string::npos)
        << result.error().message;
  }
}

TEST(ClipTokenizerTest, LoadReadsPadAndLengthFromTheFolder) {
  TempDir directory("clip-load");
  writeFile(directory.path("vocab.json"), kSmallVocab);
  writeFile(directory.path("merges.txt"), kSmallMerges);

  auto defaults = ClipTokenizer::load(directory.root());
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->padId(), 10);
  EXPECT_EQ(defaults->maxLength(), 77);

  // Pad from tokenizer_config.json (AddedToken object) when special_tokens_map.json lacks it;
  // 1e30 means "no limit", i.e. 77.
  writeFile(directory.path("special_tokens_map.json"), R"({"bos_token": "<|startoftext|>"})");
  writeFile(directory.path("tokenizer_config.json"),
            R"({"model_max_length": 1e30, "pad_token": {"__type": "AddedToken", "content": "!"}})");
  auto fromConfig = ClipTokenizer::load(directory.root());
  ASSERT_TRUE(fromConfig.ok()) << fromConfig.error().message;
  EXPECT_EQ(fromConfig->padId(), 8);
  EXPECT_EQ(fromConfig->maxLength(), 77);

  // special_tokens_map.json wins; its object form; an explicit length.
  writeFile(directory.path("special_tokens_map.json"), R"({"pad_token": {"content": "a"}})");
  writeFile(directory.path("tokenizer_config.json"),
            R"({"model_max_length": 16, "pad_token": "!"})");
  auto fromMap = ClipTokenizer::load(directory.root());
  ASSERT_TRUE(fromMap.ok()) << fromMap.error().message;
  EXPECT_EQ(fromMap->padId(), 0);
  EXPECT_EQ(fromMap->maxLength(), 16);
  EXPECT_EQ(fromMap->encode("abc").ids.size(), 16u);
}

TEST(ClipTokenizerTest, LoadErrorsNameTheFile) {
  TempDir directory("clip-load-errors");
  auto noVocab = ClipTokenizer::load(directory.root());
  ASSERT_FALSE(noVocab.ok());
  EXPECT_EQ(noVocab.error().code, ErrorCode::kNotFound);
  EXPECT_NE(noVocab.error().message.find("vocab.json"), std::string::npos);

  writeFile(directory.path("vocab.json"), kSmallVocab);
  auto noMerges = ClipTokenizer::load(directory.root());
  ASSERT_FALSE(noMerges.ok());
  EXPECT_EQ(noMerges.error().code, ErrorCode::kNotFound);
  EXPECT_NE(noMerges.error().message.find("merges.txt"), std::string::npos);

  writeFile(directory.path("merges.txt"), "#version: 0.2\na b\nbad\n");
  auto badMerges = ClipTokenizer::load(directory.root());
  ASSERT_FALSE(badMerges.ok());
  EXPECT_EQ(badMerges.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(badMerges.error().message.find("merges.txt line 3"), std::string::npos);

  writeFile(directory.path("merges.txt"), kSmallMerges);
  const std::vector<std::pair<std::string, std::string>> badSideFiles = {
      {"special_tokens_map.json", "{oops"},
      {"special_tokens_map.json", R"({"pad_token": 5})"},
      {"tokenizer_config.json", R"({"model_max_length": "77"})"},
      {"tokenizer_config.json", R"({"model_max_length": 1})"},
      {"tokenizer_config.json", R"({"pad_token": "<pad>"})"},
  };
  for (const auto& [file, contents] : badSideFiles) {
    SCOPED_TRACE(file + ": " + contents);
    std::filesystem::remove(directory.path("special_tokens_map.json"));
    std::filesystem::remove(directory.path("tokenizer_config.json"));
    writeFile(directory.path(file), contents);
    auto result = ClipTokenizer::load(directory.root());
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
    const bool namesFile = result.error().message.find(file) != std::string::npos ||
                           result.error().message.find("pad token") != std::string::npos;
    EXPECT_TRUE(namesFile) << result.error().message;
  }
}

}  // namespace
}  // namespace deviceops::clip
