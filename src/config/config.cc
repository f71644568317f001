#include "config/config.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/byte_size.h"

namespace deviceops::config {
namespace {

Error invalid(std::string_view origin, std::string message) {
  return makeError(ErrorCode::kInvalidArgument, fmt::format("{}: {}", origin, message));
}

// Reads a TOML table field by field; remembers the first error and which keys were consumed.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string prefix, std::string_view origin)
      : table_(table), prefix_(std::move(prefix)), origin_(origin) {}

  template <class T>
  void read(std::string_view key, T& target) {
    known_.insert(std::string(key));
    const toml::node* node = table_.get(key);
    if (node == nullptr || !error_.empty()) return;
    if constexpr (std::is_same_v<T, bool>) {
      if (auto value = node->value<bool>()) return void(target = *value);
      fail(key, "a boolean");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (auto value = node->value<std::string>()) return void(target = *value);
      fail(key, "a string");
    } else if constexpr (std::is_same_v<T, double>) {
      if (auto value = node->value<double>()) return void(target = *value);
      fail(key, "a number");
    } else if constexpr (std::is_integral_v<T>) {
      auto value = node->value<std::int64_t>();
      if (value && *value >= 0 &&
          static_cast<std::uint64_t>(*value) <= std::numeric_limits<T>::max()) {
        return void(target = static_cast<T>(*value));
      }
      fail(key, "a non-negative integer in range");
    }
  }

  void readBytes(std::string_view key, std::uint64_t& target) {
    known_.insert(std::string(key));
    const toml::node* node = table_.get(key);
    if (node == nullptr || !error_.empty()) return;
    if (auto integer = node->value<std::int64_t>(); integer && *integer >= 0) {
      target = static_cast<std::uint64_t>(*integer);
      return;
    }
    if (auto text = node->value<std::string>()) {
      Result<std::uint64_t> parsed = parseByteSize(*text);
      if (parsed.ok()) return void(target = *parsed);
      error_ = fmt::format("{}{}: {}", prefix_, key, parsed.error().message);
      return;
    }
    fail(key, "a size in bytes or a string like \"64MiB\"");
  }

  template <class Duration>
  void readDuration(std::string_view key, Duration& target) {
    std::int64_t count = -1;
    read(key, count);
    if (count >= 0 && table_.get(key) != nullptr) target = Duration(count);
  }

  void readStrings(std::string_view key, std::vector<std::string>& target) {
    known_.insert(std::string(key));
    const toml::node* node = table_.get(key);
    if (node == nullptr || !error_.empty()) return;
    const toml::array* array = node->as_array();
    std::vector<std::string> values;
    if (array != nullptr) {
      for (const toml::node& element : *array) {
        auto text = element.value<std::string>();
        if (!text) return fail(key, "an array of strings");
        values.push_back(*text);
      }
      target = std::move(values);
      return;
    }
    fail(key, "an array of strings");
  }

  const toml::table* subtable(std::string_view key) {
    known_.insert(std::string(key));
    const toml::node* node = table_.get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_table()) fail(key, "a table");
    return node->as_table();
  }

  const toml::array* arrayOfTables(std::string_view key) {
    known_.insert(std::string(key));
    const toml::node* node = table_.get(key);
    if (node == nullptr) return nullptr;
    if (!node->is_array_of_tables()) fail(key, "an array of tables ([[...]])");
    return node->as_array();
  }

  // Call after every read(): reports the first unknown key.
  Status finish() {
    if (error_.empty()) {
      for (const auto& [key, node] : table_) {
        if (known_.count(std::string(key.str())) == 0) {
          error_ = fmt::format("unknown key '{}{}'", prefix_, key.str());
          break;
        }
      }
    }
    if (!error_.empty()) return invalid(origin_, error_);
    return Status::success();
  }

 private:
  void fail(std::string_view key, std::string_view expected) {
    if (error_.empty()) error_ = fmt::format("'{}{}' must be {}", prefix_, key, expected);
  }

  const toml::table& table_;
  std::string prefix_;
  std::string_view origin_;
  std::set<std::string> known_;
  std::string error_;
};

Status readServer(const toml::table& table, std::string_view origin, Config& config) {
  TableReader reader(table, "server.", origin);
  ServerConfig& server = config.server;
  std::string listen;
  reader.read("listen", listen);
  reader.read("ioThreads", server.ioThreads);
  reader.read("workerThreads", server.workerThreads);
  reader.readBytes("maxBodyBytes", server.maxBodyBytes);
  reader.readDuration("headerTimeoutSeconds", server.headerTimeout);
  reader.readDuration("bodyTimeoutSeconds", server.bodyTimeout);
  reader.readDuration("idleTimeoutSeconds", server.idleTimeout);
  reader.readDuration("shutdownGraceSeconds", server.shutdownGrace);
  std::string webRoot;
  reader.read("webRoot", webRoot);
  if (!webRoot.empty()) server.webRoot = webRoot;
  if (Status status = reader.finish(); !status.ok()) return status;
  if (server.ioThreads < 1 || server.workerThreads < 1) {
    return invalid(origin, "server.ioThreads and server.workerThreads must be at least 1");
  }
  if (!listen.empty()) {
    if (Status status = applyListen(config, listen); !status.ok()) {
      return invalid(origin, "server.listen: " + status.error().message);
    }
  }
  return Status::success();
}

Status readAuth(const toml::table& table, std::string_view origin, Config& config) {
  TableReader reader(table, "auth.", origin);
  std::string mode;
  reader.read("mode", mode);
  const toml::array* tokens = reader.arrayOfTables("tokens");
  if (Status status = reader.finish(); !status.ok()) return status;
  if (mode == "auto" || mode.empty()) {
    config.authMode = AuthMode::kAuto;
  } else if (mode == "always") {
    config.authMode = AuthMode::kAlways;
  } else if (mode == "never") {
    config.authMode = AuthMode::kNever;
  } else {
    return invalid(origin, "auth.mode must be \"auto\", \"always\" or \"never\"");
  }
  if (tokens == nullptr) return Status::success();
  for (const toml::node& node : *tokens) {
    TableReader tokenReader(*node.as_table(), "auth.tokens[].", origin);
    Token token;
    std::string scope;
    tokenReader.read("name", token.name);
    tokenReader.read("token", token.secret);
    tokenReader.read("scope", scope);
    if (Status status = tokenReader.finish(); !status.ok()) return status;
    if (token.secret.size() < 16) {
      return invalid(origin, "auth.tokens[].token must be at least 16 characters");
    }
    if (scope == "read") {
      token.scope = Scope::kRead;
    } else if (scope == "operate") {
      token.scope = Scope::kOperate;
    } else if (scope == "admin") {
      token.scope = Scope::kAdmin;
    } else {
      return invalid(origin, "auth.tokens[].scope must be \"read\", \"operate\" or \"admin\"");
    }
    if (token.name.empty()) token.name = "token" + std::to_string(config.tokens.size() + 1);
    config.tokens.push_back(std::move(token));
  }
  return Status::success();
}

// stuckBit / flippingBit: { offset = <bytes>, bit = 0..63 [, value = 0|1] }, inside the backing.
Status readSimulatedBit(const toml::table& table, std::string_view key, bool withValue,
                        std::uint64_t backingBytes, std::string_view origin,
                        devices::SimulatedBit& bit, unsigned* value) {
  const std::string prefix = fmt::format("devices.simulated[].faults.{}.", key);
  TableReader reader(table, prefix, origin);
  bit.offset = kMaxByteSize;  // marks "missing"
  reader.readBytes("offset", bit.offset);
  std::int64_t number = -1;
  reader.read("bit", number);
  std::int64_t stuckTo = -1;
  if (withValue) reader.read("value", stuckTo);
  RETURN_IF_ERROR(reader.finish());
  if (bit.offset == kMaxByteSize) return invalid(origin, prefix + "offset is required");
  if (number < 0 || number > 63) return invalid(origin, prefix + "bit must be 0..63");
  bit.bit = static_cast<unsigned>(number);
  if (withValue) {
    if (stuckTo != 0 && stuckTo != 1) return invalid(origin, prefix + "value must be 0 or 1");
    *value = static_cast<unsigned>(stuckTo);
  }
  if (bit.byteOffset() >= backingBytes) {
    return invalid(origin, fmt::format("{}offset: the bit lies at block byte {}, beyond the {} "
                                       "bytes transfers reach (backing)",
                                       prefix, bit.byteOffset(), backingBytes));
  }
  return Status::success();
}

Status readSimulatedFaults(const toml::table& table, std::string_view origin,
                           devices::SimulatedDeviceSpec& spec) {
  TableReader reader(table, "devices.simulated[].faults.", origin);
  devices::SimulatedFaults& faults = spec.faults;
  const toml::table* stuck = reader.subtable("stuckBit");
  const toml::table* flipping = reader.subtable("flippingBit");
  std::uint64_t cap = 0;
  reader.readBytes("bandwidthCap", cap);
  reader.read("eccDoubleBitErrors", faults.eccDoubleBitErrors);
  std::uint64_t hangAfter = 0;
  reader.read("hangAfterPolls", hangAfter);
  std::uint64_t vanishAfter = 0;
  reader.read("vanishAfterTransfers", vanishAfter);
  RETURN_IF_ERROR(reader.finish());
  if (stuck != nullptr) {
    faults.stuckBit.emplace();
    RETURN_IF_ERROR(readSimulatedBit(*stuck, "stuckBit", true, spec.backingBytes, origin,
                                     *faults.stuckBit, &faults.stuckValue));
  }
  if (flipping != nullptr) {
    faults.flippingBit.emplace();
    RETURN_IF_ERROR(readSimulatedBit(*flipping, "flippingBit", false, spec.backingBytes, origin,
                                     *faults.flippingBit, nullptr));
  }
  auto positive = [&](std::string_view key, std::uint64_t value, auto& target) -> Status {
    if (table.get(key) == nullptr) return Status::success();
    if (value == 0) {
      return invalid(origin, fmt::format("devices.simulated[].faults.{} must be at least 1", key));
    }
    target = value;
    return Status::success();
  };
  std::optional<std::uint64_t> capBytes;
  RETURN_IF_ERROR(positive("bandwidthCap", cap, capBytes));
  if (capBytes) faults.bandwidthCapBytesPerSecond = static_cast<double>(*capBytes);
  RETURN_IF_ERROR(positive("hangAfterPolls", hangAfter, faults.hangAfterPolls));
  RETURN_IF_ERROR(positive("vanishAfterTransfers", vanishAfter, faults.vanishAfterTransfers));
  return Status::success();
}

Status readSimulated(const toml::array& entries, std::string_view origin, DevicesConfig& devices) {
  devices.simulated.devices.clear();
  for (const toml::node& node : entries) {
    TableReader reader(*node.as_table(), "devices.simulated[].", origin);
    devices::SimulatedDeviceSpec spec;
    std::uint32_t count = 1;
    reader.read("count", count);
    reader.read("name", spec.name);
    reader.read("vendor", spec.vendor);
    reader.readBytes("memory", spec.memoryBytes);
    reader.readBytes("memoryUsed", spec.memoryUsedBytes);
    reader.read("temperatureCelsius", spec.temperatureCelsius);
    reader.read("slowdownTemperatureCelsius", spec.slowdownTemperatureCelsius);
    reader.read("utilizationRatio", spec.utilizationRatio);
    std::uint64_t peakBandwidth = 0;
    reader.readBytes("peakBandwidth", peakBandwidth);
    reader.readBytes("backing", spec.backingBytes);
    const toml::table* faults = reader.subtable("faults");
    if (Status status = reader.finish(); !status.ok()) return status;
    if (count > 64) return invalid(origin, "devices.simulated[].count must be at most 64");
    if (node.as_table()->get("peakBandwidth") != nullptr) {
      if (peakBandwidth == 0) {
        return invalid(origin, "devices.simulated[].peakBandwidth must be above 0 bytes/s");
      }
      spec.peakBandwidthBytesPerSecond = static_cast<double>(peakBandwidth);
    }
    if (spec.backingBytes == 0) {
      return invalid(origin, "devices.simulated[].backing must be at least 1 byte");
    }
    if (faults != nullptr) RETURN_IF_ERROR(readSimulatedFaults(*faults, origin, spec));
    for (std::uint32_t i = 0; i < count; ++i) devices.simulated.devices.push_back(spec);
  }
  return Status::success();
}

Status readDevices(const toml::table& table, std::string_view origin, DevicesConfig& devices) {
  TableReader reader(table, "devices.", origin);
  reader.readStrings("backends", devices.backends);
  reader.readDuration("pollIntervalMs", devices.pollInterval);
  reader.readDuration("staleAfterMs", devices.staleAfter);
  const toml::array* simulated = reader.arrayOfTables("simulated");
  if (Status status = reader.finish(); !status.ok()) return status;
  static const std::set<std::string> kKnown = {"cpu", "vulkan", "nvidia", "amd", "simulated"};
  for (const std::string& backend : devices.backends) {
    if (kKnown.count(backend) == 0) {
      return invalid(origin, "devices.backends: unknown backend '" + backend +
                                 "'; expected cpu, vulkan, nvidia, amd or simulated");
    }
  }
  if (devices.pollInterval < std::chrono::milliseconds(50)) {
    return invalid(origin, "devices.pollIntervalMs must be at least 50");
  }
  if (simulated != nullptr) return readSimulated(*simulated, origin, devices);
  return Status::success();
}

Status readHealth(const toml::table& table, std::string_view origin,
                  devices::HealthThresholds& health) {
  TableReader reader(table, "health.", origin);
  reader.read("temperatureMarginCelsius", health.temperatureMarginCelsius);
  reader.read("fallbackSlowdownCelsius", health.fallbackSlowdownCelsius);
  reader.read("memoryUsedRatio", health.memoryUsedRatio);
  reader.read("throttlingDegrades", health.throttlingDegrades);
  if (Status status = reader.finish(); !status.ok()) return status;
  if (health.memoryUsedRatio <= 0 || health.memoryUsedRatio > 1) {
    return invalid(origin, "health.memoryUsedRatio must be in (0, 1]");
  }
  return Status::success();
}

Status readInference(const toml::table& table, std::string_view origin,
                     InferenceConfig& inference) {
  TableReader reader(table, "inference.", origin);
  std::vector<std::string> roots;
  std::int64_t instances = inference.instances;
  std::int64_t maxQueue = static_cast<std::int64_t>(inference.maxQueue);
  reader.read("enabled", inference.enabled);
  reader.readStrings("modelRoots", roots);
  reader.readBytes("maxUploadBytes", inference.maxUploadBytes);
  reader.read("autoReload", inference.autoReload);
  reader.readDuration("keepAliveSeconds", inference.keepAlive);
  reader.read("instances", instances);
  reader.read("maxQueue", maxQueue);
  if (Status status = reader.finish(); !status.ok()) return status;
  if (instances < 1 || instances > 64) return invalid(origin, "inference.instances must be 1..64");
  if (maxQueue < 1) return invalid(origin, "inference.maxQueue must be at least 1");
  for (const std::string& root : roots) {
    if (root.empty() || root.front() != '/') {
      return invalid(origin, "inference.modelRoots entries must be absolute paths");
    }
    inference.modelRoots.emplace_back(root);
  }
  inference.instances = static_cast<int>(instances);
  inference.maxQueue = static_cast<std::size_t>(maxQueue);
  return Status::success();
}

Status readTraining(const toml::table& table, std::string_view origin, TrainingConfig& training) {
  TableReader reader(table, "training.", origin);
  std::string trainerPath = training.trainerPath.string();
  std::int64_t maxConcurrentJobs = training.maxConcurrentJobs;
  reader.read("enabled", training.enabled);
  reader.read("trainerPath", trainerPath);
  reader.readBytes("maxDatasetBytes", training.maxDatasetBytes);
  reader.readBytes("maxModuleBytes", training.maxModuleBytes);
  reader.read("maxConcurrentJobs", maxConcurrentJobs);
  reader.read("queueWhenFull", training.queueWhenFull);
  reader.read("autoResume", training.autoResume);
  reader.readDuration("stopGraceSeconds", training.stopGrace);
  if (Status status = reader.finish(); !status.ok()) return status;
  if (maxConcurrentJobs < 1 || maxConcurrentJobs > 256) {
    return invalid(origin, "training.maxConcurrentJobs must be 1..256");
  }
  if (!trainerPath.empty() && trainerPath.front() != '/') {
    return invalid(origin, "training.trainerPath must be an absolute path");
  }
  training.trainerPath = trainerPath;
  training.maxConcurrentJobs = static_cast<int>(maxConcurrentJobs);
  return Status::success();
}

Status readSuites(const toml::table& table, std::string_view origin, SuitesConfig& suites) {
  TableReader reader(table, "suites.", origin);
  std::int64_t maxLoaded = suites.maxLoaded;
  reader.read("maxLoaded", maxLoaded);
  if (Status status = reader.finish(); !status.ok()) return status;
  if (maxLoaded < 1 || maxLoaded > 64) return invalid(origin, "suites.maxLoaded must be 1..64");
  suites.maxLoaded = static_cast<int>(maxLoaded);
  return Status::success();
}

Status readGeneration(const toml::table& table, std::string_view origin,
                      GenerationConfig& generation) {
  TableReader reader(table, "generation.", origin);
  std::int64_t maxQueue = static_cast<std::int64_t>(generation.maxQueue);
  std::int64_t retainJobs = static_cast<std::int64_t>(generation.retainJobs);
  std::int64_t maxSide = generation.maxSide, maxSteps = generation.maxSteps;
  std::int64_t maxBatch = generation.maxBatch;
  reader.read("enabled", generation.enabled);
  reader.read("maxQueue", maxQueue);
  reader.read("retainJobs", retainJobs);
  reader.read("maxSide", maxSide);
  reader.read("maxSteps", maxSteps);
  reader.read("maxBatch", maxBatch);
  reader.readBytes("vaeBytesPerPixel", generation.vaeBytesPerPixel);
  if (Status status = reader.finish(); !status.ok()) return status;
  if (maxQueue < 1 || maxQueue > 100000)
    return invalid(origin, "generation.maxQueue must be 1..100000");
  if (retainJobs < 1 || retainJobs > 1000000) {
    return invalid(origin, "generation.retainJobs must be 1..1000000");
  }
  if (maxSide < 64 || maxSide > 16384)
    return invalid(origin, "generation.maxSide must be 64..16384");
  if (maxSteps < 1 || maxSteps > 10000)
    return invalid(origin, "generation.maxSteps must be 1..10000");
  if (maxBatch < 1 || maxBatch > 256) return invalid(origin, "generation.maxBatch must be 1..256");
  generation.maxQueue = static_cast<std::size_t>(maxQueue);
  generation.retainJobs = static_cast<std::size_t>(retainJobs);
  generation.maxSide = static_cast<int>(maxSide);
  generation.maxSteps = static_cast<int>(maxSteps);
  generation.maxBatch = static_cast<int>(maxBatch);
  return Status::success();
}

Status readMemory(const toml::table& table, std::string_view origin, MemoryConfig& memory) {
  TableReader reader(table, "memory.", origin);
  reader.read("budgetFraction", memory.budgetFraction);
  reader.readBytes("reserveBytes", memory.reserveBytes);
  reader.read("cpuBudgetFraction", memory.cpuBudgetFraction);
  reader.read("poolStrategy", memory.poolStrategy);
  reader.read("maxCachedFraction", memory.maxCachedFraction);
  reader.readDuration("reaperIntervalMs", memory.reaperInterval);
  reader.readDuration("maxTtlSeconds", memory.maxTtl);
  if (Status status = reader.finish(); !status.ok()) return status;
  const auto fraction = [](double value) { return value > 0 && value <= 1; };
  if (!fraction(memory.budgetFraction) || !fraction(memory.cpuBudgetFraction) ||
      memory.maxCachedFraction < 0 || memory.maxCachedFraction > 1) {
    return invalid(origin,
                   "memory.budgetFraction and memory.cpuBudgetFraction must be in (0, 1], "
                   "memory.maxCachedFraction in [0, 1]");
  }
  if (memory.poolStrategy != "pool" && memory.poolStrategy != "none") {
    return invalid(origin, "memory.poolStrategy must be \"pool\" or \"none\"");
  }
  if (memory.reaperInterval < std::chrono::milliseconds(10)) {
    return invalid(origin, "memory.reaperIntervalMs must be at least 10");
  }
  return Status::success();
}

Status readTelemetry(const toml::table& table, std::string_view origin, Config& config) {
  TableReader reader(table, "telemetry.", origin);
  TelemetryConfig& telemetry = config.telemetry;
  reader.read("enabled", telemetry.enabled);
  reader.readDuration("intervalSeconds", telemetry.interval);
  reader.read("store", telemetry.store);
  reader.read("postgresqlUrl", telemetry.postgresqlUrl);
  reader.read("nodeName", telemetry.nodeName);
  std::int64_t rawDays = -1;
  std::int64_t rollupDays = -1;
  reader.read("rawRetentionDays", rawDays);
  reader.read("rollupRetentionDays", rollupDays);
  reader.read("bufferMaxSamples", telemetry.bufferMaxSamples);
  reader.read("memoryBufferSamples", telemetry.memoryBufferSamples);
  std::string spillFile;
  reader.read("spillFile", spillFile);
  if (Status status = reader.finish(); !status.ok()) return status;
  if (!spillFile.empty()) telemetry.spillFile = spillFile;
  if (rawDays >= 0) telemetry.rawRetention = std::chrono::hours(24 * rawDays);
  if (rollupDays >= 0) telemetry.rollupRetention = std::chrono::hours(24 * rollupDays);
  if (telemetry.interval < std::chrono::seconds(1) || telemetry.interval > std::chrono::hours(1)) {
    return invalid(origin, "telemetry.intervalSeconds must be from 1 to 3600");
  }
  if (telemetry.store != "sqlite" && telemetry.store != "postgresql") {
    return invalid(origin, "telemetry.store must be \"sqlite\" or \"postgresql\"");
  }
  if (telemetry.store == "postgresql" && telemetry.postgresqlUrl.empty() &&
      config.database.rfind("postgres", 0) != 0) {
    return invalid(origin,
                   "telemetry.store = \"postgresql\" needs telemetry.postgresqlUrl (a "
                   "libpq connection string) or a postgresql:// `database`");
  }
  if (telemetry.rawRetention < std::chrono::hours(24) ||
      telemetry.rollupRetention < telemetry.rawRetention) {
    return invalid(origin,
                   "telemetry.rawRetentionDays must be at least 1 and "
                   "telemetry.rollupRetentionDays at least rawRetentionDays");
  }
  if (telemetry.memoryBufferSamples < 1 ||
      telemetry.bufferMaxSamples < telemetry.memoryBufferSamples) {
    return invalid(origin,
                   "telemetry.memoryBufferSamples must be at least 1 and at most "
                   "telemetry.bufferMaxSamples");
  }
  return Status::success();
}

Status applyLogFormat(Config& config, std::string_view format, std::string_view origin) {
  if (format == "json") {
    config.log.json = true;
  } else if (format == "text") {
    config.log.json = false;
  } else {
    return invalid(origin, "log format must be \"text\" or \"json\"");
  }
  return Status::success();
}

Status applyLogLevel(Config& config, std::string_view level, std::string_view origin) {
  static const std::set<std::string_view> kLevels = {"trace", "debug", "info", "warn", "error"};
  if (kLevels.count(level) == 0) {
    return invalid(origin, "log level must be trace, debug, info, warn or error");
  }
  config.log.level = std::string(level);
  return Status::success();
}

}  // namespace

bool isLoopbackHost(std::string_view host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

bool Config::authRequired() const {
  switch (authMode) {
    case AuthMode::kAlways:
      return true;
    case AuthMode::kNever:
      return false;
    case AuthMode::kAuto:
      return !isLoopbackHost(server.listenHost);
  }
  return true;
}

std::filesystem::path defaultDataDir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::filesystem::path(xdg) / "deviceops";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::filesystem::path(home) / ".local" / "share" / "deviceops";
  }
  return std::filesystem::temp_directory_path() / "deviceops";
}

Status applyListen(Config& config, std::string_view hostPort) {
  const auto fail = [&] {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("listen address '{}' must be HOST:PORT, e.g. 127.0.0.1:5000 "
                                 "or [::1]:0 (port 0 picks a free port)",
                                 hostPort));
  };
  std::string_view host;
  std::string_view port;
  if (hostPort.starts_with('[')) {
    const std::size_t close = hostPort.find(']');
    if (close == std::string_view::npos || close + 1 >= hostPort.size() ||
        hostPort[close + 1] != ':') {
      return fail();
    }
    host = hostPort.substr(1, close - 1);
    port = hostPort.substr(close + 2);
  } else {
    const std::size_t colon = hostPort.rfind(':');
    if (colon == std::string_view::npos) return fail();
    host = hostPort.substr(0, colon);
    port = hostPort.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || port.empty() || error != std::errc() || end != port.data() + port.size() ||
      value > 65535) {
    return fail();
  }
  config.server.listenHost = std::string(host);
  config.server.listenPort = static_cast<std::uint16_t>(value);
  return Status::success();
}

Result<Config> parseConfig(std::string_view tomlText, std::string_view origin, Config config) {
  toml::table root;
  try {
    root = toml::parse(tomlText, origin);
  } catch (const toml::parse_error& error) {
    return invalid(origin, fmt::format("line {}, column {}: {}", error.source().begin.line,
                                       error.source().begin.column, error.description()));
  }
  TableReader reader(root, "", origin);
  std::string dataDir;
  reader.read("dataDir", dataDir);
  reader.read("database", config.database);
  const toml::table* server = reader.subtable("server");
  const toml::table* log = reader.subtable("log");
  const toml::table* auth = reader.subtable("auth");
  const toml::table* devicesTable = reader.subtable("devices");
  const toml::table* health = reader.subtable("health");
  const toml::table* memory = reader.subtable("memory");
  const toml::table* inference = reader.subtable("inference");
  const toml::table* telemetry = reader.subtable("telemetry");
  const toml::table* training = reader.subtable("training");
  const toml::table* suites = reader.subtable("suites");
  const toml::table* generation = reader.subtable("generation");
  if (Status status = reader.finish(); !status.ok()) return status.error();
  if (!dataDir.empty()) config.dataDir = dataDir;
  if (server != nullptr) {
    if (Status status = readServer(*server, origin, config); !status.ok()) return status.error();
  }
  if (log != nullptr) {
    TableReader logReader(*log, "log.", origin);
    std::string level = config.log.level;
    std::string format = config.log.json ? "json" : "text";
    logReader.read("level", level);
    logReader.read("format", format);
    if (Status status = logReader.finish(); !status.ok()) return status.error();
    if (Status status = applyLogLevel(config, level, origin); !status.ok()) return status.error();
    if (Status status = applyLogFormat(config, format, origin); !status.ok()) {
      return status.error();
    }
  }
  if (auth != nullptr) {
    if (Status status = readAuth(*auth, origin, config); !status.ok()) return status.error();
  }
  if (devicesTable != nullptr) {
    if (Status status = readDevices(*devicesTable, origin, config.devices); !status.ok()) {
      return status.error();
    }
  }
  if (health != nullptr) {
    if (Status status = readHealth(*health, origin, config.devices.health); !status.ok()) {
      return status.error();
    }
  }
  if (memory != nullptr) {
    if (Status status = readMemory(*memory, origin, config.memory); !status.ok()) {
      return status.error();
    }
  }
  if (inference != nullptr) {
    if (Status status = readInference(*inference, origin, config.inference); !status.ok()) {
      return status.error();
    }
  }
  if (telemetry != nullptr) {
    if (Status status = readTelemetry(*telemetry, origin, config); !status.ok()) {
      return status.error();
    }
  }
  if (training != nullptr) {
    if (Status status = readTraining(*training, origin, config.training); !status.ok()) {
      return status.error();
    }
  }
  if (suites != nullptr) {
    if (Status status = readSuites(*suites, origin, config.suites); !status.ok()) {
      return status.error();
    }
  }
  if (generation != nullptr) {
    if (Status status = readGeneration(*generation, origin, config.generation); !status.ok()) {
      return status.error();
    }
  }
  return config;
}

Result<Config> loadConfigFile(const std::filesystem::path& path, Config base) {
  std::ifstream file(path);
  if (!file) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("cannot read config file {}", path.string()));
  }
  std::stringstream text;
  text << file.rdbuf();
  return parseConfig(text.str(), path.string(), std::move(base));
}

Result<Config> applyEnvironment(Config config,
                                const std::function<const char*(const char*)>& getenv) {
  const auto value = [&](const char* name) -> std::string {
    const char* text = getenv(name);
    return text == nullptr ? std::string() : std::string(text);
  };
  if (std::string listen = value("DEVICEOPS_LISTEN"); !listen.empty()) {
    if (Status status = applyListen(config, listen); !status.ok()) return status.error();
  }
  if (std::string dataDir = value("DEVICEOPS_DATA_DIR"); !dataDir.empty()) config.dataDir = dataDir;
  if (std::string database = value("DEVICEOPS_DATABASE"); !database.empty()) {
    config.database = database;
  }
  if (std::string level = value("DEVICEOPS_LOG_LEVEL"); !level.empty()) {
    if (Status status = applyLogLevel(config, level, "DEVICEOPS_LOG_LEVEL"); !status.ok()) {
      return status.error();
    }
  }
  if (std::string format = value("DEVICEOPS_LOG_FORMAT"); !format.empty()) {
    if (Status status = applyLogFormat(config, format, "DEVICEOPS_LOG_FORMAT"); !status.ok()) {
      return status.error();
    }
  }
  if (std::string backends = value("DEVICEOPS_BACKENDS"); !backends.empty()) {
    std::string toml = "[devices]\nbackends = [";
    std::stringstream list(backends);
    std::string item;
    bool first = true;
    while (std::getline(list, item, ',')) {
      toml += fmt::format("{}\"{}\"", first ? "" : ",", item);
      first = false;
    }
    toml += "]\n";
    if (backends.find('"') != std::string::npos) {
      return invalid("DEVICEOPS_BACKENDS", "must be a comma-separated list of backend names");
    }
    return parseConfig(toml, "DEVICEOPS_BACKENDS", std::move(config));
  }
  return config;
}

}  // namespace deviceops::config
