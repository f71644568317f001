#include "devices/cpu/procfs.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>
#include <utility>

#include "devices/text_parsing.h"

namespace deviceops::devices {
namespace {

using text::kWhitespace;
using text::nextLine;
using text::trim;

// Whole-string unsigned decimal, no sign, no whitespace.
std::optional<std::uint64_t> toUnsigned(std::string_view text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [pointer, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc{} || pointer != end) return std::nullopt;
  return value;
}

// Whole-string finite decimal number such as "2596.150".
std::optional<double> toDouble(std::string_view text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [pointer, error] = std::from_chars(text.data(), end, value, std::chars_format::fixed);
  if (text.empty() || error != std::errc{} || pointer != end || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

std::string printableAscii(std::string_view text) {
  std::string result(text);
  for (char& character : result) {
    if (character < 0x20 || character > 0x7e) character = '?';
  }
  return result;
}

Error invalid(std::string message) {
  return makeError(ErrorCode::kInvalidArgument, std::move(message));
}

// "key<whitespace>: value" as printed by /proc/cpuinfo and /proc/meminfo.
struct KeyValue {
  std::string_view key;
  std::string_view value;
};

std::optional<KeyValue> splitKeyValue(std::string_view line) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return KeyValue{trim(line.substr(0, colon)), trim(line.substr(colon + 1))};
}

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool contains(std::string_view text, std::string_view needle) {
  return text.find(needle) != std::string_view::npos;
}

}  // namespace

// /proc/stat ------------------------------------------------------------------------------------

std::uint64_t CpuTimes::total() const {
  return user + nice + system + idle + iowait + irq + softirq + steal;
}

std::uint64_t CpuTimes::idleTotal() const { return idle + iowait; }

Result<CpuTimes> parseProcStat(std::string_view text) {
  while (!text.empty()) {
    std::string_view line = nextLine(text);
    if (!startsWith(line, "cpu ")) continue;
    line.remove_prefix(4);
    std::array<std::uint64_t, 8> fields{};
    std::size_t count = 0;
    std::uint64_t sum = 0;
    while (count < fields.size()) {
      line = trim(line);
      if (line.empty()) break;
      const auto space = line.find_first_of(kWhitespace);
      const auto value = toUnsigned(line.substr(0, space));
      if (!value) return invalid("/proc/stat: the cpu line holds a field that is not a number");
      if (*value > std::numeric_limits<std::uint64_t>::max() - sum) {
        return invalid("/proc/stat: the cpu line's fields overflow 64 bits");
      }
      sum += *value;
      fields[count++] = *value;
      line = space == std::string_view::npos ? std::string_view{} : line.substr(space);
    }
    if (count < 4) return invalid("/proc/stat: the cpu line has fewer than 4 fields");
    return CpuTimes{fields[0], fields[1], fields[2], fields[3],
                    fields[4], fields[5], fields[6], fields[7]};
  }
  return invalid("/proc/stat: no aggregate \"cpu\" line");
}

std::optional<double> cpuUtilizationBetween(const CpuTimes& earlier, const CpuTimes& later) {
  if (later.total() <= earlier.total()) return std::nullopt;
  const double elapsed = static_cast<double>(later.total() - earlier.total());
  // iowait may go backwards on some kernels; a signed difference keeps that harmless.
  const double idle =
      static_cast<double>(later.idleTotal()) - static_cast<double>(earlier.idleTotal());
  return std::clamp((elapsed - idle) / elapsed, 0.0, 1.0);
}

// /proc/meminfo ---------------------------------------------------------------------------------

namespace {

// "24684096 kB" -> bytes. The kernel prints MemTotal and MemAvailable in kB.
Result<std::uint64_t> kilobytesToBytes(std::string_view key, std::string_view value) {
  const auto space = value.find_first_of(kWhitespace);
  const std::string_view unit = space == std::string_view::npos ? "" : trim(value.substr(space));
  const auto number = toUnsigned(value.substr(0, space));
  if (!number || unit != "kB") {
    return invalid("/proc/meminfo: " + std::string(key) + " is not \"<number> kB\"");
  }
  if (*number > std::numeric_limits<std::uint64_t>::max() / 1024) {
    return invalid("/proc/meminfo: " + std::string(key) + " overflows 64 bits");
  }
  return *number * 1024;
}

}  // namespace

Result<MemoryTotals> parseMeminfo(std::string_view text) {
  std::optional<std::uint64_t> total;
  MemoryTotals totals;
  while (!text.empty()) {
    const auto pair = splitKeyValue(nextLine(text));
    if (!pair || (pair->key != "MemTotal" && pair->key != "MemAvailable")) continue;
    auto bytes = kilobytesToBytes(pair->key, pair->value);
    if (!bytes) return bytes.error();
    (pair->key == "MemTotal" ? total : totals.availableBytes) = *bytes;
  }
  if (!total) return invalid("/proc/meminfo: no MemTotal line");
  totals.totalBytes = *total;
  return totals;
}

// /proc/cpuinfo ---------------------------------------------------------------------------------

Result<CpuInfo> parseCpuinfo(std::string_view text) {
  CpuInfo info;
  std::set<std::uint64_t> physicalIds;
  std::set<std::pair<std::uint64_t, std::uint64_t>> coreIds;
  // The processor entry being read; its core id is only meaningful with its physical id, which
  // may come before or after it.
  struct Entry {
    bool hasPhysicalId = false;
    std::uint64_t physicalId = 0;
    bool hasCoreId = false;
    std::uint64_t coreId = 0;
  } entry;
  auto finishProcessor = [&] {
    if (entry.hasPhysicalId) physicalIds.insert(entry.physicalId);
    if (entry.hasCoreId) coreIds.insert({entry.physicalId, entry.coreId});
    entry = Entry{};
  };
  double megahertzSum = 0;
  int megahertzCount = 0;
  while (!text.empty()) {
    const auto pair = splitKeyValue(nextLine(text));
    if (!pair) continue;
    const auto [key, value] = *pair;
    if (key == "processor") {
      if (!toUnsigned(value)) return invalid("/proc/cpuinfo: a processor number is not a number");
      finishProcessor();
      if (info.threads == std::numeric_limits<int>::max()) {
        return invalid("/proc/cpuinfo: too many processor entries");
      }
      ++info.threads;
    } else if (key == "physical id" || key == "core id") {
      const auto id = toUnsigned(value);
      if (!id) return invalid("/proc/cpuinfo: " + std::string(key) + " is not a number");
      if (key == "physical id") {
        entry.hasPhysicalId = true;
        entry.physicalId = *id;
      } else {
        entry.hasCoreId = true;
        entry.coreId = *id;
      }
    } else if (key == "cpu MHz") {
      const auto megahertz = toDouble(value);
      if (!megahertz || *megahertz < 0) return invalid("/proc/cpuinfo: cpu MHz is not a number");
      megahertzSum += *megahertz;
      ++megahertzCount;
    } else if (key == "model name" && info.modelName.empty()) {
      info.modelName = printableAscii(value);
    } else if (key == "vendor_id" && info.vendorId.empty()) {
      info.vendorId = printableAscii(value);
    }
  }
  finishProcessor();
  if (info.threads == 0) return invalid("/proc/cpuinfo: no processor entry");
  if (!physicalIds.empty()) info.sockets = static_cast<int>(physicalIds.size());
  if (!coreIds.empty()) info.cores = static_cast<int>(coreIds.size());
  if (megahertzCount > 0) info.averageMhz = megahertzSum / megahertzCount;
  return info;
}

// Short sysfs values ----------------------------------------------------------------------------

std::optional<std::uint64_t> parseSysfsUnsigned(std::string_view text) {
  return toUnsigned(trim(text));
}

std::optional<double> parseKilohertzAsMegahertz(std::string_view text) {
  const auto kilohertz = parseSysfsUnsigned(text);
  if (!kilohertz || *kilohertz == 0) return std::nullopt;
  return static_cast<double>(*kilohertz) / 1000.0;
}

std::string parseSysfsLine(std::string_view text) {
  std::string_view rest = text;
  return printableAscii(trim(nextLine(rest)));
}

Result<std::vector<std::uint32_t>> parseCpuList(std::string_view text) {
  text = trim(text);
  std::vector<std::uint32_t> ids;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const auto dash = item.find('-');
    const auto first = toUnsigned(item.substr(0, dash));
    const auto last = dash == std::string_view::npos ? first : toUnsigned(item.substr(dash + 1));
    if (!first || !last || *last > std::numeric_limits<std::uint32_t>::max()) {
      return invalid("cpulist: \"" + printableAscii(item) + "\" is not N or N-M");
    }
    if (*first > *last) return invalid("cpulist: a range is descending");
    if (*last - *first >= kMaxCpuListEntries - ids.size()) {
      return invalid("cpulist: more ids than any machine has");
    }
    for (std::uint64_t id = *first; id <= *last; ++id)
      ids.push_back(static_cast<std::uint32_t>(id));
    if (comma != std::string_view::npos && text.empty()) return invalid("cpulist: trailing ','");
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

// Temperature sensors ---------------------------------------------------------------------------

std::optional<int> cpuThermalZoneRank(std::string_view type) {
  if (type == "x86_pkg_temp") return 0;
  if (startsWith(type, "cpu") && contains(type, "thermal")) return 1;
  return std::nullopt;
}

bool isCpuHwmonChip(std::string_view chipName) {
  return chipName == "coretemp" || chipName == "k10temp" || chipName == "zenpower";
}

std::optional<int> pickPackageSensor(std::string_view chipName,
                                     const std::vector<HwmonSensor>& sensors) {
  if (sensors.empty()) return std::nullopt;
  auto findLabel = [&](auto matches) -> std::optional<int> {
    for (const HwmonSensor& sensor : sensors) {
      if (matches(std::string_view(sensor.label))) return sensor.index;
    }
    return std::nullopt;
  };
  if (chipName == "coretemp") {
    if (auto index = findLabel([](std::string_view label) {
          return startsWith(label, "Package id") || startsWith(label, "Physical id");
        })) {
      return index;
    }
  }
  if (auto index = findLabel([](std::string_view label) { return label == "Tdie"; })) return index;
  if (auto index = findLabel([](std::string_view label) { return label == "Tctl"; })) return index;
  const auto lowest = std::min_element(
      sensors.begin(), sensors.end(),
      [](const HwmonSensor& a, const HwmonSensor& b) { return a.index < b.index; });
  return lowest->index;
}

}  // namespace deviceops::devices
