// The amd backend: one device per GPU bound to the amdgpu driver, found under
// <sysRoot>/class/drm/cardN/device, keyed by PCI slot name.
//
// open() reads what does not change (identity, VRAM size, link limits, temperature thresholds)
// and notes which live files the GPU has; poll() rereads only those. A live file that existed at
// open() and is now gone (ENOENT, ENODEV: the GPU was unplugged or the driver unbound) marks the
// device with queryError; other read errors only leave that reading absent.
#include "devices/amd/amd_backend.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <filesystem>
#include <set>
#include <utility>

#include "devices/amd/amdgpu_sysfs.h"
#include "devices/text_parsing.h"

namespace deviceops::devices {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kMaxFileBytes = 1 << 20;  // amdgpu's text files are a few hundred bytes

struct FileText {
  std::optional<std::string> text;
  int errorNumber = 0;  // errno when text is absent; EFBIG when the file exceeds kMaxFileBytes
};

FileText readFile(const fs::path& path) {
  const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (descriptor < 0) return {std::nullopt, errno};
  std::string text;
  char buffer[4096];
  while (true) {
    const ssize_t count = ::read(descriptor, buffer, sizeof buffer);
    if (count < 0 && errno == EINTR) continue;
    const int errorNumber = count < 0 ? errno : 0;
    if (count <= 0 || text.size() + static_cast<std::size_t>(count) > kMaxFileBytes) {
      ::close(descriptor);
      if (count == 0) return {std::move(text), 0};
      return {std::nullopt, count < 0 ? errorNumber : EFBIG};
    }
    text.append(buffer, static_cast<std::size_t>(count));
  }
}

// Entries of `folder` named `prefix` followed by a decimal number only (card0, not card0-DP-1),
// sorted by that number. Empty when the folder cannot be listed.
std::vector<std::pair<std::uint64_t, fs::path>> numberedEntries(const fs::path& folder,
                                                                std::string_view prefix) {
  std::vector<std::pair<std::uint64_t, fs::path>> entries;
  std::error_code error;
  for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || !name.starts_with(prefix)) continue;
    const std::string_view digits = std::string_view(name).substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string_view::npos) continue;
    if (auto number = amdgpu::parseUnsigned(digits)) entries.emplace_back(*number, it->path());
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

// Live files; those the GPU lacks at open() are never read again.
constexpr std::string_view kLiveDeviceFiles[] = {
    "gpu_busy_percent", "mem_busy_percent",   "mem_info_vram_used", "pp_dpm_sclk",
    "pp_dpm_mclk",      "current_link_speed", "current_link_width",
};
constexpr std::string_view kLiveHwmonFiles[] = {
    "temp1_input", "temp2_input", "temp3_input", "power1_average", "power1_input", "power1_cap",
};

struct Card {
  fs::path device;               // <sysRoot>/class/drm/cardN/device
  fs::path hwmon;                // device/hwmon/hwmonM; empty when the GPU has no hwmon folder
  DeviceRecord identity;         // everything static; poll() copies it and adds the readings
  std::set<fs::path> liveFiles;  // live files that were readable at open()
};

class AmdBackend final : public Backend {
 public:
  explicit AmdBackend(AmdBackendOptions options) : options_(std::move(options)) {}

  std::string_view name() const override { return "amd"; }

  Status open() override {
    try {
      return openUnguarded();
    } catch (const std::exception& exception) {
      return makeError(ErrorCode::kInternal, std::string("amd backend: ") + exception.what());
    }
  }

  Result<std::vector<DeviceRecord>> poll() override {
    if (cards_.empty()) return makeError(ErrorCode::kUnavailable, "amd backend: not opened");
    try {
      std::vector<DeviceRecord> records;
      records.reserve(cards_.size());
      for (const Card& card : cards_) records.push_back(pollCard(card));
      return records;
    } catch (const std::exception& exception) {
      return makeError(ErrorCode::kInternal, std::string("amd backend: ") + exception.what());
    }
  }

 private:
  Status openUnguarded();
  std::optional<Card> openCard(const fs::path& cardFolder) const;
  DeviceRecord pollCard(const Card& card) const;

  const AmdBackendOptions options_;
  std::vector<Card> cards_;  // written by open() only
};

bool isBoundToAmdgpu(const fs::path& device, const amdgpu::PciUevent& uevent) {
  std::error_code error;
  const fs::path driver = fs::read_symlink(device / "driver", error);
  return (!error && driver.filename() == "amdgpu") || uevent.driver == "amdgpu";
}

Status AmdBackend::openUnguarded() {
  cards_.clear();
  std::set<std::string> slots;
  for (const auto& [number, cardFolder] : numberedEntries(options_.sysRoot / "class/drm", "card")) {
    std::optional<Card> card = openCard(cardFolder);
    // Two card folders for one PCI function would be one GPU reported twice.
    if (card && slots.insert(card->identity.localKey).second) cards_.push_back(std::move(*card));
  }
  if (cards_.empty()) {
    return makeError(ErrorCode::kUnavailable, "no amdgpu devices found",
                     {{"searched", (options_.sysRoot / "class/drm").string()}});
  }
  return Status::success();
}

std::optional<Card> AmdBackend::openCard(const fs::path& cardFolder) const {
  Card card;
  card.device = cardFolder / "device";
  const FileText ueventText = readFile(card.device / "uevent");
  if (!ueventText.text) return std::nullopt;
  const auto uevent = amdgpu::parsePciUevent(*ueventText.text);
  if (!uevent || !isBoundToAmdgpu(card.device, *uevent)) return std::nullopt;
  const auto readStatic = [&](const fs::path& path, auto parse) {
    const FileText file = readFile(path);
    return file.text ? parse(*file.text) : std::nullopt;
  };

  DeviceRecord& record = card.identity;
  record.backend = "amd";
  record.localKey = uevent->slotName;
  record.pciBusId = uevent->slotName;
  record.type = DeviceType::kGpu;
  record.vendor = "AMD";
  record.name = readStatic(card.device / "product_name", amdgpu::parseTextLine)
                    .value_or(amdgpu::marketingName(uevent->deviceId));
  // memory.peakBandwidthBytesPerSecond stays unset: sysfs gives the memory clock levels
  // (pp_dpm_mclk) but not the VRAM bus width (only the amdgpu info ioctl knows it).
  record.memory.totalBytes =
      readStatic(card.device / "mem_info_vram_total", amdgpu::parseUnsigned).value_or(0);
  record.readings.pcieLinkGenerationMax =
      readStatic(card.device / "max_link_speed", amdgpu::parseLinkSpeedGeneration);
  record.readings.pcieLinkWidthMax =
      readStatic(card.device / "max_link_width", amdgpu::parseLinkWidth);

  nlohmann::json& properties = record.properties;
  properties["drmCard"] = cardFolder.filename().string();
  properties["pciId"] = amdgpu::formatPciId(uevent->vendorId, uevent->deviceId);
  if (const auto uniqueId = readStatic(card.device / "unique_id", amdgpu::parseUniqueId)) {
    properties["uniqueId"] = *uniqueId;  // uuid stays empty: the Inventory merges by PCI address
  }
  if (const auto vbios = readStatic(card.device / "vbios_version", amdgpu::parseTextLine)) {
    properties["vbiosVersion"] = *vbios;
  }

  card.liveFiles.insert(card.device / "uevent");  // read at every poll to notice a removal
  for (std::string_view name : kLiveDeviceFiles) {
    if (readFile(card.device / name).text) card.liveFiles.insert(card.device / name);
  }
  const auto hwmons = numberedEntries(card.device / "hwmon", "hwmon");
  if (!hwmons.empty()) {
    card.hwmon = hwmons.front().second;
    for (std::string_view name : kLiveHwmonFiles) {
      if (readFile(card.hwmon / name).text) card.liveFiles.insert(card.hwmon / name);
    }
    // temperatureCelsius is the junction (hotspot) sensor when there is one, so it is compared
    // with the junction's thresholds; older GPUs only have temp1, the edge sensor.
    const bool junction = card.liveFiles.contains(card.hwmon / "temp2_input");
    const std::string sensor = junction ? "temp2" : "temp1";
    record.readings.slowdownTemperatureCelsius =
        readStatic(card.hwmon / (sensor + "_crit"), text::parseMillidegreesCelsius);
    record.readings.shutdownTemperatureCelsius =
        readStatic(card.hwmon / (sensor + "_emergency"), text::parseMillidegreesCelsius);
    properties["temperatureSensor"] = junction ? "junction" : "edge";
  }
  return card;
}

DeviceRecord AmdBackend::pollCard(const Card& card) const {
  DeviceRecord record = card.identity;
  std::optional<std::string> lostFile;
  // The text of a live file, or nullopt. Notes the first file that has vanished.
  const auto readLive = [&](const fs::path& path) -> std::optional<std::string> {
    if (!card.liveFiles.contains(path)) return std::nullopt;
    FileText file = readFile(path);
    if (!file.text && (file.errorNumber == ENOENT || file.errorNumber == ENODEV) && !lostFile) {
      lostFile = path.string();
    }
    return std::move(file.text);
  };
  const auto device = [&](std::string_view name, auto parse) {
    const auto text = readLive(card.device / name);
    return text ? parse(*text) : std::nullopt;
  };
  const auto hwmon = [&](std::string_view name, auto parse) {
    const auto text = readLive(card.hwmon / name);
    return text ? parse(*text) : std::nullopt;
  };

  readLive(card.device / "uevent");
  Readings& readings = record.readings;
  readings.utilizationRatio = device("gpu_busy_percent", amdgpu::parsePercentAsRatio);
  readings.memoryUtilizationRatio = device("mem_busy_percent", amdgpu::parsePercentAsRatio);
  const auto used = device("mem_info_vram_used", amdgpu::parseUnsigned);
  if (used && *used <= record.memory.totalBytes) {
    record.memory.usedBytes = *used;
    record.memory.freeBytes = record.memory.totalBytes - *used;
  }
  const auto clockLevels = [](std::string_view text) -> std::optional<amdgpu::ClockLevels> {
    auto levels = amdgpu::parseClockLevels(text);
    if (!levels) return std::nullopt;
    return std::move(levels).value();
  };
  if (const auto graphics = device("pp_dpm_sclk", clockLevels)) {
    readings.clockMhz = graphics->currentMhz;
    readings.clockMaxMhz = graphics->maxMhz;
  }
  if (const auto memory = device("pp_dpm_mclk", clockLevels)) {
    readings.memoryClockMhz = memory->currentMhz;
    readings.memoryClockMaxMhz = memory->maxMhz;
  }
  readings.pcieLinkGeneration = device("current_link_speed", amdgpu::parseLinkSpeedGeneration);
  readings.pcieLinkWidth = device("current_link_width", amdgpu::parseLinkWidth);

  const auto edge = hwmon("temp1_input", text::parseMillidegreesCelsius);
  const auto junction = hwmon("temp2_input", text::parseMillidegreesCelsius);
  const auto memoryTemperature = hwmon("temp3_input", text::parseMillidegreesCelsius);
  readings.temperatureCelsius =
      card.liveFiles.contains(card.hwmon / "temp2_input") ? junction : edge;
  nlohmann::json& properties = record.properties;
  if (edge) properties["edgeTemperatureCelsius"] = *edge;
  if (junction) properties["junctionTemperatureCelsius"] = *junction;
  if (memoryTemperature) properties["memoryTemperatureCelsius"] = *memoryTemperature;
  // power1_average on older kernels and GPUs, power1_input on RDNA3 and newer.
  readings.powerWatts = card.liveFiles.contains(card.hwmon / "power1_average")
                            ? hwmon("power1_average", amdgpu::parseMicrowattsAsWatts)
                            : hwmon("power1_input", amdgpu::parseMicrowattsAsWatts);
  readings.powerLimitWatts = hwmon("power1_cap", amdgpu::parseMicrowattsAsWatts);

  if (lostFile) {
    // Nothing read in this poll can be trusted any more; keep only the identity.
    record = card.identity;
    record.queryError = "the GPU stopped answering: " + *lostFile + " has disappeared";
  }
  return record;
}

}  // namespace

std::unique_ptr<Backend> makeAmdBackend(AmdBackendOptions options) {
  return std::make_unique<AmdBackend>(std::move(options));
}

}  // namespace deviceops::devices
