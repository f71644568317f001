// Generation (issue 13), side by side in one run on one machine:
//   BM_GenerationVsDirectOrt  a whole txt2img job through GenerationService (SuiteManager, the
//                  inference registry, the memory ledger; 256x256, 20 Euler steps, guidance 5, a
//                  negative prompt so both sides are encoded, refiner never, PNG, a preview every
//                  5 steps), paired with the same ONNX Runtime work called directly: one
//                  Ort::Session per model file with the registry's default session options,
//                  text_encoder x2, text_encoder_2 x2, unet x20 at batch 2, vae_decoder x1, on
//                  preallocated inputs of the pipeline's shapes. Each iteration is one pair; the
//                  order alternates. Counters: medians of wall and process CPU time, the ratios
//                  direct/full, and the job report's modelSeconds (per role) and pipelineSeconds.
//   BM_VaeDecode/...  one configuration per fresh child process (this binary, --decode-once):
//                  the bench VAE decoder through inference::Session (the registry's session
//                  class and options) and imaging::tiledDecode (the pipeline's decode), untiled vs
//                  tiled with the tile a quarter of the latent's area. Peak memory = VmHWM after
//                  the decodes - VmRSS before them, with the high-water mark reset after the
//                  session was opened and warmed up (/proc/self/clear_refs 5).
//   BM_TokenizerEncode  clip::ClipTokenizer::encode over a fixed set of prompts (the suite's toy
//                  vocabulary of tests/models/clip_reference_tokenizer.py: 300 merges, not CLIP's
//                  48,894).
// Models: `ninja deviceops_bench_models` (tests/models/make_sdxl_models.py --bench).
// Run: build/bench/generation_bench [--models DIR] [--pairs 10] [--decode-repeats 5]
//      [--report job.json] [Google Benchmark flags]
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <onnxruntime_cxx_api.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <sstream>

#include "common/testing/temp_dir.h"
#include "devices/cpu/cpu_backend.h"
#include "devices/testing/allocators.h"
#include "generation/service.h"
#include "generation/suite_manager.h"
#include "imaging/tiled_decode.h"
#include "inference/session.h"
#include "memory/ledger_store.h"
#include "memory/memory_service.h"

namespace {

using namespace deviceops;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Config {
  fs::path models = DEVICEOPS_BENCH_MODELS_DIR;  // holds sdxl-bench/base
  int pairs = 10;
  int decodeRepeats = 5;
  fs::path reportFile;  // --report: the last timed job's JSON (toJson(GenerationJob)) goes here
} config;

fs::path suiteDir() { return config.models / "sdxl-bench" / "base"; }

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// User + system CPU seconds of this process, all threads.
double processCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

const std::string kPrompt =
    "a photograph of an astronaut riding a horse on the moon, highly detailed, sharp focus";
const std::string kNegativePrompt = "blurry, low quality, watermark";

// --- the full path: Inventory + MemoryService + ModelRegistry + SuiteManager + GenerationService

class GenerationStack {
 public:
  static Result<std::unique_ptr<GenerationStack>> create() {
    auto stack = std::unique_ptr<GenerationStack>(new GenerationStack());
    RETURN_IF_ERROR(stack->start());
    return stack;
  }
  ~GenerationStack() {
    service_.reset();
    suites_.reset();
    if (registry_) registry_->stop();
    registry_.reset();
    if (memory_) memory_->stop();
    if (inventory_) inventory_->stop();
  }

  // Submits and waits for the end of the job's event stream, as an API client would.
  Result<generation::GenerationJob> generate(const generation::GenerationRequest& request) {
    ASSIGN_OR_RETURN(generation::GenerationJob job, service_->submit(request));
    std::uint64_t after = 0;
    for (;;) {
      ASSIGN_OR_RETURN(generation::GenerationEventBatch batch,
                       service_->events(job.id, after, 1000ms));
      if (!batch.events.empty()) after = batch.events.back().sequence;
      if (batch.ended) break;
    }
    ASSIGN_OR_RETURN(generation::GenerationJob done, service_->get(job.id));
    if (done.state != generation::JobState::kSucceeded) {
      return makeError(ErrorCode::kInternal,
                       "generation " + std::string(generation::jobStateName(done.state)) + ": " +
                           (done.error ? done.error->message : std::string("no error")));
    }
    return done;
  }

 private:
  GenerationStack() = default;

  Status start() {
    std::vector<std::unique_ptr<devices::Backend>> backends;
    backends.push_back(devices::makeCpuBackend());
    inventory_ =
        std::make_unique<devices::Inventory>(std::move(backends), devices::InventoryOptions{});
    inventory_->start();
    ASSIGN_OR_RETURN(std::unique_ptr<memory::LedgerStore> store,
                     memory::openSqliteLedgerStore(dir_.path("data")));
    memory_ = std::make_unique<memory::MemoryService>(
        *inventory_, std::move(store), memory::MemoryOptions{},
        devices::testing::makeCpuOrSimulatedAllocator);
    RETURN_IF_ERROR(memory_->start());
    inference::RegistryOptions registryOptions;
    registryOptions.modelRoots = {config.models};
    registryOptions.uploadDirectory = dir_.path("data") / "uploads";
    registryOptions.databaseFile = dir_.path("data") / "registry.db";
    registry_ =
        std::make_unique<inference::ModelRegistry>(*inventory_, *memory_, registryOptions, events_);
    RETURN_IF_ERROR(registry_->start());
    generation::SuiteManagerOptions suiteOptions;
    suiteOptions.modelRoots = {config.models};
    suiteOptions.databaseFile = dir_.path("data") / "suites.db";
    suites_ = std::make_unique<generation::SuiteManager>(*registry_, suiteOptions, events_);
    RETURN_IF_ERROR(suites_->start());
    generation::GenerationOptions options;
    options.directory = dir_.path("data") / "jobs";
    service_ =
        std::make_unique<generation::GenerationService>(*suites_, *registry_, options, events_);
    RETURN_IF_ERROR(service_->start());
    generation::ImportRequest import;
    import.name = "bench";
    import.path = "sdxl-bench/base";
    RETURN_IF_ERROR(suites_->import(import));
    RETURN_IF_ERROR(suites_->load("bench"));
    return Status::success();
  }

  testing::TempDir dir_{"deviceops-generation-bench"};
  NullEventSink events_;
  std::unique_ptr<devices::Inventory> inventory_;
  std::unique_ptr<memory::MemoryService> memory_;
  std::unique_ptr<inference::ModelRegistry> registry_;
  std::unique_ptr<generation::SuiteManager> suites_;
  std::unique_ptr<generation::GenerationService> service_;
};

generation::GenerationRequest benchRequest(std::uint64_t seed) {
  generation::GenerationRequest request;
  request.suite = "bench";
  request.prompt = kPrompt;
  request.negativePrompt = kNegativePrompt;
  request.width = 256;
  request.height = 256;
  request.steps = 20;
  request.guidance = 5;
  request.scheduler = diffusion::SamplerKind::kEuler;
  request.refiner.mode = generation::RefinerMode::kNever;
  request.output = generation::OutputFormat::kPng;
  request.previewEvery = 5;
  request.seed = seed;
  return request;
}

// --- the direct path: the same model files on bare Ort::Sessions --------------------------------

class DirectOrt {
 public:
  static constexpr int kSteps = 20, kLatent = 32, kContext = 2048, kPooled = 1280;

  DirectOrt()
      : env_(ORT_LOGGING_LEVEL_WARNING, "generation-bench"),
        textEncoder_(open("text_encoder")),
        textEncoder2_(open("text_encoder_2")),
        unet_(open("unet")),
        vae_(open("vae_decoder")),
        memory_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)) {
    // Framed ids (bos, then eos as padding): the values do not change the cost; the rest random.
    ids_.assign(77, 49407);
    ids_[0] = 49406;
    std::mt19937 random(7);
    std::normal_distribution<float> normal;
    const auto fill = [&](std::vector<float>& values, std::size_t count) {
      values.resize(count);
      for (float& value : values) value = normal(random);
    };
    fill(sample_, 2 * 4 * kLatent * kLatent);
    fill(context_, 2 * 77 * kContext);
    fill(pooled_, 2 * kPooled);
    timeIds_ = {256, 256, 0, 0, 256, 256, 256, 256, 0, 0, 256, 256};
    fill(latent_, 4 * kLatent * kLatent);
  }

  // One generation's model calls; adds seconds per role to `seconds`.
  void generate(std::map<std::string, double>& seconds) {
    for (int side = 0; side < 2; ++side) {
      auto start = Clock::now();
      run(textEncoder_, {"input_ids"}, ids(), {"hidden_states.11"});
      seconds["text_encoder"] += secondsSince(start);
      start = Clock::now();
      run(textEncoder2_, {"input_ids"}, ids(), {"hidden_states.31", "text_embeds"});
      seconds["text_encoder_2"] += secondsSince(start);
    }
    for (int step = 0; step < kSteps; ++step) {
      const auto start = Clock::now();
      std::vector<Ort::Value> inputs;
      inputs.push_back(floats(sample_, {2, 4, kLatent, kLatent}));
      inputs.push_back(floats(timestep_, {}));
      inputs.push_back(floats(context_, {2, 77, kContext}));
      inputs.push_back(floats(pooled_, {2, kPooled}));
      inputs.push_back(floats(timeIds_, {2, 6}));
      run(unet_, {"sample", "timestep", "encoder_hidden_states", "text_embeds", "time_ids"},
          std::move(inputs), {"out_sample"});
      seconds["unet"] += secondsSince(start);
    }
    const auto start = Clock::now();
    std::vector<Ort::Value> inputs;
    inputs.push_back(floats(latent_, {1, 4, kLatent, kLatent}));
    run(vae_, {"latent_sample"}, std::move(inputs), {"sample"});
    seconds["vae_decoder"] += secondsSince(start);
  }

 private:
  // The registry's defaults (inference::SessionOptions): all graph optimizations, ONNX Runtime's
  // default intra- and inter-op threads, CPU arena and memory pattern on, sequential execution.
  Ort::Session open(const std::string& component) {
    Ort::SessionOptions options;
    options.SetGraphOptimizationLevel(ORT_ENABLE_ALL);
    options.SetIntraOpNumThreads(0);
    options.SetInterOpNumThreads(0);
    options.EnableCpuMemArena();
    options.EnableMemPattern();
    return Ort::Session(env_, (suiteDir() / component / "model.onnx").c_str(), options);
  }

  Ort::Value floats(std::vector<float>& values, std::vector<std::int64_t> shape) {
    return Ort::Value::CreateTensor<float>(memory_, values.data(), values.size(), shape.data(),
                                           shape.size());
  }
  std::vector<Ort::Value> ids() {
    const std::array<std::int64_t, 2> shape{1, 77};
    std::vector<Ort::Value> values;
    values.push_back(Ort::Value::CreateTensor<std::int64_t>(memory_, ids_.data(), ids_.size(),
                                                            shape.data(), shape.size()));
    return values;
  }

  static void run(Ort::Session& session, std::vector<const char*> inputNames,
                  std::vector<Ort::Value> inputs, std::vector<const char*> outputNames) {
    std::vector<Ort::Value> outputs =
        session.Run(Ort::RunOptions{nullptr}, inputNames.data(), inputs.data(), inputs.size(),
                    outputNames.data(), outputNames.size());
    benchmark::DoNotOptimize(outputs.data());
  }

  Ort::Env env_;
  Ort::Session textEncoder_, textEncoder2_, unet_, vae_;
  Ort::MemoryInfo memory_;
  std::vector<std::int64_t> ids_;
  std::vector<float> sample_, timestep_{500.0f}, context_, pooled_, timeIds_, latent_;
};

void BM_GenerationVsDirectOrt(benchmark::State& state) {
  if (!fs::exists(suiteDir() / "unet" / "model.onnx")) {
    state.SkipWithError("bench models missing: ninja deviceops_bench_models");
    return;
  }
  Result<std::unique_ptr<GenerationStack>> stack = GenerationStack::create();
  if (!stack.ok()) {
    state.SkipWithError(("generation stack: " + stack.error().message).c_str());
    return;
  }
  std::unique_ptr<DirectOrt> direct;
  try {
    direct = std::make_unique<DirectOrt>();
  } catch (const Ort::Exception& exception) {
    state.SkipWithError(exception.what());
    return;
  }
  // One warm-up of each, not counted (the registry already ran its one warm-up run per model).
  std::map<std::string, double> directRoles;
  direct->generate(directRoles);
  directRoles.clear();
  if (Result<generation::GenerationJob> warm = (*stack)->generate(benchRequest(1)); !warm.ok()) {
    state.SkipWithError(warm.error().message.c_str());
    return;
  }

  std::vector<double> fullWall, directWall, fullCpu, directCpu, pairedRatio, pipelineSeconds,
      reportTotal;
  std::map<std::string, std::vector<double>> fullRoles;
  int pair = 0;
  for (auto _ : state) {
    double full = 0, directSeconds = 0;
    const auto runFull = [&]() -> bool {
      const double cpu = processCpuSeconds();
      const auto start = Clock::now();
      Result<generation::GenerationJob> job = (*stack)->generate(benchRequest(100 + pair));
      full = secondsSince(start);
      fullCpu.push_back(processCpuSeconds() - cpu);
      if (!job.ok()) {
        state.SkipWithError(job.error().message.c_str());
        return false;
      }
      if (!config.reportFile.empty()) {
        std::ofstream(config.reportFile) << generation::toJson(*job).dump(2) << "\n";
      }
      const nlohmann::json& report = job->report;
      pipelineSeconds.push_back(report.value("pipelineSeconds", 0.0));
      reportTotal.push_back(report.value("totalSeconds", 0.0));
      for (const auto& [role, value] : report.at("modelSeconds").items()) {
        fullRoles[role].push_back(value.get<double>());
      }
      return true;
    };
    const auto runDirect = [&] {
      const double cpu = processCpuSeconds();
      const auto start = Clock::now();
      direct->generate(directRoles);
      directSeconds = secondsSince(start);
      directCpu.push_back(processCpuSeconds() - cpu);
    };
    if (pair % 2 == 0) {
      runDirect();
      if (!runFull()) return;
    } else {
      if (!runFull()) return;
      runDirect();
    }
    fullWall.push_back(full);
    directWall.push_back(directSeconds);
    pairedRatio.push_back(directSeconds / full);
    state.SetIterationTime(full);
    ++pair;
  }
  const double ms = 1000;
  state.counters["full_ms"] = median(fullWall) * ms;
  state.counters["direct_ms"] = median(directWall) * ms;
  state.counters["ratio"] = median(directWall) / median(fullWall);
  state.counters["paired_ratio"] = median(pairedRatio);
  state.counters["full_cpu_ms"] = median(fullCpu) * ms;
  state.counters["direct_cpu_ms"] = median(directCpu) * ms;
  state.counters["cpu_ratio"] = median(directCpu) / median(fullCpu);
  state.counters["job_total_ms"] = median(reportTotal) * ms;
  state.counters["job_pipeline_ms"] = median(pipelineSeconds) * ms;
  for (const auto& [role, values] : fullRoles) {
    state.counters["job_" + role + "_ms"] = median(values) * ms;
  }
  for (const auto& [role, total] : directRoles) {
    state.counters["direct_" + role + "_ms"] = total / pair * ms;
  }
}

// --- tiled vs untiled decode, one configuration per child process ------------------------------

std::optional<std::uint64_t> statusBytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field + ":", 0) == 0) {
      std::istringstream in(line.substr(field.size() + 1));
      std::uint64_t kib = 0;
      in >> kib;
      return kib * 1024;
    }
  }
  return std::nullopt;
}

// Linux >= 4.0: writing 5 to clear_refs sets VmHWM to the current VmRSS.
bool resetHighWaterMark() {
  std::ofstream clearRefs("/proc/self/clear_refs");
  clearRefs << "5" << std::flush;
  return static_cast<bool>(clearRefs);
}

// Child mode: decode a random latent of latent x latent `repeats` times with tiles of `tile`
// (tile >= latent: one untiled call, as the pipeline does). Prints one line of key=value.
int decodeOnce(int latent, int tile, int repeats) {
  spdlog::set_level(spdlog::level::warn);
  const fs::path file = suiteDir() / "vae_decoder" / "model.onnx";
  Result<std::unique_ptr<inference::Session>> session =
      inference::Session::open(file, inference::SessionOptions{});
  if (!session.ok()) {
    std::cerr << session.error().message << "\n";
    return 1;
  }
  if (Status warm = (*session)->warmUp(); !warm.ok()) {  // what the registry does at load
    std::cerr << warm.error().message << "\n";
    return 1;
  }
  std::vector<float> values(static_cast<std::size_t>(4 * latent * latent));
  std::mt19937 random(3);
  std::normal_distribution<float> normal;
  for (float& value : values) value = normal(random);
  const bool tiled = tile < latent;
  imaging::TilingOptions options;
  options.tileLatent = tiled ? tile : latent;
  options.overlap = tiled ? 0.25 : 0;
  const imaging::TileDecoder decodeTile = [&](std::vector<float> data, int height,
                                              int width) -> Result<imaging::PlanarImage> {
    std::vector<inference::Tensor> inputs(1);
    inputs[0].name = "latent_sample";
    inputs[0].type = inference::DataType::kFp32;
    inputs[0].shape = {1, 4, height, width};
    inputs[0].data.resize(data.size() * sizeof(float));
    std::memcpy(inputs[0].data.data(), data.data(), inputs[0].data.size());
    ASSIGN_OR_RETURN(std::vector<inference::Tensor> outputs, (*session)->run(inputs, {"sample"}));
    imaging::PlanarImage image;
    image.channels = 3;
    image.height = height * 8;
    image.width = width * 8;
    image.data.resize(outputs.at(0).data.size() / sizeof(float));
    std::memcpy(image.data.data(), outputs.at(0).data.data(), outputs.at(0).data.size());
    return image;
  };
  // Reset the high-water mark to the current RSS: session creation peaks above the steady state.
  const bool reset = resetHighWaterMark();
  const std::uint64_t before = statusBytes("VmRSS").value_or(0);
  std::vector<double> times;
  imaging::TilingReport report;
  for (int i = 0; i < repeats; ++i) {
    const auto start = Clock::now();
    Result<imaging::PlanarImage> image =
        imaging::tiledDecode(values, 4, latent, latent, options, decodeTile, &report);
    times.push_back(secondsSince(start));
    if (!image.ok()) {
      std::cerr << image.error().message << "\n";
      return 1;
    }
    benchmark::DoNotOptimize(image->data.data());
  }
  const std::uint64_t peak = statusBytes("VmHWM").value_or(0);
  std::vector<double> warm(times.begin() + (times.size() > 1 ? 1 : 0), times.end());
  std::cout << fmt::format(
      "tiles={} rss_before={} peak={} peak_delta={} hwm_reset={} first_ms={:.3f} "
      "median_ms={:.3f}\n",
      report.tiles, before, peak, peak - std::min(peak, before), reset ? 1 : 0, times[0] * 1000,
      median(warm) * 1000);
  return 0;
}

std::map<std::string, double> parseKeyValues(const std::string& line) {
  std::map<std::string, double> values;
  std::istringstream in(line);
  for (std::string pair; in >> pair;) {
    const std::size_t equals = pair.find('=');
    if (equals != std::string::npos)
      values[pair.substr(0, equals)] = std::stod(pair.substr(equals + 1));
  }
  return values;
}

void BM_VaeDecode(benchmark::State& state, int latent, int tile) {
  if (!fs::exists(suiteDir() / "vae_decoder" / "model.onnx")) {
    state.SkipWithError("bench models missing: ninja deviceops_bench_models");
    return;
  }
  const std::string command = fmt::format(
      "'{}' --models '{}' --decode-once {} {} {}", fs::read_symlink("/proc/self/exe").string(),
      config.models.string(), latent, tile, config.decodeRepeats);
  std::map<std::string, double> values;
  for (auto _ : state) {
    std::string output;
    if (FILE* pipe = popen(command.c_str(), "r")) {
      char buffer[512];
      while (fgets(buffer, sizeof buffer, pipe)) output += buffer;
      if (pclose(pipe) != 0) output.clear();
    }
    values = parseKeyValues(output);
    if (!values.count("median_ms")) {
      state.SkipWithError(("child failed: " + command).c_str());
      return;
    }
    state.SetIterationTime(values["median_ms"] / 1000);
  }
  const double mib = 1024.0 * 1024.0;
  state.counters["image_px"] = latent * 8;
  state.counters["tiles"] = values["tiles"];
  state.counters["median_ms"] = values["median_ms"];
  state.counters["first_ms"] = values["first_ms"];
  state.counters["peak_delta_MiB"] = values["peak_delta"] / mib;
  state.counters["rss_before_MiB"] = values["rss_before"] / mib;
  state.counters["hwm_reset"] = values["hwm_reset"];
}

// --- tokenizer ---------------------------------------------------------------------------------

const std::vector<std::string> kPrompts = {
    "a photo of a cat",
    "a photograph of an astronaut riding a horse on the moon, highly detailed, sharp focus",
    "portrait of a woman in a red dress, golden hour, 85mm, bokeh, film grain, kodak portra 400",
    "A cozy cabin in the snowy mountains at night, warm light from the windows, stars, aurora "
    "borealis, digital painting, trending on artstation",
    "masterpiece, best quality, (ultra detailed:1.2), 1girl, solo, long hair, looking at viewer, "
    "smile, school uniform, cherry blossoms, wind, depth of field",
    "isometric view of a tiny futuristic city on a floating island, waterfalls, lush vegetation, "
    "low poly, octane render, 4k",
    "blurry, low quality, worst quality, jpeg artifacts, watermark, text, signature, deformed "
    "hands, extra fingers, mutated, bad anatomy",
    "an oil painting of a ship in a storm by ivan aivazovsky, dramatic lighting, huge waves, "
    "dark clouds, lightning, seagulls, spray, rope, sails torn, sailors fighting the wind, the "
    "moon breaking through the clouds over the horizon, museum quality, high resolution scan "
    "of the original canvas with visible brush strokes and craquelure",
    "Ein Foto einer Katze auf einem Sofa, Café im Hintergrund, naïve Kunst",
    "cyberpunk street market in the rain, neon signs, reflections on wet asphalt, crowded, "
    "cinematic, anamorphic lens flare, 35mm photograph",
    "a bowl of ramen, steam, chopsticks, top-down, food photography, soft natural light",
    "line art of a fox, minimal, black and white, vector, 2 colors",
};

void BM_TokenizerEncode(benchmark::State& state) {
  Result<clip::ClipTokenizer> tokenizer = clip::ClipTokenizer::load(suiteDir() / "tokenizer");
  if (!tokenizer.ok()) {
    state.SkipWithError(tokenizer.error().message.c_str());
    return;
  }
  std::int64_t tokens = 0;
  for (auto _ : state) {
    for (const std::string& prompt : kPrompts) {
      clip::Encoding encoding = tokenizer->encode(prompt);
      tokens += encoding.tokenCount;
      benchmark::DoNotOptimize(encoding.ids.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kPrompts.size()));
  state.counters["tokens_per_prompt"] =
      static_cast<double>(tokens) / static_cast<double>(state.iterations() * kPrompts.size());
  state.counters["vocabulary"] = static_cast<double>(tokenizer->vocabularySize());
}
BENCHMARK(BM_TokenizerEncode);

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--models" && i + 1 < argc) {
      config.models = argv[++i];
    } else if (arg == "--pairs" && i + 1 < argc) {
      config.pairs = std::stoi(argv[++i]);
    } else if (arg == "--report" && i + 1 < argc) {
      config.reportFile = argv[++i];
    } else if (arg == "--decode-repeats" && i + 1 < argc) {
      config.decodeRepeats = std::stoi(argv[++i]);
    } else if (arg == "--decode-once" && i + 3 < argc) {
      return decodeOnce(std::stoi(argv[i + 1]), std::stoi(argv[i + 2]), std::stoi(argv[i + 3]));
    } else {
      rest.push_back(argv[i]);
    }
  }
  spdlog::set_level(spdlog::level::warn);
  benchmark::RegisterBenchmark("BM_GenerationVsDirectOrt/pairs", BM_GenerationVsDirectOrt)
      ->Iterations(config.pairs)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
  // Untiled vs tiled at 4x the area of one tile (tile side = latent / 2, overlap 0.25).
  for (const int latent : {64, 128}) {
    for (const bool tiled : {false, true}) {
      const int tile = tiled ? latent / 2 : latent;
      benchmark::RegisterBenchmark(
          fmt::format("BM_VaeDecode/{}/{}px", tiled ? "tiled" : "untiled", latent * 8).c_str(),
          [latent, tile](benchmark::State& state) { BM_VaeDecode(state, latent, tile); })
          ->Iterations(1)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  int count = static_cast<int>(rest.size());
  benchmark::Initialize(&count, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
