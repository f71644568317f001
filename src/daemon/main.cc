// deviceopsd: the daemon. Configuration: defaults < --config FILE < DEVICEOPS_* environment
// < flags. Exits 0 after SIGTERM/SIGINT once in-flight requests finished (bounded grace).
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>

#include "api/app.h"
#include "api/auth.h"
#include "api/live_feed.h"
#include "common/time_format.h"
#include "config/config.h"
#include "daemon/allocators.h"
#include "devices/amd/amd_backend.h"
#include "devices/cpu/cpu_backend.h"
#include "devices/nvidia/nvidia_backend.h"
#include "devices/simulated/simulated_backend.h"
#include "devices/simulated/simulated_fleet.h"
#include "devices/vulkan/vulkan_backend.h"
#include "http/server.h"
#include "inference/registry.h"
#include "memory/memory_service.h"
#include "selftest/self_test_service.h"
#include "store/connection.h"
#include "telemetry/telemetry_service.h"
#include "training/dataset_catalog.h"
#include "training/job_manager.h"

namespace {

using namespace deviceops;

// One JSON object per line: {"time", "level", "thread", "message"}, properly escaped.
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& message, spdlog::memory_buf_t& destination) override {
    const nlohmann::json line = {
        {"time", formatIso8601(message.time)},
        {"level", spdlog::level::to_string_view(message.level)},
        {"thread", message.thread_id},
        {"message", std::string(message.payload.data(), message.payload.size())}};
    const std::string text =
        line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    destination.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonLineFormatter>();
  }
};

void configureLogging(const config::LogConfig& log) {
  auto logger = spdlog::stderr_logger_mt("deviceopsd");
  if (log.json) {
    logger->set_formatter(std::make_unique<JsonLineFormatter>());
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  }
  logger->set_level(spdlog::level::from_str(log.level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

std::vector<std::unique_ptr<devices::Backend>> makeBackends(
    const config::Config& config, const std::shared_ptr<devices::SimulatedFleet>& simulatedFleet) {
  std::vector<std::unique_ptr<devices::Backend>> backends;
  for (const std::string& name : config.devices.backends) {
    if (name == "cpu") backends.push_back(devices::makeCpuBackend());
    if (name == "vulkan") backends.push_back(devices::makeVulkanBackend());
    if (name == "nvidia") backends.push_back(devices::makeNvidiaBackend());
    if (name == "amd") backends.push_back(devices::makeAmdBackend());
  }
  if (!config.devices.simulated.devices.empty()) {
    backends.push_back(devices::makeSimulatedBackend(simulatedFleet));
  }
  return backends;
}

Status writeReadyFile(const std::filesystem::path& path, const std::string& address) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  {
    std::ofstream file(temporary, std::ios::trunc);
    file << address << "\n";
    if (!file.flush()) {
      return makeError(ErrorCode::kInternal, "cannot write ready file " + temporary.string());
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) return makeError(ErrorCode::kInternal, "cannot write ready file: " + error.message());
  return Status::success();
}

http::ServerOptions serverOptions(const config::Config& config) {
  http::ServerOptions options;
  options.host = config.server.listenHost;
  options.port = config.server.listenPort;
  options.ioThreads = config.server.ioThreads;
  options.workerThreads = config.server.workerThreads;
  options.maxBodyBytes = config.server.maxBodyBytes;
  options.headerTimeout = config.server.headerTimeout;
  options.bodyTimeout = config.server.bodyTimeout;
  options.idleTimeout = config.server.idleTimeout;
  options.shutdownGrace = config.server.shutdownGrace;
  options.uploadDirectory = (config.dataDir / "uploads" / "incoming").string();
  return options;
}

inference::RegistryOptions registryOptions(const config::Config& config) {
  inference::RegistryOptions options;
  options.modelRoots = config.inference.modelRoots;
  if (options.modelRoots.empty()) options.modelRoots.push_back(config.dataDir / "models");
  options.uploadDirectory = config.dataDir / "uploads" / "models";
  // Patched custom VAEs (generation::SuiteManagerOptions::vaeDirectory).
  options.managedRoots = {config.dataDir / "generation" / "vaes",
                          config.dataDir / "selftest" / "models"};
  options.databaseFile = config.dataDir / "models.db";
  options.maxUploadBytes = config.inference.maxUploadBytes;
  options.autoReload = config.inference.autoReload;
  options.defaultKeepAlive = config.inference.keepAlive;
  options.defaultInstances = config.inference.instances;
  options.maxQueue = config.inference.maxQueue;
  return options;
}

memory::MemoryOptions memoryOptions(const config::MemoryConfig& config) {
  memory::MemoryOptions options;
  options.budgetFraction = config.budgetFraction;
  options.reserveBytes = config.reserveBytes;
  options.cpuBudgetFraction = config.cpuBudgetFraction;
  options.strategy =
      config.poolStrategy == "none" ? memory::PoolStrategy::kNone : memory::PoolStrategy::kPool;
  options.maxCachedFraction = config.maxCachedFraction;
  options.reaperInterval = config.reaperInterval;
  options.maxTtl = config.maxTtl;
  return options;
}

// The telemetry store named by [telemetry] (SQLite in the data directory, or PostgreSQL), the
// writer's buffer and the sampler. A PostgreSQL server that does not answer yet is not an error:
// samples are buffered until it does.
Result<std::unique_ptr<telemetry::TelemetryService>> makeTelemetry(
    const config::Config& config, const devices::Inventory& inventory,
    memory::MemoryService& memoryService, api::LiveFeed& feed) {
  const config::TelemetryConfig& t = config.telemetry;
  Result<std::unique_ptr<telemetry::TelemetryStore>> store =
      t.store == "postgresql"
          ? telemetry::openPostgresTelemetryStore(t.postgresqlUrl.empty() ? config.database
                                                                          : t.postgresqlUrl)
          : telemetry::openSqliteTelemetryStore(config.dataDir / "telemetry.db");
  if (!store.ok()) return store.error();
  telemetry::TelemetryOptions options;
  options.node = t.nodeName;
  options.version = DEVICEOPS_VERSION;
  options.interval = t.interval;
  options.staleAfter = config.devices.staleAfter;
  options.rawRetention = t.rawRetention;
  options.rollupRetention = t.rollupRetention;
  options.writer.memoryItems = t.memoryBufferSamples;
  options.writer.maxBufferedItems = t.bufferMaxSamples;
  options.writer.spillFile =
      t.spillFile.empty() ? config.dataDir / "telemetry-spill.jsonl" : t.spillFile;
  options.onTick = [&feed, &inventory](const std::vector<telemetry::DeviceSample>& samples,
                                       const std::vector<telemetry::StoredEvent>& events) {
    api::publishTick(feed, inventory, samples, events);
  };
  return std::make_unique<telemetry::TelemetryService>(std::move(store.value()), inventory,
                                                       &memoryService, std::move(options));
}

Result<std::unique_ptr<selftest::SelfTestService>> makeSelfTests(
    const config::Config& config, const devices::Inventory& inventory,
    memory::MemoryService& memoryService, inference::ModelRegistry* models,
    telemetry::TelemetryService* telemetryService, EventSink& events) {
  const config::TelemetryConfig& t = config.telemetry;
  std::error_code error;
  std::filesystem::create_directories(config.dataDir / "selftest" / "models", error);
  Result<std::unique_ptr<store::Connection>> connection =
      t.enabled && t.store == "postgresql"
          ? store::openPostgresConnection(t.postgresqlUrl.empty() ? config.database
                                                                  : t.postgresqlUrl)
          : store::openSqliteConnection((config.dataDir / "selftest.db").string());
  if (!connection.ok()) return connection.error();
  ASSIGN_OR_RETURN(std::unique_ptr<selftest::SelfTestStore> store,
                   selftest::SelfTestStore::open(std::move(connection.value())));
  selftest::SelfTestOptions options;
  options.modelDirectory = config.dataDir / "selftest" / "models";
  options.health.staleAfter = config.devices.staleAfter;
  options.health.telemetryInterval = config.telemetry.interval;
  options.events = &events;
  auto service = std::make_unique<selftest::SelfTestService>(
      inventory, memoryService, models, telemetryService, std::move(store), options);
  RETURN_IF_ERROR(service->start());
  return service;
}

// The web assets (dashboard, Swagger UI): <prefix>/share/deviceops/web of an installed daemon
// (`make install`), else the source tree's web/ this binary was built from.
std::filesystem::path defaultWebRoot() {
  std::error_code error;
  const std::filesystem::path installed =
      std::filesystem::read_symlink("/proc/self/exe", error).parent_path().parent_path() / "share" /
      "deviceops" / "web";
  if (!error && std::filesystem::is_directory(installed / "dist", error)) return installed;
  return DEVICEOPS_DEFAULT_WEB_ROOT;
}

// Blocks SIGTERM/SIGINT in every thread and waits for them on a dedicated one.
sigset_t blockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  return signals;
}

int run(config::Config config, const sigset_t& signals) {
  configureLogging(config.log);
  if (config.dataDir.empty()) config.dataDir = config::defaultDataDir();
  std::error_code error;
  std::filesystem::create_directories(config.dataDir, error);
  if (error) {
    spdlog::error("cannot create data directory {}: {}", config.dataDir.string(), error.message());
    return 1;
  }
  if (config.authRequired() && config.tokens.empty()) {
    spdlog::error(
        "authentication is required (listening on {} or auth.mode = \"always\") but no "
        "[[auth.tokens]] are configured; refusing to start an API nobody can use",
        config.server.listenHost);
    return 1;
  }
  devices::InventoryOptions inventoryOptions;
  inventoryOptions.pollInterval = config.devices.pollInterval;
  inventoryOptions.staleAfter = config.devices.staleAfter;
  inventoryOptions.thresholds = config.devices.health;
  // Shared by the simulated backend and the simulated allocators (faults, vanishing devices).
  const auto simulatedFleet = std::make_shared<devices::SimulatedFleet>(config.devices.simulated);
  devices::Inventory inventory(makeBackends(config, simulatedFleet), inventoryOptions);
  inventory.start();

  Result<std::unique_ptr<memory::LedgerStore>> ledgerStore =
      memory::openSqliteLedgerStore(config.dataDir);
  if (!ledgerStore.ok()) {
    spdlog::error("cannot open the store in {}: {}", config.dataDir.string(),
                  ledgerStore.error().message);
    return 1;
  }
  memory::MemoryService memoryService(inventory, std::move(ledgerStore.value()),
                                      memoryOptions(config.memory),
                                      daemon::allocatorFactory(simulatedFleet));
  if (auto reconciled = memoryService.start(); !reconciled.ok()) {
    spdlog::error("memory ledger: {}", reconciled.error().message);
    return 1;
  }

  api::AppContext context(config, inventory, memoryService);
  http::Router router;
  api::registerCoreRoutes(router, context);
  // Every component publishes its events to the live feed (GET /api/stream), which forwards
  // them to the telemetry store once it is up.
  const std::string node =
      config.telemetry.nodeName.empty() ? telemetry::localHostName() : config.telemetry.nodeName;
  api::LiveFeed feed(api::liveEventEncoder(config.telemetry.enabled ? node : ""));
  EventSink* events = &feed;

  // Telemetry: sampling starts now; from here on events go to its store.
  std::unique_ptr<telemetry::TelemetryService> telemetryService;
  if (config.telemetry.enabled) {
    auto made = makeTelemetry(config, inventory, memoryService, feed);
    if (!made.ok()) {
      spdlog::error("telemetry store: {}", made.error().message);
      return 1;
    }
    telemetryService = std::move(made.value());
    telemetryService->start();
    feed.setDownstream(telemetryService.get());
    api::registerTelemetryRoutes(router, context, *telemetryService);
    spdlog::info("telemetry: node {}, every {} s, store {} ({})", telemetryService->node(),
                 config.telemetry.interval.count(), telemetryService->store().kind(),
                 telemetryService->store().description());
  } else {
    api::registerTelemetryUnavailable(router, context);
  }
  memoryService.setEventSink(&feed);
  api::registerStreamRoutes(
      router, context, feed,
      {{"node", config.telemetry.enabled ? nlohmann::json(node) : nlohmann::json(nullptr)},
       {"intervalSeconds",
        config.telemetry.enabled
            ? nlohmann::json(std::chrono::duration<double>(config.telemetry.interval).count())
            : nlohmann::json(nullptr)},
       {"telemetry", config.telemetry.enabled}});

  // Inference: the registry charges the ledger for every model; start() installs it as the
  // ledger's reclaimer, so a raw allocation that does not fit evicts idle models first.
  std::unique_ptr<inference::ModelRegistry> models;
  if (config.inference.enabled) {
    const inference::RegistryOptions options = registryOptions(config);
    for (const auto& directory : {options.uploadDirectory, options.modelRoots.front()}) {
      std::filesystem::create_directories(directory, error);
    }
    models = std::make_unique<inference::ModelRegistry>(inventory, memoryService, options, *events);
    if (Status started = models->start(); !started.ok()) {
      spdlog::error("model registry: {}", started.error().message);
      return 1;
    }
    api::registerInferenceRoutes(router, context, *models);
  } else {
    api::registerInferenceUnavailable(router, context);
  }
  // Training: datasets and jobs; each job attempt runs deviceops-trainer child processes.
  std::unique_ptr<training::DatasetCatalog> datasets;
  std::unique_ptr<training::JobManager> jobs;
  if (config.training.enabled) {
    auto catalog = training::DatasetCatalog::open(config.dataDir);
    if (!catalog.ok()) {
      spdlog::error("training datasets: {}", catalog.error().message);
      return 1;
    }
    datasets = std::move(catalog.value());
    training::TrainingOptions options;
    options.dataDir = config.dataDir;
    options.trainerExecutable =
        config.training.trainerPath.empty()
            ? std::filesystem::read_symlink("/proc/self/exe", error).parent_path() /
                  "deviceops-trainer"
            : config.training.trainerPath;
    options.maxConcurrentJobs = config.training.maxConcurrentJobs;
    options.queueWhenFull = config.training.queueWhenFull;
    options.autoResume = config.training.autoResume;
    options.stopGrace = config.training.stopGrace;
    auto manager =
        training::JobManager::open(options, *datasets, inventory, &memoryService, *events);
    if (!manager.ok()) {
      spdlog::error("training jobs: {}", manager.error().message);
      return 1;
    }
    jobs = std::move(manager.value());
    api::registerTrainingRoutes(
        router, context, *jobs, *datasets,
        models ? training::registryModelServer(*models) : training::unavailableModelServer());
    spdlog::info("training: trainer {}, {} job(s) at a time", options.trainerExecutable.string(),
                 options.maxConcurrentJobs);
  } else {
    api::registerTrainingUnavailable(router, context);
  }
  // Model suites and SDXL generation: components load through the inference registry.
  std::unique_ptr<generation::SuiteManager> suites;
  std::unique_ptr<generation::GenerationService> generations;
  if (config.generation.enabled && models) {
    generation::SuiteManagerOptions suiteOptions;
    suiteOptions.modelRoots = models->options().modelRoots;
    suiteOptions.databaseFile = config.dataDir / "generation" / "suites.db";
    suiteOptions.vaeDirectory = config.dataDir / "generation" / "vaes";
    suiteOptions.maxLoaded = config.suites.maxLoaded;
    suites = std::make_unique<generation::SuiteManager>(*models, suiteOptions, *events);
    if (Status started = suites->start(); !started.ok()) {
      spdlog::error("model suites: {}", started.error().message);
      return 1;
    }
    generation::GenerationOptions options;
    options.directory = config.dataDir / "generation" / "jobs";
    options.maxQueue = config.generation.maxQueue;
    options.retainJobs = config.generation.retainJobs;
    options.limits.maxSide = config.generation.maxSide;
    options.limits.maxSteps = config.generation.maxSteps;
    options.limits.maxBatch = config.generation.maxBatch;
    options.limits.vaeBytesPerPixel = config.generation.vaeBytesPerPixel;
    options.largestBudget = [&memoryService, &inventory] {
      std::uint64_t largest = 0;
      for (const devices::DeviceView& device : inventory.snapshot()->devices) {
        Result<memory::DeviceMemoryStatus> status = memoryService.status(device.id);
        if (status.ok()) largest = std::max(largest, status->budgetBytes);
      }
      return largest;
    };
    generations =
        std::make_unique<generation::GenerationService>(*suites, *models, options, *events);
    if (Status started = generations->start(); !started.ok()) {
      spdlog::error("generation: {}", started.error().message);
      return 1;
    }
    api::registerGenerationRoutes(router, context, *suites, *generations, *models);
  } else {
    api::registerGenerationUnavailable(
        router, context,
        models ? "image generation is disabled ([generation] enabled = false)"
               : "image generation needs inference ([inference] enabled = false)");
  }
  // Self-tests: runs and figures go where telemetry goes (SQLite here, or its PostgreSQL).
  std::unique_ptr<selftest::SelfTestService> selfTests;
  if (auto made = makeSelfTests(config, inventory, memoryService, models.get(),
                                telemetryService.get(), feed);
      made.ok()) {
    selfTests = std::move(made.value());
    api::registerTestingRoutes(router, context, *selfTests);
  } else {
    spdlog::error("self-tests unavailable: {}", made.error().message);
    api::registerTestingUnavailable(router, context,
                                    "self-tests are unavailable: " + made.error().message);
  }
  http::HttpServer server(serverOptions(config), router, api::makeAuthorizer(config));
  if (Status started = server.start(); !started.ok()) {
    spdlog::error("{}", started.error().message);
    return 1;
  }
  context.ready = true;
  spdlog::info("deviceopsd {} (ONNX Runtime {}) listening on http://{} data={} auth={}",
               DEVICEOPS_VERSION, api::onnxRuntimeVersion(), server.boundAddress(),
               config.dataDir.string(), config.authRequired() ? "required" : "off (loopback)");
  if (!config.server.readyFile.empty()) {
    if (Status written = writeReadyFile(config.server.readyFile, server.boundAddress());
        !written.ok()) {
      spdlog::error("{}", written.error().message);
      server.shutdown();
      server.wait();
      return 1;
    }
  }

  std::thread signalWaiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    spdlog::info("received {}; finishing in-flight requests (grace {} s)",
                 received == SIGTERM ? "SIGTERM" : "SIGINT", config.server.shutdownGrace.count());
    context.ready = false;
    feed.close();  // ends every /api/stream now, not after the grace period
    server.shutdown();
  });
  server.wait();
  if (selfTests) selfTests->stop();      // cancels runs; their allocations and models go first
  if (generations) generations->stop();  // cancels the running generation; queued ones end
  if (jobs) jobs->stop();  // trainers checkpoint; their jobs become interrupted (resumable)
  if (telemetryService) telemetryService->sampler().stop();
  if (models) {
    models->stop();  // unloads every model; persisted ones load again at the next start
  }
  memoryService.stop();  // releases every allocation (reason "shutdown")
  if (telemetryService) {
    feed.setDownstream(nullptr);
    telemetryService->stop();  // flushes buffered samples and events (the rest is spilled)
  }
  inventory.stop();
  signalWaiter.join();
  spdlog::info("stopped");
  spdlog::shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists, so that every thread inherits the mask and only the waiter
  // thread in run() receives SIGTERM/SIGINT.
  const sigset_t signals = blockShutdownSignals();
  CLI::App app{"deviceopsd: device, memory, inference and training node daemon"};
  std::string configFile;
  std::string listen;
  std::string dataDir;
  std::string readyFile;
  std::string logLevel;
  std::string logFormat;
  bool version = false;
  app.add_option("--config", configFile, "TOML configuration file")->check(CLI::ExistingFile);
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0 picks a free port)");
  app.add_option("--data-dir", dataDir, "directory for the store and model files");
  app.add_option("--ready-file", readyFile, "write the bound host:port here once serving");
  app.add_option("--log-level", logLevel, "trace, debug, info, warn or error");
  app.add_option("--log-format", logFormat, "text or json");
  app.add_flag("--version", version, "print versions and exit");
  CLI11_PARSE(app, argc, argv);

  if (version) {
    std::cout << "deviceopsd " << DEVICEOPS_VERSION << "\nONNX Runtime "
              << api::onnxRuntimeVersion() << "\n";
    return 0;
  }
  config::Config config;
  if (!configFile.empty()) {
    Result<config::Config> loaded = config::loadConfigFile(configFile, config);
    if (!loaded.ok()) {
      std::cerr << "deviceopsd: " << loaded.error().message << "\n";
      return 2;
    }
    config = std::move(loaded.value());
  }
  Result<config::Config> withEnvironment = config::applyEnvironment(
      std::move(config), [](const char* name) { return std::getenv(name); });
  if (!withEnvironment.ok()) {
    std::cerr << "deviceopsd: " << withEnvironment.error().message << "\n";
    return 2;
  }
  config = std::move(withEnvironment.value());
  std::string flags;
  if (!listen.empty()) {
    if (Status status = config::applyListen(config, listen); !status.ok()) {
      std::cerr << "deviceopsd: --listen: " << status.error().message << "\n";
      return 2;
    }
  }
  if (!logLevel.empty()) flags += "log.level = \"" + logLevel + "\"\n";
  if (!logFormat.empty()) flags += "log.format = \"" + logFormat + "\"\n";
  if (!flags.empty()) {
    Result<config::Config> parsed = config::parseConfig(flags, "flags", config);
    if (!parsed.ok()) {
      std::cerr << "deviceopsd: " << parsed.error().message << "\n";
      return 2;
    }
    config = std::move(parsed.value());
  }
  if (!dataDir.empty()) config.dataDir = dataDir;
  if (!readyFile.empty()) config.server.readyFile = readyFile;
  if (config.server.webRoot.empty()) config.server.webRoot = defaultWebRoot();
  return run(std::move(config), signals);
}
