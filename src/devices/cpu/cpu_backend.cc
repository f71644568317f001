// The cpu backend: one device, localKey "0", for all sockets of the host together.
//
// open() reads the facts that do not change (cpuinfo, NUMA nodes, frequency limits) and picks
// the files poll() rereads: /proc/stat, /proc/meminfo, one scaling_cur_freq per CPU and the
// package temperature sensor(s).
#include "devices/cpu/cpu_backend.h"

#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <filesystem>
#include <functional>
#include <utility>

#include "devices/cpu/procfs.h"
#include "devices/text_parsing.h"

namespace deviceops::devices {
namespace {

namespace fs = std::filesystem;

// /proc/cpuinfo of a 512-thread machine is about 1 MiB; nothing we read is larger.
constexpr std::size_t kMaxFileBytes = 8 << 20;

// The whole content of a procfs or sysfs file; nullopt when it cannot be opened or read, or is
// larger than kMaxFileBytes.
std::optional<std::string> readFile(const fs::path& path) {
  const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (descriptor < 0) return std::nullopt;
  std::string text;
  char buffer[16384];
  while (true) {
    const ssize_t count = ::read(descriptor, buffer, sizeof buffer);
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0 || text.size() + static_cast<std::size_t>(count) > kMaxFileBytes) {
      ::close(descriptor);
      if (count == 0) return text;
      return std::nullopt;
    }
    text.append(buffer, static_cast<std::size_t>(count));
  }
}

// Entries of `folder` named `prefix` followed by a decimal number (cpu12, hwmon3, temp2_input
// with suffix "_input"), sorted by that number. Empty when the folder cannot be listed.
std::vector<std::pair<std::uint64_t, fs::path>> numberedEntries(const fs::path& folder,
                                                                std::string_view prefix,
                                                                std::string_view suffix = "") {
  std::vector<std::pair<std::uint64_t, fs::path>> entries;
  std::error_code error;
  for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) ||
        !name.ends_with(suffix)) {
      continue;
    }
    const std::string_view digits =
        std::string_view(name).substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (digits.find_first_not_of("0123456789") != std::string_view::npos) continue;
    if (auto number = parseSysfsUnsigned(digits)) entries.emplace_back(*number, it->path());
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

// Reads `path` and parses its text with `parse`; kUnavailable when it cannot be read.
template <class Parse>
auto readAndParse(const fs::path& path, Parse parse) -> decltype(parse(std::string_view{})) {
  const auto text = readFile(path);
  if (!text) return makeError(ErrorCode::kUnavailable, "cannot read " + path.string());
  return parse(*text);
}

std::string vendorName(std::string_view vendorId) {
  if (vendorId == "GenuineIntel") return "Intel";
  if (vendorId == "AuthenticAMD") return "AMD";
  return std::string(vendorId);
}

std::string machineArchitecture() {
  utsname names{};
  if (::uname(&names) != 0) return "";
  return parseSysfsLine(names.machine);
}

// The value the files hold that `better` prefers over all others (std::greater: the largest),
// read with `parse`; nullopt when no file reads.
template <class Parse, class Better>
std::optional<double> bestOfFiles(const std::vector<fs::path>& files, Parse parse, Better better) {
  std::optional<double> best;
  for (const fs::path& file : files) {
    const auto text = readFile(file);
    const auto value = text ? parse(*text) : std::nullopt;
    if (value && (!best || better(*value, *best))) best = value;
  }
  return best;
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(CpuBackendOptions options) : options_(std::move(options)) {}

  std::string_view name() const override { return "cpu"; }

  Status open() override {
    try {
      return openUnguarded();
    } catch (const std::exception& exception) {
      return makeError(ErrorCode::kInternal, std::string("cpu backend: ") + exception.what());
    }
  }

  Result<std::vector<DeviceRecord>> poll() override {
    if (!opened_) {
      return makeError(ErrorCode::kUnavailable, "cpu backend: open() has not succeeded");
    }
    try {
      return std::vector<DeviceRecord>{pollUnguarded()};
    } catch (const std::exception& exception) {
      return makeError(ErrorCode::kInternal, std::string("cpu backend: ") + exception.what());
    }
  }

 private:
  Status openUnguarded();
  DeviceRecord pollUnguarded();
  void readCpuinfo();
  void findFrequencyFiles();
  void findHwmonSensors();
  void findThermalZones();

  const CpuBackendOptions options_;
  // Written by open() only; read by poll().
  bool opened_ = false;
  DeviceRecord staticRecord_;  // identity, properties and limits; poll() copies and fills it
  std::vector<fs::path> currentFrequencyFiles_;  // scaling_cur_freq of every CPU, in kHz
  std::vector<fs::path> temperatureFiles_;       // package sensor(s); the reading is the hottest
  // Written by open() and poll() (one caller at a time, see Backend).
  std::optional<CpuTimes> previousTimes_;
};

Status CpuBackend::openUnguarded() {
  opened_ = false;
  // Without these two files the device has no readings at all: the backend is unavailable.
  auto times = readAndParse(options_.procRoot / "stat", parseProcStat);
  if (!times) return makeError(ErrorCode::kUnavailable, times.error().message);
  auto memory = readAndParse(options_.procRoot / "meminfo", parseMeminfo);
  if (!memory) return makeError(ErrorCode::kUnavailable, memory.error().message);
  previousTimes_ = *times;

  staticRecord_ = DeviceRecord{};
  staticRecord_.backend = "cpu";
  staticRecord_.localKey = "0";
  staticRecord_.type = DeviceType::kCpu;
  const std::string architecture = machineArchitecture();
  if (!architecture.empty()) staticRecord_.properties["architecture"] = architecture;
  staticRecord_.name = architecture.empty() ? "CPU" : architecture + " CPU";
  readCpuinfo();

  // Absent on kernels built without NUMA support.
  if (auto nodes = readAndParse(options_.sysRoot / "devices/system/node/online", parseCpuList)) {
    staticRecord_.properties["numaNodes"] = *nodes;
  }
  findFrequencyFiles();
  temperatureFiles_.clear();
  findHwmonSensors();
  if (temperatureFiles_.empty()) findThermalZones();
  opened_ = true;
  return Status::success();
}

void CpuBackend::readCpuinfo() {
  const auto info = readAndParse(options_.procRoot / "cpuinfo", parseCpuinfo);
  if (!info) return;  // the device keeps its architecture-based name and no topology
  nlohmann::json& properties = staticRecord_.properties;
  if (!info->modelName.empty()) staticRecord_.name = info->modelName;
  staticRecord_.vendor = vendorName(info->vendorId);
  properties["threads"] = info->threads;
  if (info->sockets) properties["sockets"] = *info->sockets;
  if (info->cores) properties["cores"] = *info->cores;
  if (!info->vendorId.empty()) properties["vendorId"] = info->vendorId;
  if (info->averageMhz) properties["cpuinfoMhz"] = *info->averageMhz;
}

void CpuBackend::findFrequencyFiles() {
  currentFrequencyFiles_.clear();
  std::vector<fs::path> maxFiles;
  std::vector<fs::path> minFiles;
  for (const auto& [number, cpu] :
       numberedEntries(options_.sysRoot / "devices/system/cpu", "cpu")) {
    const fs::path cpufreq = cpu / "cpufreq";
    std::error_code error;
    if (fs::exists(cpufreq / "scaling_cur_freq", error)) {
      currentFrequencyFiles_.push_back(cpufreq / "scaling_cur_freq");
    }
    maxFiles.push_back(cpufreq / "cpuinfo_max_freq");
    minFiles.push_back(cpufreq / "cpuinfo_min_freq");
  }
  staticRecord_.readings.clockMaxMhz =
      bestOfFiles(maxFiles, parseKilohertzAsMegahertz, std::greater<>());
  if (staticRecord_.readings.clockMaxMhz) {
    staticRecord_.properties["frequencyMaxMhz"] = *staticRecord_.readings.clockMaxMhz;
  }
  const auto lowest = bestOfFiles(minFiles, parseKilohertzAsMegahertz, std::less<>());
  if (lowest) staticRecord_.properties["frequencyMinMhz"] = *lowest;
}

// coretemp, k10temp, zenpower: one chip per socket (k10temp: per die); each gives one package
// sensor. The slowdown threshold is the lowest temp*_crit of those sensors (coretemp's TjMax).
void CpuBackend::findHwmonSensors() {
  std::optional<double> slowdown;
  for (const auto& [number, chip] : numberedEntries(options_.sysRoot / "class/hwmon", "hwmon")) {
    const auto chipName = readFile(chip / "name");
    if (!chipName || !isCpuHwmonChip(parseSysfsLine(*chipName))) continue;
    std::vector<HwmonSensor> sensors;
    for (const auto& [index, input] : numberedEntries(chip, "temp", "_input")) {
      const auto label = readFile(chip / ("temp" + std::to_string(index) + "_label"));
      sensors.push_back({static_cast<int>(index), label ? parseSysfsLine(*label) : ""});
    }
    const auto picked = pickPackageSensor(parseSysfsLine(*chipName), sensors);
    if (!picked) continue;
    const std::string prefix = "temp" + std::to_string(*picked);
    temperatureFiles_.push_back(chip / (prefix + "_input"));
    const auto critical = readFile(chip / (prefix + "_crit"));
    const auto celsius = critical ? text::parseMillidegreesCelsius(*critical) : std::nullopt;
    if (celsius && (!slowdown || *celsius < *slowdown)) slowdown = celsius;
  }
  staticRecord_.readings.slowdownTemperatureCelsius = slowdown;
  if (!temperatureFiles_.empty()) staticRecord_.properties["temperatureSource"] = "hwmon";
}

// Thermal zones of the best rank (x86_pkg_temp, one per socket, beats a generic cpu zone).
void CpuBackend::findThermalZones() {
  std::optional<int> bestRank;
  for (const auto& [number, zone] :
       numberedEntries(options_.sysRoot / "class/thermal", "thermal_zone")) {
    const auto type = readFile(zone / "type");
    const auto rank = type ? cpuThermalZoneRank(parseSysfsLine(*type)) : std::nullopt;
    if (!rank || (bestRank && *rank > *bestRank)) continue;
    if (!bestRank || *rank < *bestRank) temperatureFiles_.clear();
    bestRank = rank;
    temperatureFiles_.push_back(zone / "temp");
  }
  if (!temperatureFiles_.empty()) staticRecord_.properties["temperatureSource"] = "thermalZone";
}

DeviceRecord CpuBackend::pollUnguarded() {
  DeviceRecord record = staticRecord_;
  auto times = readAndParse(options_.procRoot / "stat", parseProcStat);
  if (!times) {
    record.queryError = times.error().message;
    return record;
  }
  auto memory = readAndParse(options_.procRoot / "meminfo", parseMeminfo);
  if (!memory) {
    record.queryError = memory.error().message;
    return record;
  }
  if (previousTimes_) {
    record.readings.utilizationRatio = cpuUtilizationBetween(*previousTimes_, *times);
  }
  previousTimes_ = *times;

  // memory.peakBandwidthBytesPerSecond stays unset: procfs/sysfs say nothing of the memory
  // channels and speed (that needs SMBIOS/DMI tables, readable by root only).
  record.memory.totalBytes = memory->totalBytes;
  if (memory->availableBytes && *memory->availableBytes <= memory->totalBytes) {
    record.memory.freeBytes = *memory->availableBytes;
    record.memory.usedBytes = memory->totalBytes - *memory->availableBytes;
  }

  record.readings.temperatureCelsius =
      bestOfFiles(temperatureFiles_, text::parseMillidegreesCelsius, std::greater<>());
  double sumMhz = 0;
  int count = 0;
  for (const fs::path& file : currentFrequencyFiles_) {
    const auto text = readFile(file);
    if (const auto megahertz = text ? parseKilohertzAsMegahertz(*text) : std::nullopt) {
      sumMhz += *megahertz;
      ++count;
    }
  }
  if (count > 0) record.readings.clockMhz = sumMhz / count;
  return record;
}

}  // namespace

std::unique_ptr<Backend> makeCpuBackend(CpuBackendOptions options) {
  return std::make_unique<CpuBackend>(std::move(options));
}

}  // namespace deviceops::devices
