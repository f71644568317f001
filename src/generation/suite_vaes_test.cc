// Custom VAEs on the real ONNX Runtime (issue 14): every weights format patched into the tiny
// suite's decoder and encoder decodes like torch with the same weights; bad files are refused and
// change nothing; a constant-folded decoder needs scripts/export_vae.py; comparison ranks a
// degraded VAE below its original; generations decode with the chosen VAE. The weights files and
// torch references come from tests/models/make_vae_files.py.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "generation/testing/generation_fixture.h"
#include "generation/vae_compare.h"
#include "imaging/png.h"

namespace deviceops::generation {
namespace {

using namespace testing_support;

const fs::path kVae = kModels / "vae";

// The largest |a - b| (infinity when the sizes differ).
double maxDifference(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size() || a.empty()) return INFINITY;
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, double(std::fabs(a[i] - b[i])));
  return worst;
}

class SuiteVaeTest : public GenerationTest {
 protected:
  void SetUp() override {
    GenerationTest::SetUp();
    ASSERT_TRUE(fs::exists(kVae / "custom.safetensors")) << "VAE test files missing";
    suiteId = importOrDie("base", "sdxl/base").id;
  }

  VaeRecord addOrDie(const std::string& name, const std::string& file) {
    VaeAddRequest request;
    request.name = name;
    request.path = kVae / file;
    Result<VaeRecord> record = suites->addVae("base", request);
    EXPECT_TRUE(record.ok()) << file << ": " << record.error().message;
    return record.ok() ? *record : VaeRecord{};
  }

  Error addError(const std::string& name, const fs::path& path) {
    VaeAddRequest request;
    request.name = name;
    request.path = path;
    Result<VaeRecord> record = suites->addVae("base", request);
    EXPECT_FALSE(record.ok()) << path;
    return record.ok() ? Error{} : record.error();
  }

  // Runs one model of `lease` on one float input.
  std::vector<float> run(const SuiteLease& lease, Role role, const std::string& input,
                         const fs::path& npy, const std::string& output) {
    Result<inference::Tensor> tensor = inference::readNpyFile(npy);
    EXPECT_TRUE(tensor.ok()) << npy;
    if (!tensor.ok()) return {};
    tensor->name = input;
    inference::InferRequest infer;
    infer.model = lease.models.at(role);
    infer.inputs.push_back(std::move(tensor.value()));
    infer.outputs = {output};
    Result<inference::InferResult> result = registry->infer(std::move(infer));
    EXPECT_TRUE(result.ok()) << result.error().message;
    if (!result.ok()) return {};
    Result<std::vector<float>> values = readFloats(result->outputs.at(0));
    return values.ok() ? *values : std::vector<float>{};
  }

  std::string suiteId;
};

TEST_F(SuiteVaeTest, EveryFormatDecodesAndEncodesLikeTorch) {
  struct Case {
    std::string file, keyFormat, prefix;
  };
  for (const Case& c :
       {Case{"custom.safetensors", "diffusers", ""}, Case{"custom.pt", "diffusers", "vae."},
        Case{"custom.ckpt", "ldm", "first_stage_model."}, Case{"custom.bin", "diffusers", ""}}) {
    SCOPED_TRACE(c.file);
    const std::string name = fs::path(c.file).extension().string().substr(1);
    const VaeRecord record = addOrDie(name, c.file);
    EXPECT_EQ(record.keyFormat, c.keyFormat);
    EXPECT_EQ(record.prefix, c.prefix);
    EXPECT_GT(record.decoderPatched, 10u);
    ASSERT_TRUE(record.encoder.has_value());
    EXPECT_GT(record.encoderPatched, 10u);
    EXPECT_EQ(record.source.at("format"), name);
    Result<std::unique_ptr<SuiteLease>> lease = suites->acquireVae("base", name);
    ASSERT_TRUE(lease.ok()) << lease.error().message;
    EXPECT_EQ((*lease)->vae, name);
    const std::vector<float> decoded =
        run(**lease, Role::kVaeDecoder, "latent_sample", kVae / "latent.npy", "sample");
    EXPECT_LT(maxDifference(decoded, readNpyFloats(kVae / (c.file + ".decoded.npy"))), 1e-4);
    const std::vector<float> encoded =
        run(**lease, Role::kVaeEncoder, "sample", kVae / "image.npy", "latent_parameters");
    EXPECT_LT(maxDifference(encoded, readNpyFloats(kVae / (c.file + ".encoded.npy"))), 1e-4);
  }
  // The stock decoder is untouched: it does not decode like the custom weights.
  Result<std::unique_ptr<SuiteLease>> stock = suites->acquireVae("base", "stock");
  ASSERT_TRUE(stock.ok());
  const std::vector<float> decoded =
      run(**stock, Role::kVaeDecoder, "latent_sample", kVae / "latent.npy", "sample");
  EXPECT_GT(maxDifference(decoded, readNpyFloats(kVae / "custom.safetensors.decoded.npy")), 1e-2);
  Result<VaeList> list = suites->listVaes("base");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->vaes.size(), 4u);
  EXPECT_EQ(list->defaultVae, "stock");
}

TEST_F(SuiteVaeTest, DecoderOnlyWeightsKeepTheStockEncoder) {
  const VaeRecord record = addOrDie("decoder-only", "decoder_only.safetensors");
  EXPECT_FALSE(record.encoder.has_value());
  Result<std::unique_ptr<SuiteLease>> lease = suites->acquireVae("base", "decoder-only");
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  Result<std::unique_ptr<SuiteLease>> stock = suites->acquireVae("base", "stock");
  ASSERT_TRUE(stock.ok());
  EXPECT_EQ((*lease)->models.at(Role::kVaeEncoder), (*stock)->models.at(Role::kVaeEncoder));
  EXPECT_NE((*lease)->models.at(Role::kVaeDecoder), (*stock)->models.at(Role::kVaeDecoder));
}

TEST_F(SuiteVaeTest, BadWeightsAreRefusedAndChangeNothing) {
  Error mismatch = addError("mismatch", kVae / "mismatch.safetensors");
  EXPECT_EQ(mismatch.code, ErrorCode::kInvalidArgument);
  EXPECT_NE(mismatch.message.find("decoder.conv_in.weight"), std::string::npos) << mismatch.message;
  EXPECT_EQ(mismatch.details.value("key", ""), "decoder.conv_in.weight");
  EXPECT_TRUE(mismatch.details.contains("expectedShape"));

  Error incomplete = addError("incomplete", kVae / "incomplete.safetensors");
  EXPECT_EQ(incomplete.code, ErrorCode::kInvalidArgument);
  EXPECT_NE(incomplete.message.find("decoder.conv_out.bias"), std::string::npos);

  Error outside = addError("outside", "/etc/passwd");
  EXPECT_EQ(outside.code, ErrorCode::kPermissionDenied);
  EXPECT_EQ(addError("missing", kVae / "nope.safetensors").code, ErrorCode::kNotFound);
  EXPECT_EQ(addError("stock", kVae / "custom.safetensors").code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(addError("bad/name", kVae / "custom.safetensors").code, ErrorCode::kInvalidArgument);

  // A pickle naming os.system: refused naming the global, and nothing ran.
  const fs::path hostile = dir.path("roots") / "torch";
  const std::string command = "/usr/bin/python3 " DEVICEOPS_SOURCE_DIR
                              "/tests/models/make_torch_files.py " +
                              hostile.string() + " > /dev/null";
  ASSERT_EQ(std::system(command.c_str()), 0);
  Error evil = addError("evil", hostile / "evil_os_system.pt");
  EXPECT_EQ(evil.code, ErrorCode::kInvalidArgument);
  EXPECT_NE(evil.message.find("os.system"), std::string::npos) << evil.message;
  EXPECT_FALSE(fs::exists(hostile / "pwned-os"));
  EXPECT_EQ(addError("truncated", hostile / "truncated.pt").code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(addError("legacy", hostile / "legacy.pt").code, ErrorCode::kInvalidArgument);

  addOrDie("good", "custom.safetensors");
  Error taken = addError("good", kVae / "custom.pt");
  EXPECT_EQ(taken.code, ErrorCode::kConflict);
  VaeAddRequest unknownSuite;
  unknownSuite.path = kVae / "custom.safetensors";
  EXPECT_EQ(suites->addVae("nope", unknownSuite).error().code, ErrorCode::kNotFound);

  Result<VaeList> list = suites->listVaes("base");
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->vaes.size(), 1u);
  EXPECT_EQ(list->vaes[0].name, "good");
  // Only the good VAE's two patched models were written.
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path("data") / "vaes")) {
    files += entry.path().extension() == ".onnx" ? 1 : 0;
  }
  EXPECT_EQ(files, 2u);
}

TEST_F(SuiteVaeTest, ConstantFoldedDecoderNeedsReexportAndTheExportLoads) {
  const fs::path folded = dir.path("roots") / "folded";
  fs::copy(kModels / "sdxl/base", folded, fs::copy_options::recursive);
  fs::copy_file(kVae / "folded/vae_decoder/model.onnx", folded / "vae_decoder/model.onnx",
                fs::copy_options::overwrite_existing);
  importOrDie("folded", folded.string());
  VaeAddRequest request;
  request.name = "custom";
  request.path = kVae / "custom.safetensors";
  Result<VaeRecord> refused = suites->addVae("folded", request);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnprocessable);
  EXPECT_NE(refused.error().message.find("re-export required"), std::string::npos);
  EXPECT_NE(refused.error().details.value("reexport", "").find("scripts/export_vae.py"),
            std::string::npos);

  // The decoder scripts/export_vae.py wrote (make_vae_files.py ran it) takes the weights.
  const fs::path reexported = dir.path("roots") / "reexported";
  fs::copy(kModels / "sdxl/base", reexported, fs::copy_options::recursive);
  fs::copy_file(kVae / "reexported/vae_decoder/model.onnx", reexported / "vae_decoder/model.onnx",
                fs::copy_options::overwrite_existing);
  importOrDie("reexported", reexported.string());
  Result<VaeRecord> added = suites->addVae("reexported", request);
  ASSERT_TRUE(added.ok()) << added.error().message;
  Result<std::unique_ptr<SuiteLease>> lease = suites->acquireVae("reexported", "custom");
  ASSERT_TRUE(lease.ok()) << lease.error().message;
  EXPECT_LT(
      maxDifference(run(**lease, Role::kVaeDecoder, "latent_sample", kVae / "latent.npy", "sample"),
                    readNpyFloats(kVae / "custom.safetensors.decoded.npy")),
      1e-4);
}

TEST_F(SuiteVaeTest, ComparisonRanksTheDegradedVaeBelowItsOriginalAndSelects) {
  addOrDie("trained", "custom.safetensors");
  addOrDie("degraded", "degraded.safetensors");
  VaeCompareRequest request;
  request.size = 64;
  request.select = true;
  Result<nlohmann::json> comparison = compareVaes(*suites, *registry, "base", request);
  ASSERT_TRUE(comparison.ok()) << comparison.error().message;
  const nlohmann::json& ranking = comparison->at("ranking");
  ASSERT_EQ(ranking.size(), 3u);
  std::map<std::string, nlohmann::json> rows;
  for (const nlohmann::json& row : ranking) rows[row.at("name")] = row;
  EXPECT_EQ(ranking[0].at("name"), "trained") << comparison->dump(1);
  EXPECT_LT(rows["trained"].at("rank").get<int>(), rows["degraded"].at("rank").get<int>());
  EXPECT_GT(rows["trained"].at("ssim").get<double>(), rows["degraded"].at("ssim").get<double>());
  EXPECT_GT(rows["trained"].at("psnr").get<double>(), rows["degraded"].at("psnr").get<double>());
  for (const auto& [name, row] : rows) {
    SCOPED_TRACE(name);
    EXPECT_EQ(row.at("perProbe").size(), 6u);
    EXPECT_EQ(row.at("nanRate").at("fp32"), 0.0);
    EXPECT_GE(row.at("clippedFraction").get<double>(), 0.0);
    EXPECT_GE(row.at("colourfulnessDrift").get<double>(), 0.0);
    EXPECT_GT(row.at("decodeMs").get<double>(), 0.0);
    EXPECT_GE(row.at("peakBytes").get<std::uint64_t>(), row.at("modelBytes").get<std::uint64_t>());
  }
  EXPECT_EQ(comparison->at("winner"), "trained");
  EXPECT_EQ(comparison->at("default"), "trained");

  // The same probes give the same ranking every time, and a user's PNG joins them.
  imaging::Rgb8Image photo;
  photo.width = 70;  // cropped to 64 x 64 (a multiple of 8, at most size)
  photo.height = 67;
  for (int i = 0; i < photo.width * photo.height; ++i) {
    photo.pixels.push_back(static_cast<std::uint8_t>(i % 251));
    photo.pixels.push_back(static_cast<std::uint8_t>((i / 70) * 3));
    photo.pixels.push_back(static_cast<std::uint8_t>(200 - (i % 70)));
  }
  Result<std::string> png = imaging::encodePng(photo);
  ASSERT_TRUE(png.ok());
  std::ofstream(dir.path("roots") / "photo.png", std::ios::binary) << *png;
  request.select = false;
  request.images = {dir.path("roots") / "photo.png"};
  request.candidates = {"degraded", "trained"};
  Result<nlohmann::json> again = compareVaes(*suites, *registry, "base", request);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->at("ranking")[0].at("name"), "trained");
  ASSERT_EQ(again->at("probes").size(), 7u);
  EXPECT_EQ(again->at("probes")[6], "photo.png");
  const nlohmann::json& perProbe = again->at("ranking")[0].at("perProbe");
  for (int i = 0; i < 6; ++i) {
    EXPECT_DOUBLE_EQ(perProbe[i].at("ssim").get<double>(),
                     rows["trained"].at("perProbe")[i].at("ssim").get<double>());
  }
  request.images = {dir.path("roots") / "suites.db"};  // not a PNG
  std::ofstream(dir.path("roots") / "suites.db") << "not a png";
  EXPECT_EQ(compareVaes(*suites, *registry, "base", request).error().code,
            ErrorCode::kInvalidArgument);
  request.images.clear();

  // Kept with the suite across a restart.
  startSuites(2);
  Result<VaeList> list = suites->listVaes("base");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->defaultVae, "trained");
  ASSERT_TRUE(list->comparison.is_object());
  for (const VaeRecord& record : list->vaes) {
    ASSERT_TRUE(record.quality.is_object()) << record.name;
    EXPECT_EQ(record.quality.at("rank"), rows[record.name].at("rank"));
  }

  // Bad requests.
  request.candidates = {"nope"};
  EXPECT_EQ(compareVaes(*suites, *registry, "base", request).error().code, ErrorCode::kNotFound);
  request.candidates = {"trained", "trained"};
  EXPECT_EQ(compareVaes(*suites, *registry, "base", request).error().code,
            ErrorCode::kInvalidArgument);
  request.candidates = {};
  request.size = 60;
  EXPECT_EQ(compareVaes(*suites, *registry, "base", request).error().code,
            ErrorCode::kInvalidArgument);
  request.size = 64;
  request.images = {"/etc/passwd"};
  EXPECT_EQ(compareVaes(*suites, *registry, "base", request).error().code,
            ErrorCode::kPermissionDenied);
}

TEST_F(SuiteVaeTest, GenerationsDecodeWithTheChosenVae) {
  addOrDie("custom", "custom.safetensors");
  GenerationRequest request = small("base");
  request.steps = 2;
  const GenerationJob stock = generate(request);
  request.vae.name = "custom";
  const GenerationJob custom = generate(request);
  ASSERT_EQ(stock.images.size(), 1u);
  ASSERT_EQ(custom.images.size(), 1u);
  EXPECT_EQ(custom.request.vae, "custom");
  EXPECT_EQ(stock.request.vae, "stock");
  const auto bytes = [&](const GenerationJob& job) {
    Result<GenerationService::ImageFile> file = service->image(job.id, 0);
    EXPECT_TRUE(file.ok());
    return file.ok() ? file->bytes : std::string();
  };
  const std::string customPng = bytes(custom);
  EXPECT_NE(bytes(stock), customPng);
  EXPECT_NE(customPng.find("VAE: custom"), std::string::npos);

  // The default applies when the request names none.
  ASSERT_TRUE(suites->selectVae("base", "custom").ok());
  request.vae.name.clear();
  const GenerationJob byDefault = generate(request);
  EXPECT_EQ(byDefault.request.vae, "custom");
  EXPECT_EQ(bytes(byDefault), customPng);

  request.vae.name = "nope";
  Result<GenerationJob> unknown = service->submit(request);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);

  // The default cannot be removed; once another is selected it can, with its files.
  EXPECT_EQ(suites->removeVae("base", "custom").error().code, ErrorCode::kConflict);
  ASSERT_TRUE(suites->selectVae("base", "stock").ok());
  const fs::path decoder = suites->listVaes("base")->vaes.at(0).decoder.path;
  ASSERT_TRUE(fs::exists(decoder));
  ASSERT_TRUE(suites->removeVae("base", "custom").ok());
  EXPECT_FALSE(fs::exists(decoder));
  EXPECT_EQ(suites->removeVae("base", "custom").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(suites->selectVae("base", "custom").error().code, ErrorCode::kNotFound);

  // Deleting the suite deletes its VAEs' files, except those another suite's VAE shares.
  importOrDie("other", "sdxl/base");
  addOrDie("kept", "custom.safetensors");  // into "base"
  VaeAddRequest shared;
  shared.name = "same";
  shared.path = kVae / "custom.safetensors";
  ASSERT_TRUE(suites->addVae("other", shared).ok());
  addOrDie("own", "degraded.safetensors");
  const VaeList before = *suites->listVaes("base");
  ASSERT_EQ(before.vaes.size(), 2u);
  ASSERT_TRUE(suites->remove("base").ok());
  EXPECT_TRUE(fs::exists(before.vaes[0].decoder.path)) << "shared with suite other";
  EXPECT_FALSE(fs::exists(before.vaes[1].decoder.path));
  EXPECT_FALSE(fs::exists(before.vaes[1].encoder->path));
}

}  // namespace
}  // namespace deviceops::generation
