#include "devices/merge.h"

#include <algorithm>
#include <numeric>

namespace deviceops::devices {
namespace {

std::string sanitize(std::string_view text) {
  std::string out;
  for (char c : text) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out.push_back(keep ? static_cast<char>(c | (c >= 'A' && c <= 'Z' ? 0x20 : 0)) : '-');
  }
  return out;
}

std::string hexDigits(std::string_view uuid) {
  std::string out;
  for (char c : uuid) {
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  return out;
}

// Union-find over record indices.
struct DisjointSets {
  std::vector<std::size_t> parent;
  explicit DisjointSets(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), 0); }
  std::size_t find(std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(std::size_t a, std::size_t b) { parent[find(a)] = find(b); }
};

template <class T>
void fill(std::optional<T>& target, const std::optional<T>& source) {
  if (!target && source) target = source;
}

void fillReadings(Readings& target, const Readings& source) {
  fill(target.temperatureCelsius, source.temperatureCelsius);
  fill(target.slowdownTemperatureCelsius, source.slowdownTemperatureCelsius);
  fill(target.shutdownTemperatureCelsius, source.shutdownTemperatureCelsius);
  fill(target.utilizationRatio, source.utilizationRatio);
  fill(target.memoryUtilizationRatio, source.memoryUtilizationRatio);
  fill(target.powerWatts, source.powerWatts);
  fill(target.powerLimitWatts, source.powerLimitWatts);
  fill(target.clockMhz, source.clockMhz);
  fill(target.clockMaxMhz, source.clockMaxMhz);
  fill(target.memoryClockMhz, source.memoryClockMhz);
  fill(target.memoryClockMaxMhz, source.memoryClockMaxMhz);
  fill(target.eccVolatileSingleBit, source.eccVolatileSingleBit);
  fill(target.eccVolatileDoubleBit, source.eccVolatileDoubleBit);
  fill(target.eccAggregateSingleBit, source.eccAggregateSingleBit);
  fill(target.eccAggregateDoubleBit, source.eccAggregateDoubleBit);
  fill(target.pcieLinkGeneration, source.pcieLinkGeneration);
  fill(target.pcieLinkWidth, source.pcieLinkWidth);
  fill(target.pcieLinkGenerationMax, source.pcieLinkGenerationMax);
  fill(target.pcieLinkWidthMax, source.pcieLinkWidthMax);
  target.thermalThrottling = target.thermalThrottling || source.thermalThrottling;
  target.powerThrottling = target.powerThrottling || source.powerThrottling;
  if (target.throttleReasons.empty()) target.throttleReasons = source.throttleReasons;
}

}  // namespace

int backendPriority(std::string_view backend) {
  if (backend == "nvidia") return 0;
  if (backend == "amd") return 1;
  if (backend == "vulkan") return 2;
  if (backend == "cpu") return 3;
  if (backend == "simulated") return 4;
  return 5;
}

std::string deviceIdFor(const DeviceRecord& record) {
  if (record.simulated || record.backend == "simulated") return "sim-" + sanitize(record.localKey);
  if (record.type == DeviceType::kCpu) return "cpu" + sanitize(record.localKey);
  if (!record.pciBusId.empty()) return "gpu-" + sanitize(record.pciBusId);
  const std::string hex = hexDigits(record.uuid);
  if (hex.size() >= 12 && hex.find_first_not_of('0') != std::string::npos) {
    return "gpu-" + hex.substr(0, 12);
  }
  return sanitize(record.backend) + "-" + sanitize(record.localKey);
}

std::vector<MergedDevice> mergeRecords(const std::vector<DeviceRecord>& records) {
  DisjointSets sets(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    for (std::size_t j = i + 1; j < records.size(); ++j) {
      const DeviceRecord& a = records[i];
      const DeviceRecord& b = records[j];
      if (a.simulated || b.simulated || a.backend == b.backend) continue;
      const bool samePci = !a.pciBusId.empty() && a.pciBusId == b.pciBusId;
      const bool sameUuid = !a.uuid.empty() && hexDigits(a.uuid) == hexDigits(b.uuid) &&
                            hexDigits(a.uuid).find_first_not_of('0') != std::string::npos;
      if (samePci || sameUuid) sets.unite(i, j);
    }
  }
  std::vector<std::vector<std::size_t>> groups(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) groups[sets.find(i)].push_back(i);

  std::vector<MergedDevice> merged;
  for (auto& group : groups) {
    if (group.empty()) continue;
    std::stable_sort(group.begin(), group.end(), [&](std::size_t a, std::size_t b) {
      return backendPriority(records[a].backend) < backendPriority(records[b].backend);
    });
    MergedDevice device;
    device.record = records[group.front()];
    device.record.properties = nlohmann::json::object();
    for (std::size_t index : group) {
      const DeviceRecord& source = records[index];
      device.backends.push_back(source.backend);
      device.record.properties[source.backend] = source.properties;
      if (index == group.front()) continue;
      fillReadings(device.record.readings, source.readings);
      if (device.record.uuid.empty()) device.record.uuid = source.uuid;
      if (device.record.pciBusId.empty()) device.record.pciBusId = source.pciBusId;
      if (device.record.memory.totalBytes == 0) device.record.memory = source.memory;
      if (source.queryError) {
        device.record.properties[source.backend]["queryError"] = *source.queryError;
      }
    }
    device.id = deviceIdFor(device.record);
    merged.push_back(std::move(device));
  }
  std::sort(merged.begin(), merged.end(), [](const MergedDevice& a, const MergedDevice& b) {
    if (a.record.type != b.record.type) return a.record.type == DeviceType::kCpu;
    return a.id < b.id;
  });
  for (std::size_t i = 1; i < merged.size(); ++i) {
    int suffix = 2;
    const std::string base = merged[i].id;
    auto clashes = [&](const std::string& id) {
      for (std::size_t j = 0; j < i; ++j) {
        if (merged[j].id == id) return true;
      }
      return false;
    };
    while (clashes(merged[i].id)) merged[i].id = base + "-" + std::to_string(suffix++);
  }
  return merged;
}

}  // namespace deviceops::devices
