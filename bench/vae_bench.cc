// Custom VAE (issue 14): what applying a weights file costs, beside the baseline of opening the
// suite's decoder as it is. Both on an SDXL-sized decoder (the default config of
// scripts/export_vae.py, 49.5 M parameters, random weights), with the same ONNX Runtime session
// options (ORT's defaults: all graph optimisations, CPU):
//   BM_SessionFromFile   Ort::Session from the decoder's .onnx file (what loading a stock suite
//                        component costs).
//   BM_ReadPatchSession  the custom-VAE path: vae::readVaeWeights of the .safetensors (the whole
//                        decoder's 49.5 M parameters, F32, 198 MB), reading
//                        the decoder's bytes, vae::patchVaeModel (parse, replace every decoder
//                        initializer, serialise) and Ort::Session from those bytes. Counters: the
//                        median of each phase in milliseconds.
// Models: `ninja deviceops_bench_models` (export_vae.py --random-weights 1 into
// test-models/vae-bench). Run: build/bench/vae_bench [--models DIR] [Google Benchmark flags]
#include <benchmark/benchmark.h>
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "vae/onnx_patch.h"
#include "vae/vae_weights.h"

namespace {

using namespace deviceops;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

fs::path models = DEVICEOPS_BENCH_MODELS_DIR;
fs::path decoderFile() { return models / "vae-bench" / "vae_decoder" / "model.onnx"; }
fs::path weightsFile() { return models / "vae-bench" / "weights.safetensors"; }

Ort::Env& env() {
  static Ort::Env instance(ORT_LOGGING_LEVEL_WARNING, "vae_bench");
  return instance;
}

double millisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t middle = values.size() / 2;
  return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

void BM_SessionFromFile(benchmark::State& state) {
  const Ort::SessionOptions options;
  for (auto _ : state) {
    Ort::Session session(env(), decoderFile().c_str(), options);
    benchmark::DoNotOptimize(session);
  }
}

void BM_ReadPatchSession(benchmark::State& state) {
  const Ort::SessionOptions options;
  std::vector<double> read, patch, session;
  for (auto _ : state) {
    auto start = Clock::now();
    Result<vae::VaeWeights> weights = vae::readVaeWeights(weightsFile());
    if (!weights.ok()) {
      state.SkipWithError(weights.error().message.c_str());
      return;
    }
    std::ifstream in(decoderFile(), std::ios::binary);
    std::ostringstream original;
    original << in.rdbuf();
    read.push_back(millisecondsSince(start));
    start = Clock::now();
    vae::PatchReport report;
    Result<std::string> patched =
        vae::patchVaeModel(original.str(), vae::VaePart::kDecoder, *weights, report);
    if (!patched.ok()) {
      state.SkipWithError(patched.error().message.c_str());
      return;
    }
    patch.push_back(millisecondsSince(start));
    start = Clock::now();
    Ort::Session created(env(), patched->data(), patched->size(), options);
    benchmark::DoNotOptimize(created);
    session.push_back(millisecondsSince(start));
    state.counters["patched"] = static_cast<double>(report.patched);
    state.counters["parameters"] = static_cast<double>(report.parameters);
  }
  state.counters["readMs"] = median(read);
  state.counters["patchMs"] = median(patch);
  state.counters["sessionMs"] = median(session);
}

BENCHMARK(BM_SessionFromFile)->Unit(benchmark::kMillisecond)->Iterations(5);
BENCHMARK(BM_ReadPatchSession)->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--models") == 0) {
      models = argv[i + 1];
      for (int j = i; j + 2 <= argc; ++j) argv[j] = argv[j + 2];
      argc -= 2;
      break;
    }
  }
  if (!fs::exists(decoderFile()) || !fs::exists(weightsFile())) {
    std::cerr << "missing " << decoderFile() << " or " << weightsFile()
              << ": run `ninja deviceops_bench_models`\n";
    return 2;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
