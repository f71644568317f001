// Daemon configuration: defaults < TOML file (--config) < environment (DEVICEOPS_*) < flags.
// Every key is documented in docs/CONFIG.md; an unknown key or a wrong type is an error that
// names the key, so a typo never silently falls back to a default.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/scope.h"
#include "devices/health.h"
#include "devices/simulated/simulated_backend.h"

namespace deviceops::config {

struct Token {
  std::string name;    // shown in logs instead of the secret
  std::string secret;  // never logged
  Scope scope = Scope::kRead;
};

enum class AuthMode { kAuto, kAlways, kNever };  // auto: required unless bound to loopback

struct ServerConfig {
  std::string listenHost = "127.0.0.1";
  std::uint16_t listenPort = 5000;
  int ioThreads = 2;
  int workerThreads = 64;  // requests waiting on a model hold one each
  std::uint64_t maxBodyBytes = 64ull << 20;
  std::chrono::seconds headerTimeout{10};  // to receive a complete request header
  std::chrono::seconds bodyTimeout{60};    // to receive the body once the header is in
  std::chrono::seconds idleTimeout{60};    // keep-alive connection with no request
  std::chrono::seconds shutdownGrace{10};  // in-flight requests get this long on SIGTERM
  std::filesystem::path readyFile;         // host:port written here once serving
  std::filesystem::path webRoot;           // swagger-ui-dist and dashboard assets
};

struct LogConfig {
  std::string level = "info";  // trace | debug | info | warn | error
  bool json = false;           // JSON lines instead of text
};

struct DevicesConfig {
  std::vector<std::string> backends = {"cpu", "vulkan", "nvidia", "amd"};
  std::chrono::milliseconds pollInterval{1000};
  std::chrono::milliseconds staleAfter{10000};
  devices::SimulatedBackendOptions simulated;  // empty = simulated backend off
  devices::HealthThresholds health;
};

struct MemoryConfig {
  double budgetFraction = 0.9;                // of a GPU's memory
  std::uint64_t reserveBytes = 256ull << 20;  // kept free on every GPU
  double cpuBudgetFraction = 0.5;             // of RAM, for the cpu device
  std::string poolStrategy = "pool";          // "pool" | "none"
  double maxCachedFraction = 0.25;            // pool cache bound, fraction of the budget
  std::chrono::milliseconds reaperInterval{1000};
  std::chrono::seconds maxTtl{7 * 24 * 3600};
};

struct InferenceConfig {
  bool enabled = true;
  std::vector<std::filesystem::path> modelRoots;  // empty: <dataDir>/models
  std::uint64_t maxUploadBytes = 2ull << 30;
  bool autoReload = true;             // infer on an evicted model reloads it
  std::chrono::seconds keepAlive{0};  // idle models unloaded after this; 0: never
  int instances = 1;                  // session instances per placement
  std::size_t maxQueue = 256;         // queued requests per placement before 503
};

// [telemetry]: device sampling, its store and the device-monitor schema (issue 5).
struct TelemetryConfig {
  bool enabled = true;
  std::chrono::seconds interval{5};             // sampling period, 1..3600 s
  std::string store = "sqlite";                 // "sqlite" (<dataDir>/telemetry.db) | "postgresql"
  std::string postgresqlUrl;                    // libpq connection string; empty: `database`
  std::string nodeName;                         // empty: the host name
  std::chrono::hours rawRetention{7 * 24};      // raw samples kept this long
  std::chrono::hours rollupRetention{90 * 24};  // 1-minute/1-hour rollups and events
  std::uint64_t bufferMaxSamples = 1'000'000;   // buffered while the store is down (memory+spill)
  std::uint64_t memoryBufferSamples = 10'000;   // in memory before spilling to spillFile
  std::filesystem::path spillFile;              // empty: <dataDir>/telemetry-spill.jsonl
};

// [training]: datasets, training jobs and their trainer processes (issue 6, docs/TRAINING.md).
struct TrainingConfig {
  bool enabled = true;
  std::filesystem::path trainerPath;  // empty: deviceops-trainer next to deviceopsd
  std::uint64_t maxDatasetBytes = 4ull << 30;
  std::uint64_t maxModuleBytes = 1ull << 30;  // TorchScript uploads
  int maxConcurrentJobs = 1;                  // trainer attempts running at once
  bool queueWhenFull = true;                  // false: refuse a job whose memory does not fit now
  bool autoResume = false;                    // resume interrupted jobs at start-up
  std::chrono::seconds stopGrace{30};         // SIGTERM (checkpoint) -> SIGKILL
};

// [suites]: model suites (issue 13, docs/GENERATION.md).
struct SuitesConfig {
  int maxLoaded = 2;  // loaded suites before the least recently used one is unloaded
};

// [generation]: image-generation jobs (issue 13, docs/GENERATION.md).
struct GenerationConfig {
  bool enabled = true;
  std::size_t maxQueue = 64;     // queued jobs before 503
  std::size_t retainJobs = 200;  // finished jobs kept with their images
  int maxSide = 4096;            // pixels
  int maxSteps = 1000;
  int maxBatch = 16;
  std::uint64_t vaeBytesPerPixel = 6144;  // the memory estimate's VAE activations per pixel
};

struct Config {
  ServerConfig server;
  LogConfig log;
  std::filesystem::path dataDir;    // default: $XDG_DATA_HOME/deviceops or ~/.local/share/deviceops
  std::string database = "sqlite";  // "sqlite" or a postgresql:// connection string
  AuthMode authMode = AuthMode::kAuto;
  std::vector<Token> tokens;
  DevicesConfig devices;
  MemoryConfig memory;
  InferenceConfig inference;
  TelemetryConfig telemetry;
  TrainingConfig training;
  SuitesConfig suites;
  GenerationConfig generation;

  // Whether requests must carry a bearer token, given the address actually bound.
  bool authRequired() const;
};

// Parses TOML text. `origin` names the source in error messages.
Result<Config> parseConfig(std::string_view tomlText, std::string_view origin, Config base = {});
Result<Config> loadConfigFile(const std::filesystem::path& path, Config base = {});
// Applies DEVICEOPS_LISTEN, DEVICEOPS_DATA_DIR, DEVICEOPS_LOG_LEVEL, DEVICEOPS_LOG_FORMAT,
// DEVICEOPS_DATABASE, DEVICEOPS_BACKENDS (comma list) from `getenv`.
Result<Config> applyEnvironment(Config config,
                                const std::function<const char*(const char*)>& getenv);
// "127.0.0.1:5000", "[::1]:0", "0.0.0.0:8080".
Status applyListen(Config& config, std::string_view hostPort);

std::filesystem::path defaultDataDir();
bool isLoopbackHost(std::string_view host);

}  // namespace deviceops::config
