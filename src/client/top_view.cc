#include "client/top_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "client/cli_commands.h"
#include "client/cli_progress.h"
#include "client/table.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;

constexpr std::size_t kMaxJobs = 8;
constexpr std::uint64_t kRatioUnits = 1000;

void readHeldByKind(const Json& byKind, TopDevice& device) {
  if (!byKind.is_object()) return;
  device.heldBytesByKind.clear();
  for (const auto& [kind, bytes] : byKind.items()) {
    if (const auto value = bytesAt(byKind, kind)) device.heldBytesByKind.emplace_back(kind, *value);
  }
}

bool endedJobState(const std::string& state) {
  return state == "completed" || state == "stopped" || state == "failed" ||
         state == "interrupted" || state == "succeeded" || state == "cancelled";
}

// "02:32:15" of an RFC 3339 time, the text itself when it is not one.
std::string clockTime(const std::string& time) {
  if (time.size() >= 19 && time[10] == 'T') return time.substr(11, 8);
  return time;
}

std::string utilizationBar(const TopDevice& device, std::size_t width) {
  if (!device.utilizationRatio) return "util " + std::string(kAbsent);
  ProgressState state = makeProgressState("util", kRatioUnits);
  state.showCount = false;
  state.done = static_cast<std::uint64_t>(
      std::lround(std::clamp(*device.utilizationRatio, 0.0, 1.0) * kRatioUnits));
  return renderProgressBar(state, width);
}

std::string memoryBar(const TopDevice& device, std::size_t width) {
  if (!device.memoryUsedBytes || !device.memoryTotalBytes || *device.memoryTotalBytes == 0) {
    return "mem " + std::string(kAbsent) + "/" + formatBytes(device.memoryTotalBytes);
  }
  ProgressState state = makeProgressState("mem", device.memoryTotalBytes, ProgressUnit::kBytes);
  state.done = *device.memoryUsedBytes;
  return renderProgressBar(state, width);
}

void addDeviceLines(const TopDevice& device, std::size_t width, std::vector<std::string>& lines) {
  std::string title = device.id;
  if (!device.name.empty()) title += "  " + device.name;
  if (!device.vendor.empty()) title += " (" + device.vendor + ")";
  std::string health = device.health.empty() ? std::string(kAbsent) : device.health;
  if (device.stale) health += " (stale)";
  std::string readings = fmt::format(
      "{}  {}  {}", health, formatCelsius(device.temperatureCelsius),
      device.powerWatts ? fmt::format("{:.1f} W", *device.powerWatts) : std::string(kAbsent));
  if (device.throttled) readings += "  THROTTLED";
  lines.push_back(title + "  " + readings);
  const std::size_t half = width > 6 ? (width - 4) / 2 : 1;
  lines.push_back("  " + utilizationBar(device, half) + "  " + memoryBar(device, half));
  if (device.heldBytes) {
    std::string ledger = "  ledger " + formatBytes(*device.heldBytes) + " held";
    std::string kinds;
    for (const auto& [kind, bytes] : device.heldBytesByKind) {
      if (bytes == 0) continue;
      kinds += (kinds.empty() ? ": " : ", ") + kind + " " + formatBytes(bytes);
    }
    lines.push_back(ledger + kinds);
  }
}

std::string trainingLine(const Json& job) {
  const Json& progress = memberAt(job, "progress");
  std::string line = fmt::format(
      "  train {} {} step {}/{} epoch {}/{}", stringAt(job, "jobId"), stringAt(job, "state"),
      scalarText(memberAt(progress, "step")), scalarText(memberAt(progress, "totalSteps")),
      scalarText(memberAt(progress, "epoch")), scalarText(memberAt(progress, "epochs")));
  if (const auto loss = numberAt(progress, "loss")) line += fmt::format(" loss {:.4f}", *loss);
  if (const auto rate = numberAt(progress, "samplesPerSecond")) {
    line += fmt::format(" {:.0f} samples/s", *rate);
  }
  return line;
}

std::string generationLine(const Json& job) {
  const Json& progress = memberAt(job, "progress");
  std::string line = fmt::format("  gen   {} {} {}", stringAt(job, "id"), stringAt(job, "state"),
                                 stringAt(job, "suite"));
  const std::string stage = stringAt(progress, "stage");
  if (!stage.empty()) line += " " + stage;
  if (numberAt(progress, "totalSteps")) {
    line += fmt::format(" {}/{}", scalarText(memberAt(progress, "step")),
                        scalarText(memberAt(progress, "totalSteps")));
  }
  line += fmt::format(" images {}", memberAt(job, "images").size());
  return line;
}

// Running jobs first (in list order), then ended ones, kMaxJobs at most.
std::vector<std::string> jobLines(const TopModel& model) {
  std::vector<std::pair<bool, std::string>> jobs;  // (ended, line)
  if (model.trainingJobs.is_array()) {
    for (const Json& job : model.trainingJobs) {
      jobs.emplace_back(endedJobState(stringAt(job, "state")), trainingLine(job));
    }
  }
  if (model.generationJobs.is_array()) {
    for (const Json& job : model.generationJobs) {
      jobs.emplace_back(endedJobState(stringAt(job, "state")), generationLine(job));
    }
  }
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const auto& a, const auto& b) { return !a.first && b.first; });
  std::vector<std::string> lines;
  for (const auto& [ended, line] : jobs) {
    if (lines.size() == kMaxJobs) break;
    lines.push_back(line);
  }
  return lines;
}

std::string eventLine(const Json& event) {
  std::string line = "  " + clockTime(stringAt(event, "time")) + " " + stringAt(event, "severity") +
                     " " + stringAt(event, "type");
  if (const std::string device = stringAt(event, "deviceId"); !device.empty()) line += " " + device;
  if (const std::string message = stringAt(event, "message"); !message.empty()) {
    line += ": " + message;
  }
  return line;
}

}  // namespace

TopDevice topDeviceFromListItem(const Json& device) {
  TopDevice out;
  out.id = stringAt(device, "id");
  out.name = stringAt(device, "name");
  out.vendor = stringAt(device, "vendor");
  out.health = stringAt(memberAt(device, "health"), "status");
  const Json& readings = memberAt(device, "readings");
  out.utilizationRatio = numberAt(readings, "utilizationRatio");
  out.temperatureCelsius = numberAt(readings, "temperatureCelsius");
  out.powerWatts = numberAt(readings, "powerWatts");
  out.throttled = memberAt(readings, "thermalThrottling") == true ||
                  !memberAt(readings, "throttleReasons").empty();
  const Json& memory = memberAt(device, "memory");
  out.memoryUsedBytes = bytesAt(memory, "usedBytes");
  out.memoryTotalBytes = bytesAt(memory, "totalBytes");
  return out;
}

TopDevice topDeviceFromSample(const Json& sample) {
  TopDevice out;
  out.id = stringAt(sample, "deviceId");
  out.name = stringAt(sample, "name");
  out.vendor = stringAt(sample, "vendor");
  out.health = stringAt(memberAt(sample, "health"), "status");
  out.utilizationRatio = numberAt(sample, "utilizationRatio");
  out.temperatureCelsius = numberAt(sample, "temperatureCelsius");
  out.powerWatts = numberAt(sample, "powerWatts");
  out.memoryUsedBytes = bytesAt(sample, "memoryUsedBytes");
  out.memoryTotalBytes = bytesAt(sample, "memoryTotalBytes");
  if (!out.memoryUsedBytes && out.memoryTotalBytes) {
    if (const auto free = bytesAt(sample, "memoryFreeBytes");
        free && *free <= *out.memoryTotalBytes) {
      out.memoryUsedBytes = *out.memoryTotalBytes - *free;
    }
  }
  out.heldBytes = bytesAt(sample, "heldBytes");
  readHeldByKind(memberAt(sample, "heldBytesByKind"), out);
  out.throttled = memberAt(sample, "throttled") == true;
  out.stale = memberAt(sample, "stale") == true;
  return out;
}

void TopModel::setDevices(const Json& list, const Json& samples) {
  std::vector<TopDevice> fresh;
  if (list.is_array()) {
    for (const Json& item : list) fresh.push_back(topDeviceFromListItem(item));
  }
  if (samples.is_array()) {
    for (const Json& item : samples) {
      TopDevice sample = topDeviceFromSample(item);
      auto it = std::find_if(fresh.begin(), fresh.end(),
                             [&](const TopDevice& d) { return d.id == sample.id; });
      if (it == fresh.end()) {
        fresh.push_back(std::move(sample));
        continue;
      }
      if (sample.name.empty()) sample.name = it->name;
      if (sample.vendor.empty()) sample.vendor = it->vendor;
      if (!sample.heldBytes) {
        sample.heldBytes = it->heldBytes;
        sample.heldBytesByKind = it->heldBytesByKind;
      }
      *it = std::move(sample);
    }
  }
  devices = std::move(fresh);
}

void TopModel::setLedger(const std::string& deviceId, const Json& status) {
  for (TopDevice& device : devices) {
    if (device.id != deviceId) continue;
    device.heldBytes = bytesAt(status, "heldBytes");
    readHeldByKind(memberAt(status, "heldBytesByKind"), device);
  }
}

TopChange TopModel::apply(const ServerSentEvent& event) {
  const Json data = Json::parse(event.data, nullptr, /*allow_exceptions=*/false);
  if (event.type == "hello") {
    if (const std::string name = stringAt(data, "node"); !name.empty()) node = name;
    telemetry = memberAt(data, "telemetry") != false;
    return TopChange::kRedraw;
  }
  if (event.type == "samples") {
    time = stringAt(data, "time");
    Json list = Json::array();  // keep the order and names we have, take every reading
    for (const TopDevice& device : devices) {
      list.push_back({{"id", device.id}, {"name", device.name}, {"vendor", device.vendor}});
    }
    const std::vector<TopDevice> before = devices;
    setDevices(list, memberAt(data, "devices"));
    for (TopDevice& device : devices) {  // a sample without the ledger keeps the last one
      if (device.heldBytes) continue;
      for (const TopDevice& old : before) {
        if (old.id == device.id) {
          device.heldBytes = old.heldBytes;
          device.heldBytesByKind = old.heldBytesByKind;
        }
      }
    }
    return TopChange::kRedraw;
  }
  if (event.type == "event") {
    if (!data.is_object()) return TopChange::kNone;
    events.push_front(data);
    while (events.size() > kMaxEvents) events.pop_back();
    const std::string type = stringAt(data, "type");
    if (type.rfind("training.", 0) == 0 || type.rfind("generation.", 0) == 0) {
      return TopChange::kReloadJobs;
    }
    return TopChange::kRedraw;
  }
  if (event.type == "reset") return TopChange::kReloadAll;
  return TopChange::kNone;
}

std::string renderTopFrame(const TopModel& model, std::size_t width, std::size_t height) {
  std::vector<std::string> lines;
  std::string title = "deviceops top";
  if (!model.node.empty()) title += "  node " + model.node;
  if (!model.time.empty()) title += "  " + clockTime(model.time);
  title += "  " + model.status + "  (q quits)";
  lines.push_back(title);
  lines.push_back(fmt::format("DEVICES ({})", model.devices.size()));
  for (const TopDevice& device : model.devices) addDeviceLines(device, width, lines);
  if (model.devices.empty()) lines.push_back("  no devices");
  lines.push_back("JOBS");
  std::vector<std::string> jobs = jobLines(model);
  if (jobs.empty()) lines.push_back("  no training or generation jobs");
  lines.insert(lines.end(), jobs.begin(), jobs.end());
  lines.push_back("EVENTS");
  const std::size_t before = lines.size();
  for (const Json& event : model.events) {
    if (height != 0 && lines.size() >= height) break;
    lines.push_back(eventLine(event));
  }
  if (lines.size() == before && (height == 0 || lines.size() < height)) {
    lines.push_back("  none yet");
  }
  if (height != 0 && lines.size() > height) lines.resize(height);
  std::string frame;
  for (const std::string& line : lines) frame += truncateToWidth(line, width) + "\n";
  return frame;
}

}  // namespace deviceops::client
