// How long device enumeration takes, per backend, and what the background refresh costs.
//
//   enumeration_bench [--benchmark_* flags]   Google Benchmark runs (in-process, repeated):
//     BM_ColdOpen/<backend>    construct + open() + first poll() (destruction not timed)
//     BM_Poll/<backend>        one poll() of an open backend: the cost of the 1 s refresh
//     BM_InventoryStart        Inventory{cpu, vulkan}: construct + start() until the first snapshot
//   enumeration_bench --cold-once <backend|inventory>
//     One cold enumeration in this fresh process, printed as
//     "cold-once backend=<name> ms=<milliseconds> devices=<n>" (or "... skipped=<reason>"), then
//     exit. The first dlopen of a vendor library in a process (loader, ICD JSON scan, driver
//     initialisation) is the real cold cost; in-process repeats only show it once, so bench/run.sh
//     runs this mode in fresh processes, side by side with `vulkaninfo --summary`.
//
// A backend that is unavailable on this machine is reported as skipped with the reason.
#include <benchmark/benchmark.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "devices/amd/amd_backend.h"
#include "devices/cpu/cpu_backend.h"
#include "devices/device.h"
#include "devices/inventory.h"
#include "devices/nvidia/nvidia_backend.h"
#include "devices/vulkan/vulkan_backend.h"

namespace {

using namespace deviceops;
using namespace deviceops::devices;
using SteadyClock = std::chrono::steady_clock;
using BackendFactory = std::function<std::unique_ptr<Backend>()>;

struct NamedFactory {
  std::string_view name;
  BackendFactory make;
};

const std::vector<NamedFactory>& backendFactories() {
  static const std::vector<NamedFactory> kFactories = {
      {"cpu", [] { return makeCpuBackend(); }},
      {"vulkan", [] { return makeVulkanBackend(); }},
      {"nvidia", [] { return makeNvidiaBackend(); }},
      {"amd", [] { return makeAmdBackend(); }},
  };
  return kFactories;
}

double millisecondsSince(SteadyClock::time_point started) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - started).count();
}

// The outcome of one construct + open() + first poll().
struct Enumeration {
  std::unique_ptr<Backend> backend;  // open on success, so destruction can happen untimed
  std::string error;                 // empty on success
  std::size_t deviceCount = 0;
};

Enumeration enumerate(const BackendFactory& make) {
  Enumeration result;
  result.backend = make();
  if (Status opened = result.backend->open(); !opened.ok()) {
    result.error = "open(): " + opened.error().message;
    return result;
  }
  auto polled = result.backend->poll();
  if (!polled.ok()) {
    result.error = "first poll(): " + polled.error().message;
    return result;
  }
  result.deviceCount = polled->size();
  return result;
}

std::vector<std::unique_ptr<Backend>> inventoryBackends() {
  std::vector<std::unique_ptr<Backend>> backends;
  backends.push_back(makeCpuBackend());
  backends.push_back(makeVulkanBackend());
  return backends;
}

void coldOpen(benchmark::State& state, const BackendFactory& make) {
  for (auto _ : state) {
    const auto started = SteadyClock::now();
    Enumeration enumeration = enumerate(make);
    const double seconds = millisecondsSince(started) / 1000.0;
    if (!enumeration.error.empty()) {
      state.SkipWithError(("unavailable: " + enumeration.error).c_str());
      break;
    }
    state.SetIterationTime(seconds);
    state.counters["devices"] = static_cast<double>(enumeration.deviceCount);
  }
}

void steadyPoll(benchmark::State& state, const BackendFactory& make) {
  Enumeration enumeration = enumerate(make);
  if (!enumeration.error.empty()) {
    state.SkipWithError(("unavailable: " + enumeration.error).c_str());
    return;
  }
  for (auto _ : state) {
    auto polled = enumeration.backend->poll();
    if (!polled.ok()) {
      state.SkipWithError(("poll(): " + polled.error().message).c_str());
      break;
    }
    benchmark::DoNotOptimize(polled->data());
  }
  state.counters["devices"] = static_cast<double>(enumeration.deviceCount);
}

void inventoryStart(benchmark::State& state) {
  for (auto _ : state) {
    const auto started = SteadyClock::now();
    Inventory inventory(inventoryBackends(), InventoryOptions{});
    inventory.start();
    const double seconds = millisecondsSince(started) / 1000.0;
    state.SetIterationTime(seconds);
    state.counters["devices"] = static_cast<double>(inventory.snapshot()->devices.size());
    inventory.stop();  // untimed: joins the pollers
  }
}

// --cold-once: one enumeration in this process; returns the exit status.
int coldOnce(std::string_view which) {
  const auto started = SteadyClock::now();
  if (which == "inventory") {
    Inventory inventory(inventoryBackends(), InventoryOptions{});
    inventory.start();
    const double milliseconds = millisecondsSince(started);
    const auto snapshot = inventory.snapshot();
    std::printf("cold-once backend=inventory ms=%.3f devices=%zu\n", milliseconds,
                snapshot->devices.size());
    inventory.stop();
    return 0;
  }
  for (const NamedFactory& factory : backendFactories()) {
    if (factory.name != which) continue;
    Enumeration enumeration = enumerate(factory.make);
    const double milliseconds = millisecondsSince(started);
    if (!enumeration.error.empty()) {
      std::printf("cold-once backend=%s ms=%.3f skipped=%s\n", std::string(which).c_str(),
                  milliseconds, enumeration.error.c_str());
      return 0;
    }
    std::printf("cold-once backend=%s ms=%.3f devices=%zu\n", std::string(which).c_str(),
                milliseconds, enumeration.deviceCount);
    return 0;
  }
  std::fprintf(stderr,
               "enumeration_bench: --cold-once expects cpu, vulkan, nvidia, amd or "
               "inventory, not '%s'\n",
               std::string(which).c_str());
  return 2;
}

void registerBenchmarks() {
  for (const NamedFactory& factory : backendFactories()) {
    const std::string name(factory.name);
    auto cold = [make = factory.make](benchmark::State& state) { coldOpen(state, make); };
    benchmark::RegisterBenchmark(("BM_ColdOpen/" + name).c_str(), cold)
        ->Iterations(20)
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
  for (const NamedFactory& factory : backendFactories()) {
    const std::string name(factory.name);
    auto poll = [make = factory.make](benchmark::State& state) { steadyPoll(state, make); };
    benchmark::RegisterBenchmark(("BM_Poll/" + name).c_str(), poll)->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("BM_InventoryStart/cpu+vulkan", inventoryStart)
      ->Iterations(20)
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  // Backends log "unavailable" at info; keep the benchmark output clean.
  spdlog::set_level(spdlog::level::warn);
  if (argc >= 2 && std::strcmp(argv[1], "--cold-once") == 0) {
    if (argc != 3) {
      std::fprintf(stderr,
                   "usage: enumeration_bench --cold-once <cpu|vulkan|nvidia|amd|inventory>\n");
      return 2;
    }
    return coldOnce(argv[2]);
  }
  registerBenchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
