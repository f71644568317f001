// Telemetry (issue 5), Google Benchmark. Run: build/bench/telemetry_bench
//   BM_SamplingCpu/<mode>   process CPU time (getrusage: every thread) over TELEMETRY_BENCH_SECONDS
//                           (default 20) of wall time, 8 simulated devices + the real cpu backend,
//                           inventory polling at 1 Hz; mode sampler = + Sampler at 1 Hz, writer and
//                           SQLite store; inventory = the same without telemetry (the baseline).
//   BM_Insert/<store>/<n>   TelemetryStore::write of n samples per transaction (n = 8: one tick
//                           of 8 devices; 1000: catching up after an outage), rollups included.
//   BM_Statistics/<store>/<window>  statistics for one device over 30 days of 1 Hz samples
//                           (2,592,000 rows, bulk loaded by SQL into schema v1 and rolled up by
//                           the v1 -> v2 migration), windows 1h (raw), 24h (1m), 30d (1h), and
//                           30d_raw (forced raw resolution: every row read).
// PostgreSQL 15 runs from the Debian package in a temporary directory with fsync=on,
// synchronous_commit=off, full_page_writes=on: committed data survives a crash of the server, the
// last commits may be lost on power loss, as with SQLite's WAL + synchronous=NORMAL.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "devices/cpu/cpu_backend.h"
#include "devices/simulated/simulated_backend.h"
#include "devices/testing/allocators.h"
#include "memory/ledger_store.h"
#include "store/sqlite.h"
#include "store/testing/postgres_server.h"
#include "telemetry/telemetry_service.h"

namespace {

using namespace deviceops;
using namespace deviceops::telemetry;
using namespace std::chrono_literals;

constexpr std::int64_t kDayMs = 24 * kHourMs;
constexpr std::int64_t kBulkSamples = 30 * 24 * 3600;

std::filesystem::path tempDirectory() {
  char pattern[] = "/tmp/deviceops-telemetry-bench-XXXXXX";
  return ::mkdtemp(pattern);
}

double processCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

deviceops::testing::PostgresServer* postgres() {
  static std::unique_ptr<deviceops::testing::PostgresServer> server;
  static bool started = [] {
    server = std::make_unique<deviceops::testing::PostgresServer>();
    server->addSetting("fsync", "on");
    server->addSetting("synchronous_commit", "off");
    server->addSetting("full_page_writes", "on");
    Status status = server->start();
    if (!status.ok()) std::fprintf(stderr, "PostgreSQL: %s\n", status.error().message.c_str());
    return status.ok();
  }();
  return started ? server.get() : nullptr;
}

// --- sampling CPU -------------------------------------------------------------------------------

void BM_SamplingCpu(benchmark::State& state) {
  const bool withSampler = state.range(0) == 1;
  const char* seconds = std::getenv("TELEMETRY_BENCH_SECONDS");
  const auto duration = std::chrono::seconds(seconds != nullptr ? std::atoi(seconds) : 20);
  const std::filesystem::path directory = tempDirectory();
  devices::SimulatedBackendOptions simulated;
  simulated.devices.resize(8);
  std::vector<std::unique_ptr<devices::Backend>> backends;
  backends.push_back(devices::makeCpuBackend());
  backends.push_back(devices::makeSimulatedBackend(simulated));
  devices::InventoryOptions inventoryOptions;
  inventoryOptions.pollInterval = 1s;
  devices::Inventory inventory(std::move(backends), inventoryOptions);
  inventory.start();
  auto ledger = memory::openSqliteLedgerStore(directory);
  memory::MemoryService memoryService(inventory, std::move(ledger.value()), {},
                                      devices::testing::makeCpuOrSimulatedAllocator);
  (void)memoryService.start();
  std::unique_ptr<TelemetryService> service;
  if (withSampler) {
    auto store = openSqliteTelemetryStore(directory / "telemetry.db");
    if (!store.ok()) {
      state.SkipWithError(store.error().message.c_str());
      return;
    }
    TelemetryOptions options;
    options.node = "bench";
    options.interval = 1s;
    service = std::make_unique<TelemetryService>(std::move(store.value()), inventory,
                                                 &memoryService, options);
    service->start();
  }
  std::this_thread::sleep_for(2s);  // past start-up work (first polls, migrations)
  for (auto _ : state) {
    const double cpuBefore = processCpuSeconds();
    const auto wallBefore = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(duration);
    const double cpu = processCpuSeconds() - cpuBefore;
    const double wall =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wallBefore).count();
    state.SetIterationTime(wall);
    state.counters["cpu_percent_of_core"] = 100.0 * cpu / wall;
    state.counters["cpu_ms_per_second"] = 1000.0 * cpu / wall;
  }
  if (service) {
    state.counters["samples"] = static_cast<double>(service->sampler().sampleCount());
    service->stop();
    state.counters["written"] = static_cast<double>(service->writer().counters().samplesWritten);
  }
  memoryService.stop();
  inventory.stop();
  std::filesystem::remove_all(directory);
}
BENCHMARK(BM_SamplingCpu)
    ->ArgName("sampler")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kSecond);

// --- insert rate
// ----------------------------------------------------------------------------------

std::unique_ptr<TelemetryStore> freshStore(bool postgresStore, const std::string& name) {
  if (postgresStore) {
    auto* server = postgres();
    if (server == nullptr) return nullptr;
    auto connection = server->createDatabase(name);
    if (!connection.ok()) return nullptr;
    auto store = openPostgresTelemetryStore(*connection);
    return store.ok() ? std::move(store.value()) : nullptr;
  }
  auto store = openSqliteTelemetryStore(tempDirectory() / "telemetry.db");
  return store.ok() ? std::move(store.value()) : nullptr;
}

DeviceSample benchSample(std::int64_t tick, int device) {
  DeviceSample s;
  s.node = "bench";
  s.deviceId = "sim-" + std::to_string(device);
  s.time = fromMillis(1'767'225'600'000 + tick * 1000);
  s.intervalSeconds = 1;
  s.temperatureCelsius = 50.0 + static_cast<double>(tick % 30);
  s.utilizationRatio = static_cast<double>(tick % 100) / 100.0;
  s.memoryUsedBytes = static_cast<std::uint64_t>(tick % 1000) * 1'000'000;
  s.memoryFreeBytes = 16'000'000'000;
  s.memoryTotalBytes = 16'000'000'000;
  s.powerWatts = 200.0 + static_cast<double>(tick % 50);
  s.clockMhz = 1410;
  s.health = "healthy";
  s.heldBytesByKind = {{"model", 0}, {"raw", 0}, {"training", 0}};
  return s;
}

void BM_Insert(benchmark::State& state) {
  const bool postgresStore = state.range(0) == 1;
  const auto batchSize = static_cast<int>(state.range(1));
  static int databases = 0;
  auto store = freshStore(postgresStore, "insert_" + std::to_string(databases++));
  if (!store) {
    state.SkipWithError("store did not open");
    return;
  }
  std::int64_t tick = 0;
  for (auto _ : state) {
    state.PauseTiming();
    WriteBatch batch;
    for (int i = 0; i < batchSize; ++i) batch.samples.push_back(benchSample(tick + i / 8, i % 8));
    tick += batchSize / 8;
    state.ResumeTiming();
    Status written = store->write(batch);
    if (!written.ok()) {
      state.SkipWithError(written.error().message.c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * batchSize);
}
BENCHMARK(BM_Insert)
    ->ArgNames({"postgres", "samples"})
    ->Args({0, 8})
    ->Args({0, 1000})
    ->Args({1, 8})
    ->Args({1, 1000})
    ->Unit(benchmark::kMillisecond);

// --- statistics over 30 days
// ----------------------------------------------------------------------

constexpr std::int64_t kBulkEndMs = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
constexpr std::int64_t kBulkStartMs = kBulkEndMs - 30 * kDayMs;

// Columns and values of the bulk load; `i` is the sample index (0 .. kBulkSamples - 1).
std::string bulkSelect(const std::string& index) {
  return "'bench', 'sim-0', " + std::to_string(kBulkStartMs) + " + " + index +
         " * 1000, 1.0, 50 + (" + index + " % 600) / 20.0, (" + index + " % 100) / 100.0, (" +
         index + " % 1000) * 1000000, 16000000000, 200 + (" + index + " % 300), CASE WHEN " +
         index + " % 3600 < 60 THEN 1 ELSE 0 END, CASE WHEN " + index +
         " % 86400 < 300 THEN 'degraded' ELSE 'healthy' END";
}
constexpr const char* kBulkColumns =
    "node, device_id, time_ms, interval_seconds, temperature_celsius, utilization_ratio,"
    " memory_used_bytes, memory_total_bytes, power_watts, throttled, health";

struct Loaded {
  std::unique_ptr<TelemetryStore> store;
  double loadSeconds = 0;
  double migrateSeconds = 0;
};

Loaded loadThirtyDays(bool postgresStore) {
  Loaded loaded;
  const auto started = std::chrono::steady_clock::now();
  std::string connection;
  std::filesystem::path path;
  if (postgresStore) {
    auto* server = postgres();
    if (server == nullptr) return loaded;
    auto created = server->createDatabase("thirty_days");
    if (!created.ok()) return loaded;
    connection = *created;
    if (!openPostgresTelemetryStoreAtVersion(connection, 1).ok()) return loaded;
    Status inserted = server->execute(
        "thirty_days", std::string("INSERT INTO samples (") + kBulkColumns + ") SELECT " +
                           bulkSelect("i") + " FROM generate_series(0::bigint, " +
                           std::to_string(kBulkSamples - 1) + ") AS i; ANALYZE samples;");
    if (!inserted.ok()) {
      std::fprintf(stderr, "bulk load: %s\n", inserted.error().message.c_str());
      return loaded;
    }
  } else {
    path = tempDirectory() / "telemetry.db";
    if (!openSqliteTelemetryStoreAtVersion(path, 1).ok()) return loaded;
    auto database = store::SqliteDatabase::open(path);
    Status inserted = (*database)->exec(
        "WITH RECURSIVE t(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM t WHERE i < " +
        std::to_string(kBulkSamples - 1) + ") INSERT INTO samples (" + kBulkColumns + ") SELECT " +
        bulkSelect("i") + " FROM t; ANALYZE;");
    if (!inserted.ok()) {
      std::fprintf(stderr, "bulk load: %s\n", inserted.error().message.c_str());
      return loaded;
    }
  }
  const auto loadedAt = std::chrono::steady_clock::now();
  loaded.loadSeconds = std::chrono::duration<double>(loadedAt - started).count();
  auto store =
      postgresStore ? openPostgresTelemetryStore(connection) : openSqliteTelemetryStore(path);
  if (!store.ok()) {
    std::fprintf(stderr, "migration: %s\n", store.error().message.c_str());
    return loaded;
  }
  loaded.migrateSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - loadedAt).count();
  loaded.store = std::move(store.value());
  return loaded;
}

Loaded& thirtyDays(bool postgresStore) {
  static Loaded sqlite;
  static Loaded postgresql;
  Loaded& loaded = postgresStore ? postgresql : sqlite;
  if (!loaded.store) loaded = loadThirtyDays(postgresStore);
  return loaded;
}

void BM_Statistics(benchmark::State& state) {
  const bool postgresStore = state.range(0) == 1;
  Loaded& loaded = thirtyDays(postgresStore);
  if (!loaded.store) {
    state.SkipWithError("bulk load failed");
    return;
  }
  const std::int64_t windows[] = {kHourMs, kDayMs, 30 * kDayMs, 30 * kDayMs};
  const auto index = static_cast<std::size_t>(state.range(1));
  const Resolution resolution = index == 3 ? Resolution::kRaw : Resolution::kAuto;
  const SystemTime to = fromMillis(kBulkEndMs);
  const SystemTime from = fromMillis(kBulkEndMs - windows[index]);
  std::uint64_t samples = 0;
  for (auto _ : state) {
    auto statistics = loaded.store->statistics("bench", "sim-0", from, to, resolution);
    if (!statistics.ok()) {
      state.SkipWithError(statistics.error().message.c_str());
      return;
    }
    samples = statistics->sampleCount;
    benchmark::DoNotOptimize(statistics->temperatureCelsius.p95);
  }
  state.counters["samples"] = static_cast<double>(samples);
  state.counters["bulk_load_s"] = loaded.loadSeconds;
  state.counters["migrate_rollups_s"] = loaded.migrateSeconds;
}
BENCHMARK(BM_Statistics)
    ->ArgNames({"postgres", "window"})
    ->ArgsProduct({{0, 1}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
