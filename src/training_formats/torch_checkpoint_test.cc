#include "training_formats/torch_checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/testing/temp_dir.h"

namespace deviceops::training {
namespace {

using nlohmann::json;

// Fixtures from tests/models/make_torch_files.py, written once per test binary run.
class TorchCheckpointTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    folder_ = std::make_unique<deviceops::testing::TempDir>("torch-checkpoint-test");
    const std::string command = std::string("/usr/bin/python3 ") + DEVICEOPS_SOURCE_DIR +
                                "/tests/models/make_torch_files.py " + folder_->root().string() +
                                " 2>&1";
    output_.clear();
    status_ = -1;
    if (FILE* pipe = ::popen(command.c_str(), "r")) {
      char buffer[512];
      while (std::fgets(buffer, sizeof buffer, pipe)) output_ += buffer;
      status_ = ::pclose(pipe);
    }
  }
  static void TearDownTestSuite() { folder_.reset(); }

  void SetUp() override { ASSERT_EQ(status_, 0) << output_; }

  static std::filesystem::path file(const std::string& name) { return folder_->path(name); }
  static json expected(const std::string& name) {
    std::ifstream in(file(name));
    return json::parse(in);
  }

  static std::unique_ptr<deviceops::testing::TempDir> folder_;
  static std::string output_;
  static int status_;
};

std::unique_ptr<deviceops::testing::TempDir> TorchCheckpointTest::folder_;
std::string TorchCheckpointTest::output_;
int TorchCheckpointTest::status_ = -1;

std::string fromHex(const std::string& hex) {
  std::string bytes;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return bytes;
}

// Every tensor equals, byte for byte, what torch saved; F32/F16/BF16 also widen to exactly the
// floats torch widens them to.
void expectStateDict(const StateDict& dict, const json& expected) {
  ASSERT_EQ(dict.tensors.size(), expected["tensors"].size());
  for (std::size_t i = 0; i < dict.tensors.size(); ++i) {
    const NamedTensor& tensor = dict.tensors[i];
    const json& want = expected["tensors"][i];
    SCOPED_TRACE(want["name"].get<std::string>());
    EXPECT_EQ(tensor.name, want["name"]);
    EXPECT_EQ(torchDtypeName(tensor.dtype), want["dtype"].get<std::string>());
    EXPECT_EQ(tensor.shape, want["shape"].get<std::vector<std::int64_t>>());
    EXPECT_EQ(tensor.data, fromHex(want["hex"]));
    EXPECT_EQ(tensor.data.size(),
              static_cast<std::size_t>(tensor.elementCount()) * torchDtypeSize(tensor.dtype));
    if (want.contains("float_hex")) {
      Result<std::vector<float>> floats = widenToFloat(tensor);
      ASSERT_TRUE(floats.ok()) << floats.error().message;
      const std::string wantFloats = fromHex(want["float_hex"]);
      ASSERT_EQ(floats->size() * sizeof(float), wantFloats.size());
      EXPECT_TRUE(wantFloats.empty() ||
                  std::memcmp(floats->data(), wantFloats.data(), wantFloats.size()) == 0);
    }
  }
  EXPECT_EQ(dict.skipped, expected["skipped"].get<std::vector<std::string>>());
  EXPECT_EQ(dict.nested, expected["nested"].get<bool>());
}

TEST_F(TorchCheckpointTest, ReadsEveryDtypeAndLayoutExactly) {
  Result<StateDict> dict = readTorchCheckpoint(file("state.pt"));
  ASSERT_TRUE(dict.ok()) << dict.error().message;
  expectStateDict(*dict, expected("state.json"));
  // Spot checks that do not depend on the JSON: the transposed arange(12).reshape(3, 4).t().
  const NamedTensor* transposed = dict->find("transposed");
  ASSERT_NE(transposed, nullptr);
  EXPECT_EQ(transposed->shape, (std::vector<std::int64_t>{4, 3}));
  EXPECT_EQ(*widenToFloat(*transposed), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  const NamedTensor* offsetView = dict->find("offset_view");  // arange(20)/8, elements 5..10
  ASSERT_NE(offsetView, nullptr);
  std::vector<double> doubles(6);
  ASSERT_EQ(offsetView->data.size(), sizeof(double) * doubles.size());
  std::memcpy(doubles.data(), offsetView->data.data(), offsetView->data.size());
  EXPECT_EQ(doubles, (std::vector<double>{0.625, 0.75, 0.875, 1.0, 1.125, 1.25}));
  const std::vector<float> halves = *widenToFloat(*dict->find("f16"));
  EXPECT_EQ(halves[6], 5.960464477539063e-08f);  // the smallest subnormal half
  EXPECT_EQ(halves[4], 65504.0f);
  EXPECT_TRUE(std::isinf(halves[8]));
  EXPECT_TRUE(std::isnan(halves[10]));
  EXPECT_EQ(dict->find("missing"), nullptr);
}

TEST_F(TorchCheckpointTest, TakesTheStateDictOfALightningCheckpoint) {
  Result<StateDict> dict = readTorchCheckpoint(file("model.ckpt"));
  ASSERT_TRUE(dict.ok()) << dict.error().message;
  expectStateDict(*dict, expected("model.json"));
  EXPECT_TRUE(dict->nested);
}

TEST_F(TorchCheckpointTest, ReadsADiffusersBin) {
  Result<StateDict> dict = readTorchCheckpoint(file("diffusion_pytorch_model.bin"));
  ASSERT_TRUE(dict.ok()) << dict.error().message;
  expectStateDict(*dict, expected("diffusion_pytorch_model.json"));
  const NamedTensor* tracked = dict->find("norm.num_batches_tracked");
  ASSERT_NE(tracked, nullptr);
  EXPECT_EQ(tracked->dtype, TorchDtype::kI64);
  std::int64_t count = 0;
  std::memcpy(&count, tracked->data.data(), sizeof count);
  EXPECT_EQ(count, 12);
  EXPECT_EQ(*widenToFloat(*dict->find("norm.running_mean")), (std::vector<float>{0.5, -1, 2}));
  Result<std::vector<float>> notFloat = widenToFloat(*tracked);
  ASSERT_FALSE(notFloat.ok());
  EXPECT_EQ(notFloat.error().code, ErrorCode::kInvalidArgument);
}

TEST_F(TorchCheckpointTest, OpensLazilyAndReadsOneTensor) {
  Result<TorchCheckpoint> checkpoint = TorchCheckpoint::open(file("model.ckpt"));
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.error().message;
  TorchCheckpoint moved = std::move(checkpoint).value();  // the mapping moves with it
  ASSERT_EQ(moved.tensors().size(), 3u);
  const PickledTensor& bias = moved.tensors()[1];
  EXPECT_EQ(bias.name, "first_stage_model.decoder.conv_out.bias");
  EXPECT_EQ(bias.storageType, "torch.HalfStorage");
  const NamedTensor tensor = moved.read(bias);
  EXPECT_EQ(tensor.data, fromHex(expected("model.json")["tensors"][1]["hex"]));
}

TEST_F(TorchCheckpointTest, RefusesEvilGlobalsWithoutRunningThem) {
  struct Case {
    std::string file, global, marker;
  };
  for (const Case& c : {Case{"evil_os_system.pt", "os.system", "pwned-os"},
                        Case{"evil_eval.pt", "builtins.eval", "pwned-eval"},
                        Case{"evil_stack_global.pt", "posix.system", "pwned-stack"}}) {
    SCOPED_TRACE(c.file);
    Result<StateDict> dict = readTorchCheckpoint(file(c.file));
    ASSERT_FALSE(dict.ok());
    EXPECT_EQ(dict.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(dict.error().message.find("names the global " + c.global), std::string::npos)
        << dict.error().message;
    EXPECT_EQ(dict.error().details.value("global", ""), c.global);
    EXPECT_FALSE(std::filesystem::exists(file(c.marker)));
  }
}

TEST_F(TorchCheckpointTest, RefusesHostileFilesWithClearMessages) {
  struct Case {
    std::string file, fragment;
  };
  const std::vector<Case> cases{
      {"legacy.pt", "legacy (pre-1.6, non-zip) torch.save format"},
      {"short_storage.pt",
       "tensor \"w\": its storage data/0 holds 8 bytes but the pickle declares 6 elements"},
      {"out_of_bounds.pt",
       "tensor \"w\": offset 1 with shape [2, 2] and strides [2, 1] reaches past the end of its "
       "storage data/0 (4 elements)"},
      {"huge_shape.pt", "tensor \"w\": its shape [1099511627776, 1099511627776] is too large"},
      {"expanded.pt",
       "tensor \"w\": its shape [17592186044416] has 17592186044416 elements, more than its "
       "storage"},
      {"missing_storage.pt", "tensor \"w\": its storage archive/data/7 is not in the archive"},
      {"truncated.pt", "no end of central directory record (the file is truncated)"},
      {"cd_past_end.pt", "the central directory (offset"},
      {"zip64_lie.pt", "the central directory (offset"},
      {"compressed.pt", "compressed with method 8; only stored (uncompressed) entries"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.file);
    // Both the file reader and the in-memory parser refuse it, before allocating any tensor
    // (a 2^44-element F32 tensor would need 64 TiB: an allocation could not succeed).
    Result<StateDict> dict = readTorchCheckpoint(file(c.file));
    ASSERT_FALSE(dict.ok());
    EXPECT_EQ(dict.error().code, ErrorCode::kInvalidArgument);
    EXPECT_NE(dict.error().message.find(c.fragment), std::string::npos) << dict.error().message;
  }
}

TEST_F(TorchCheckpointTest, ReportsMissingFiles) {
  Result<StateDict> dict = readTorchCheckpoint(file("no-such-file.pt"));
  ASSERT_FALSE(dict.ok());
  EXPECT_EQ(dict.error().code, ErrorCode::kNotFound);
}

TEST(TorchCheckpointBytesTest, RefusesAZipWithoutDataPkl) {
  // An empty zip: just the end of central directory record.
  const std::string empty("PK\x05\x06" + std::string(18, '\0'));
  Result<TorchCheckpoint> checkpoint = TorchCheckpoint::fromBytes(empty);
  ASSERT_FALSE(checkpoint.ok());
  EXPECT_NE(checkpoint.error().message.find("no <name>/data.pkl"), std::string::npos)
      << checkpoint.error().message;
}

}  // namespace
}  // namespace deviceops::training
