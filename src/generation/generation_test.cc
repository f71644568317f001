// Suites and the SDXL pipeline on the real ONNX Runtime, through a real ModelRegistry and
// MemoryService on the CPU, with the tiny SDXL test suites of tests/models/make_sdxl_models.py.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <thread>

#include "common/testing/temp_dir.h"
#include "devices/cpu/cpu_backend.h"
#include "devices/testing/allocators.h"
#include "diffusion/scheduler.h"
#include "generation/service.h"
#include "generation/suite_manager.h"
#include "generation/suite_validation.h"
#include "generation/tensors.h"
#include "generation/testing/generation_fixture.h"
#include "imaging/png.h"
#include "memory/ledger_store.h"
#include "tensor/npy.h"

namespace deviceops::generation {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

using namespace testing_support;

// The C++ pipeline equals the torch reference run of make_sdxl_models.py: same start noise,
// Euler (leading) 4 steps, guidance 5, zero negative embeddings, the VAE decode.
TEST_F(GenerationTest, MatchesTheTorchReferencePipeline) {
  importOrDie("base", "sdxl/base");
  GenerationRequest request = small("base");
  request.steps = 4;
  request.guidance = 5;
  request.refiner.mode = RefinerMode::kNever;
  request.initialNoise = readNpyFloats(kModels / "sdxl/reference_init_latents.npy");
  request.output = OutputFormat::kLatents;
  const GenerationJob latentsJob = generate(request);
  ASSERT_EQ(latentsJob.images.size(), 1u);
  const auto& stage = latentsJob.report["stages"][0];
  EXPECT_EQ(stage["timesteps"], nlohmann::json({751.0, 501.0, 251.0, 1.0}));

  Result<GenerationService::ImageFile> file = service->image(latentsJob.id, 0);
  ASSERT_TRUE(file.ok()) << file.error().message;
  Result<inference::Tensor> latents = inference::readNpy(file->bytes);
  ASSERT_TRUE(latents.ok());
  EXPECT_EQ(latents->shape, (std::vector<std::int64_t>{1, 4, 8, 8}));
  const std::vector<float> ours = *readFloats(*latents);
  const std::vector<float> reference = readNpyFloats(kModels / "sdxl/reference_final_latents.npy");
  ASSERT_EQ(ours.size(), reference.size());
  double largest = 0, worst = 0;
  for (std::size_t i = 0; i < ours.size(); ++i) {
    largest = std::max(largest, std::abs(static_cast<double>(reference[i])));
    worst = std::max(worst, std::abs(static_cast<double>(ours[i]) - reference[i]));
  }
  EXPECT_LT(worst, 1e-4 * largest) << "worst " << worst << " of " << largest;

  request.output = OutputFormat::kPng;
  const GenerationJob pngJob = generate(request);
  Result<GenerationService::ImageFile> png = service->image(pngJob.id, 0);
  ASSERT_TRUE(png.ok());
  Result<imaging::DecodedPng> decoded = imaging::decodePng(png->bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  const std::vector<float> image = readNpyFloats(kModels / "sdxl/reference_image.npy");
  ASSERT_EQ(decoded->image.pixels.size(), image.size());
  int maxDifference = 0;
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      for (int c = 0; c < 3; ++c) {
        const int expected = static_cast<int>(std::nearbyint(image[(c * 64 + y) * 64 + x] * 255));
        const int found = decoded->image.pixels[(y * 64 + x) * 3 + c];
        maxDifference = std::max(maxDifference, std::abs(found - expected));
      }
    }
  }
  EXPECT_LE(maxDifference, 1);
  // The parameters travel in the PNG, as other SD tools write them.
  ASSERT_FALSE(decoded->text.empty());
  EXPECT_EQ(decoded->text[0].first, "parameters");
  EXPECT_NE(decoded->text[0].second.find("Steps: 4, Sampler: euler"), std::string::npos)
      << decoded->text[0].second;
}

TEST_F(GenerationTest, ValidationReadsTheSignatures) {
  const SuiteInfo suite = importOrDie("tiny", "sdxl/base", "sdxl/refiner");
  EXPECT_DOUBLE_EQ(suite.validation.score, 1.0);
  std::map<std::string, std::string> found;
  for (const Check& check : suite.validation.checks) found[check.name] = check.found;
  EXPECT_EQ(found["contextWidth"], "2048");
  EXPECT_EQ(found["pooledWidth"], "1280");
  EXPECT_EQ(found["timeIds"], "6");
  EXPECT_EQ(found["refinerContextWidth"], "1280");
  EXPECT_EQ(found["refinerTimeIds"], "5");
  EXPECT_EQ(found["latentChannels"], "4");
  EXPECT_EQ(suite.definition.components.count(Role::kRefinerUnet), 1u);
  // The refiner's text_encoder_2 and VAE are byte-identical: shared, not a second component.
  EXPECT_FALSE(suite.definition.source.contains("refinerIgnored"));
}

TEST_F(GenerationTest, IncompatibleRefinerIsRefusedNamingTheMismatch) {
  ImportRequest request;
  request.name = "mixed";
  request.path = "sdxl/base";
  request.refinerPath = "sdxl/refiner_other_family";
  Result<SuiteInfo> suite = suites->import(request);
  ASSERT_FALSE(suite.ok());
  EXPECT_EQ(suite.error().code, ErrorCode::kConflict);
  EXPECT_EQ(suite.error().details["check"]["name"], "refinerContextWidth");
  EXPECT_EQ(suite.error().details["check"]["tensor"], "encoder_hidden_states");
  EXPECT_EQ(suite.error().details["check"]["expected"], "1280");
  EXPECT_EQ(suite.error().details["check"]["found"], "1024");
  EXPECT_LT(suite.error().details["validation"]["score"].get<double>(), 1.0);
  EXPECT_TRUE(suites->list().empty());  // nothing changed
}

TEST_F(GenerationTest, BadImportsAreRefusedBeforeAnythingChanges) {
  const auto refused = [&](ImportRequest request) {
    Result<SuiteInfo> suite = suites->import(request);
    EXPECT_FALSE(suite.ok());
    return suite.ok() ? ErrorCode::kInternal : suite.error().code;
  };
  ImportRequest outside;
  outside.name = "outside";
  outside.path = "/etc";
  EXPECT_EQ(refused(outside), ErrorCode::kPermissionDenied);
  ImportRequest missing;
  missing.name = "missing";
  missing.path = "sdxl/nothing-here";
  EXPECT_EQ(refused(missing), ErrorCode::kNotFound);
  ImportRequest badName;
  badName.name = "../x";
  badName.path = "sdxl/base";
  EXPECT_EQ(refused(badName), ErrorCode::kInvalidArgument);

  // A manifest whose declared width disagrees with the signature: 400 naming component + tensor.
  nlohmann::json manifest = {
      {"name", "declared"},
      {"components",
       {{"tokenizer", {{"path", "sdxl/base/tokenizer"}}},
        {"tokenizer_2", {{"path", "sdxl/base/tokenizer_2"}}},
        {"text_encoder", {{"path", "sdxl/base/text_encoder/model.onnx"}, {"hiddenWidth", 1024}}},
        {"text_encoder_2", {{"path", "sdxl/base/text_encoder_2/model.onnx"}}},
        {"unet", {{"path", "sdxl/base/unet/model.onnx"}}},
        {"vae_decoder", {{"path", "sdxl/base/vae_decoder/model.onnx"}}}}}};
  ImportRequest declared;
  declared.manifest = manifest;
  Result<SuiteInfo> result = suites->import(declared);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(result.error().details["component"], "text_encoder");
  EXPECT_EQ(result.error().details["tensor"], "hidden_states.11");

  // A file that is not ONNX where a model belongs.
  manifest["components"]["text_encoder"] = {{"path", "sdxl/base/tokenizer/vocab.json"}};
  declared.manifest = manifest;
  result = suites->import(declared);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(result.error().details["component"], "text_encoder");

  // A truncated model.
  fs::create_directories(dir.path("roots") / "broken");
  {
    std::ifstream in(kModels / "sdxl/base/text_encoder/model.onnx", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream out(dir.path("roots") / "broken" / "te.onnx", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  manifest["components"]["text_encoder"] = {{"path", "broken/te.onnx"}};
  declared.manifest = manifest;
  result = suites->import(declared);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::kInvalidArgument);
  EXPECT_TRUE(suites->list().empty());
}

TEST_F(GenerationTest, SuitesPersistAndSharedComponentsLoadOnce) {
  importOrDie("a", "sdxl/base", "sdxl/refiner");
  importOrDie("b", "sdxl/base");
  ASSERT_TRUE(suites->load("a").ok());
  const std::size_t afterA = registry->list().size();
  EXPECT_EQ(afterA, 6u);  // te1, te2, unet, refiner unet, vae decoder, vae encoder: te2/VAE once
  ASSERT_TRUE(suites->load("b").ok());
  EXPECT_EQ(registry->list().size(), afterA);  // b's components are all a's
  Result<SuiteInfo> b = suites->get("b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->state, "ready");
  EXPECT_FALSE(b->memoryByDevice.empty());
  ASSERT_TRUE(suites->unload("a").ok());
  EXPECT_EQ(registry->list().size(), 5u);  // only the refiner UNet was a's alone
  ASSERT_TRUE(suites->unload("b").ok());
  EXPECT_TRUE(registry->list().empty());

  startSuites(2);  // a restart: registrations come back, residency does not
  const std::vector<SuiteInfo> listed = suites->list();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].name, "a");
  EXPECT_EQ(listed[0].state, "registered");
  EXPECT_TRUE(suites->remove("a").ok());
  EXPECT_EQ(suites->get("a").error().code, ErrorCode::kNotFound);
}

TEST_F(GenerationTest, PastMaxLoadedTheLeastRecentlyUsedSuiteGoes) {
  copyDistinct(kModels / "sdxl/base", dir.path("roots") / "other");
  startSuites(1);
  importOrDie("first", "sdxl/base");
  importOrDie("second", "other");
  ASSERT_TRUE(suites->load("first").ok());
  const std::size_t one = registry->list().size();
  ASSERT_TRUE(suites->load("second").ok());
  EXPECT_EQ(suites->get("first")->state, "registered");
  EXPECT_EQ(suites->get("second")->state, "ready");
  EXPECT_EQ(registry->list().size(), one);  // the two share nothing: first's models all went
  const std::vector<Event> evicted = events.ofType("suite.evicted");
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0].details["suite"], "first");
  EXPECT_EQ(evicted[0].details["reason"], "maxLoaded");
  // Generating with the evicted suite loads it again (and evicts the other).
  generate(small("first"));
  EXPECT_EQ(suites->get("second")->state, "registered");
}

TEST_F(GenerationTest, EverySchedulerAndRefinerModeRuns) {
  importOrDie("tiny", "sdxl/base", "sdxl/refiner");
  for (diffusion::SamplerKind kind :
       {diffusion::SamplerKind::kEuler, diffusion::SamplerKind::kEulerAncestral,
        diffusion::SamplerKind::kDpmpp2mKarras}) {
    for (RefinerMode mode : {RefinerMode::kNever, RefinerMode::kAlways, RefinerMode::kAuto}) {
      SCOPED_TRACE(std::string(diffusion::samplerName(kind)) + " " +
                   std::string(refinerModeName(mode)));
      GenerationRequest request = small("tiny");
      request.scheduler = kind;
      request.refiner.mode = mode;
      const GenerationJob job = generate(request);
      const nlohmann::json& stages = job.report["stages"];
      int steps = 0;
      for (const auto& stage : stages) steps += stage["steps"].get<int>();
      EXPECT_EQ(steps, 20);
      const bool refined = job.report["refiner"]["refine"].get<bool>();
      EXPECT_EQ(stages.size(), refined ? 2u : 1u);
      if (mode == RefinerMode::kAlways) {
        ASSERT_TRUE(refined);
        // The hand-off: the refiner continues the same schedule where the base stopped.
        diffusion::SchedulerConfig config;
        const diffusion::Schedule schedule = *diffusion::makeSchedule(kind, config, 20);
        const int base = *diffusion::baseStepCount(schedule, config, 0.8);
        EXPECT_EQ(stages[0]["steps"], base);
        EXPECT_EQ(stages[1]["beginStep"], base);
        EXPECT_EQ(stages[1]["timesteps"][0], schedule.timesteps[base]);
      }
      if (mode == RefinerMode::kNever) {
        EXPECT_FALSE(refined);
      }
      if (mode == RefinerMode::kAuto) {
        EXPECT_TRUE(job.report["refiner"].contains("before"));
        EXPECT_TRUE(job.report["refiner"].contains("after"));
        EXPECT_FALSE(job.report["refiner"]["reason"].get<std::string>().empty());
      }
    }
  }
  EXPECT_EQ(heldModels(), 0u);
}

TEST_F(GenerationTest, AutoRefinementFollowsTheThresholds) {
  importOrDie("tiny", "sdxl/base", "sdxl/refiner");
  GenerationRequest request = small("tiny");
  request.refiner.mode = RefinerMode::kAuto;
  request.refiner.clippedLimit = 1;  // never by clipping
  request.refiner.minSharpness = 0;  // never by sharpness
  request.refiner.maxNoise = 1e9;    // never by noise
  GenerationJob job = generate(request);
  EXPECT_FALSE(job.report["refiner"]["refine"].get<bool>());
  EXPECT_EQ(job.report["stages"].size(), 1u);
  request.refiner.minSharpness = 1e9;  // every image is "too soft"
  job = generate(request);
  EXPECT_TRUE(job.report["refiner"]["refine"].get<bool>());
  EXPECT_NE(job.report["refiner"]["reason"].get<std::string>().find("sharpness"),
            std::string::npos);
  EXPECT_EQ(job.report["refiner"]["refinerSteps"], job.report["stages"][1]["steps"]);
}

TEST_F(GenerationTest, SameSeedSameBytesAndBatchImagesAreTheirSeeds) {
  importOrDie("tiny", "sdxl/base");
  GenerationRequest request = small("tiny");
  request.scheduler = diffusion::SamplerKind::kEulerAncestral;
  const GenerationJob first = generate(request);
  const GenerationJob second = generate(request);
  const std::string a = service->image(first.id, 0)->bytes;
  EXPECT_EQ(a, service->image(second.id, 0)->bytes);
  request.seed = 2;
  EXPECT_NE(a, service->image(generate(request).id, 0)->bytes);
  // Image 1 of a batch from seed 1 is the image of seed 2 alone.
  request.seed = 1;
  request.batch = 2;
  const GenerationJob batch = generate(request);
  ASSERT_EQ(batch.images.size(), 2u);
  EXPECT_EQ(batch.images[1].seed, 2u);
  request.seed = 2;
  request.batch = 1;
  EXPECT_EQ(service->image(batch.id, 1)->bytes, service->image(generate(request).id, 0)->bytes);
}

TEST_F(GenerationTest, CancelMidRunReleasesTheHeldSuite) {
  importOrDie("tiny", "sdxl/base");
  GenerationRequest request = small("tiny");
  request.steps = 1000;
  request.previewEvery = 0;
  Result<GenerationJob> job = service->submit(request);
  ASSERT_TRUE(job.ok());
  // Wait until it is past the text encoders and inside the UNet loop.
  const auto giveUp = std::chrono::steady_clock::now() + 60s;
  while (service->get(job->id)->step < 2 && std::chrono::steady_clock::now() < giveUp) {
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_GT(heldModels(), 0u);
  EXPECT_EQ(suites->get("tiny")->activeGenerations, 1);
  ASSERT_TRUE(service->cancel(job->id).ok());
  const GenerationJob done = waitFor(job->id);
  EXPECT_EQ(done.state, JobState::kCancelled);
  EXPECT_LT(done.step, 1000);
  EXPECT_EQ(heldModels(), 0u);
  EXPECT_EQ(suites->get("tiny")->activeGenerations, 0);
  EXPECT_TRUE(suites->unload("tiny").ok());  // nothing holds it any more
  EXPECT_EQ(service->cancel(job->id).error().code, ErrorCode::kConflict);
}

TEST_F(GenerationTest, BadRequestsFailBeforeAnyModelRuns) {
  importOrDie("tiny", "sdxl/base");
  const auto refused = [&](GenerationRequest request) {
    Result<GenerationJob> job = service->submit(request);
    EXPECT_FALSE(job.ok());
    return job.ok() ? nlohmann::json()
                    : nlohmann::json{{"code", errorCodeName(job.error().code)},
                                     {"field", job.error().details.value("field", "")}};
  };
  GenerationRequest request = small("tiny");
  request.width = 65;
  EXPECT_EQ(refused(request)["field"], "width");
  request = small("tiny");
  request.steps = 0;
  EXPECT_EQ(refused(request)["field"], "steps");
  request.steps = 10000;
  EXPECT_EQ(refused(request)["field"], "steps");
  request = small("tiny");
  request.guidance = std::nan("");
  EXPECT_EQ(refused(request)["field"], "guidance");
  request = small("tiny");
  request.batch = 0;
  EXPECT_EQ(refused(request)["field"], "batch");
  request = small("tiny");
  request.refiner.mode = RefinerMode::kAlways;  // the suite has no refiner
  EXPECT_EQ(refused(request)["field"], "refiner.mode");
  request = small("tiny");
  request.suite = "nope";
  EXPECT_EQ(refused(request)["code"], "NOT_FOUND");
  request = small("tiny");
  request.width = 4096;
  request.height = 4096;
  request.vae.tiling = TilingMode::kOff;
  EXPECT_EQ(refused(request)["code"], "RESOURCE_EXHAUSTED");
  EXPECT_TRUE(service->list().empty());
  EXPECT_TRUE(registry->list().empty());  // no model was even loaded
}

// Tiled and untiled decodes of the same latents with a GroupNorm-free decoder (receptive field
// vae_flat/receptive_field.json) agree exactly wherever an output pixel came from one tile's
// interior, away from blending.
TEST_F(GenerationTest, TiledDecodeAgreesWithUntiledInTileInteriors) {
  nlohmann::json manifest = {
      {"name", "flat"},
      {"components",
       {{"tokenizer", {{"path", "sdxl/base/tokenizer"}}},
        {"tokenizer_2", {{"path", "sdxl/base/tokenizer_2"}}},
        {"text_encoder", {{"path", "sdxl/base/text_encoder/model.onnx"}}},
        {"text_encoder_2", {{"path", "sdxl/base/text_encoder_2/model.onnx"}}},
        {"unet", {{"path", "sdxl/base/unet/model.onnx"}}},
        {"vae_decoder", {{"path", "sdxl/vae_flat/model.onnx"}}}}}};
  ImportRequest request;
  request.manifest = manifest;
  ASSERT_TRUE(suites->import(request).ok());
  std::ifstream field(kModels / "sdxl/vae_flat/receptive_field.json");
  const int radius = nlohmann::json::parse(field)["latentRadius"].get<int>();

  GenerationRequest generation = small("flat");
  generation.width = 256;
  generation.height = 256;
  generation.steps = 4;
  generation.vae.tiling = TilingMode::kOff;
  const GenerationJob whole = generate(generation);
  generation.vae.tiling = TilingMode::kOn;
  generation.vae.tileLatent = 16;
  generation.vae.overlap = 0.25;
  const GenerationJob tiled = generate(generation);
  EXPECT_EQ(tiled.report["vae"][0]["tiles"], 9);
  EXPECT_TRUE(tiled.report["vae"][0].contains("seamScore"));
  const imaging::Rgb8Image a = imaging::decodePng(service->image(whole.id, 0)->bytes)->image;
  const imaging::Rgb8Image b = imaging::decodePng(service->image(tiled.id, 0)->bytes)->image;
  ASSERT_EQ(a.pixels.size(), b.pixels.size());

  // Latent index i (one axis) is exact when it lies in tile t's crop, outside the blend with
  // the previous tile, and at least `radius` from the tile's inner edges.
  const int latent = 32, tile = 16, stride = 12, blend = 4;
  std::vector<bool> exact(latent, false);
  for (int start = 0; start < latent; start += stride) {
    const int end = std::min(start + tile, latent);  // the tile's latent extent
    const int cropEnd = std::min(start + stride, latent);
    for (int i = start; i < cropEnd; ++i) {
      const bool blended = start > 0 && i < start + blend;
      const bool nearStart = start > 0 && i - start < radius;
      const bool nearEnd = end < latent && end - 1 - i < radius;
      if (!blended && !nearStart && !nearEnd) exact[i] = true;
    }
  }
  int compared = 0, differing = 0;
  for (int y = 0; y < 256; ++y) {
    for (int x = 0; x < 256; ++x) {
      if (!exact[y / 8] || !exact[x / 8]) continue;
      for (int c = 0; c < 3; ++c) {
        ++compared;
        const std::size_t at = static_cast<std::size_t>((y * 256 + x) * 3 + c);
        if (std::abs(a.pixels[at] - b.pixels[at]) > 1) ++differing;
      }
    }
  }
  EXPECT_GT(compared, 256 * 256 * 3 / 4);
  EXPECT_EQ(differing, 0);
  EXPECT_NE(a.pixels, b.pixels);  // the blended bands do differ: the comparison can fail
}

// A small CPU budget: a raw allocation evicts the idle suite's components; the next generation
// reloads them transparently.
class GenerationMemoryTest : public GenerationTest {
 protected:
  memory::MemoryOptions memoryOptions() const override {
    memory::MemoryOptions options;
    const double ram = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
    options.cpuBudgetFraction = (512.0 * (1 << 20)) / ram;
    return options;
  }
};

TEST_F(GenerationMemoryTest, EvictedSuiteReloadsTransparently) {
  importOrDie("tiny", "sdxl/base");
  ASSERT_TRUE(suites->load("tiny").ok());
  Result<memory::DeviceMemoryStatus> status = memoryService->status("cpu0");
  ASSERT_TRUE(status.ok());
  memory::AllocateRequest raw;
  raw.deviceId = "cpu0";
  raw.bytes = status->availableBytes + (4ull << 20);  // fits only once models are evicted
  Result<memory::AllocateResult> allocated = memoryService->allocate(raw);
  ASSERT_TRUE(allocated.ok()) << allocated.error().message;
  EXPECT_FALSE(events.ofType("model.evicted").empty());
  EXPECT_EQ(suites->get("tiny")->state, "partial");
  ASSERT_TRUE(memoryService->release(allocated->record.id).ok());
  generate(small("tiny"));
  std::uint64_t reloads = 0;
  for (const inference::ModelInfo& model : registry->list()) reloads += model.reloads;
  EXPECT_GT(reloads, 0u);
  EXPECT_EQ(suites->get("tiny")->state, "ready");
}

TEST(TensorsTest, HalfConversionRoundsToNearestEven) {
  const std::pair<float, std::uint16_t> kCases[] = {
      {0.0f, 0x0000}, {1.0f, 0x3c00},     {-2.0f, 0xc000}, {65504.0f, 0x7bff},
      {1e6f, 0x7c00}, {5.96e-8f, 0x0001}, {0.1f, 0x2e66},
  };
  for (const auto& [value, half] : kCases) {
    SCOPED_TRACE(value);
    EXPECT_EQ(floatToHalf(value), half);
  }
  EXPECT_EQ(halfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(halfToFloat(0x7bff), 65504.0f);
  EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(std::nanf("")))));
  EXPECT_EQ(floatToHalf(1.0f + 1.0f / 2048), 0x3c00);  // halfway: to even
}

}  // namespace
}  // namespace deviceops::generation
