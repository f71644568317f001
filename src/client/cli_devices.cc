// The device command group: `devices`, `device <id>`, `health [<id>]`.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <memory>
#include <ostream>
#include <set>

#include "client/cli.h"
#include "client/cli_commands.h"
#include "client/table.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;
using Entries = std::vector<std::pair<std::string, std::string>>;

constexpr std::size_t kMaxNameWidth = 32;
constexpr std::size_t kMaxVendorWidth = 16;

std::string devicePath(const std::string& id) { return "/api/device/" + percentEncode(id); }

std::string joinStrings(const Json& array) {
  return array.is_array() ? scalarText(array) : std::string();
}

// "1.0 GiB / 16.0 GiB"; "" when the server knows neither.
std::string memoryCell(const Json& memory) {
  const auto total = bytesAt(memory, "totalBytes");
  const auto used = bytesAt(memory, "usedBytes");
  if (!total && !used) return "";
  return formatBytes(used) + " / " + formatBytes(total);
}

std::string healthCell(const Json& device) {
  std::string cell = stringAt(memberAt(device, "health"), "status");
  if (cell.empty()) cell = std::string(kAbsent);
  if (memberAt(device, "simulated") == true) cell += " (simulated)";
  return cell;
}

// "[degraded] temperatureNearSlowdown: temperature 86 °C is ..."
std::string reasonText(const Json& reason) {
  return fmt::format("[{}] {}: {}", stringAt(reason, "severity"), stringAt(reason, "code"),
                     stringAt(reason, "message"));
}

void appendHealth(const std::string& prefix, const Json& health, Entries& entries) {
  entries.emplace_back(prefix, stringAt(health, "status"));
  const Json& reasons = memberAt(health, "reasons");
  if (reasons.is_array()) {
    for (const auto& reason : reasons) entries.emplace_back(prefix + ".reason", reasonText(reason));
  }
  entries.emplace_back(prefix + ".checkedAt", stringAt(health, "checkedAt"));
}

// Total, used and free first, then whatever else the server reports about memory.
void appendMemory(const Json& memory, Entries& entries) {
  static constexpr std::array<std::string_view, 3> kOrder = {"totalBytes", "usedBytes",
                                                             "freeBytes"};
  for (const auto key : kOrder) {
    entries.emplace_back(fmt::format("memory.{}", key), formatBytes(bytesAt(memory, key)));
  }
  if (!memory.is_object()) return;
  for (const auto& [key, value] : memory.items()) {
    if (std::find(kOrder.begin(), kOrder.end(), key) == kOrder.end()) {
      flattenJson("memory." + key, value, entries, /*formatUnits=*/true);
    }
  }
}

int listDevices(CliSession& session, const std::string& type) {
  std::string target = "/api/device";
  if (!type.empty()) target += "?type=" + percentEncode(type);
  auto list = session.getJson(target);
  if (!list) return session.report(list.error());
  if (session.jsonOutput()) return session.printJson(*list);

  Table table({{"ID"},
               {"TYPE"},
               {"NAME", Align::kLeft, kMaxNameWidth},
               {"VENDOR", Align::kLeft, kMaxVendorWidth},
               {"BACKENDS"},
               {"MEMORY", Align::kRight},
               {"UTIL", Align::kRight},
               {"TEMP", Align::kRight},
               {"HEALTH"}});
  const Json& devices = memberAt(*list, "devices");
  if (devices.is_array()) {
    for (const auto& device : devices) {
      const Json& readings = memberAt(device, "readings");
      table.addRow({stringAt(device, "id"), stringAt(device, "type"), stringAt(device, "name"),
                    stringAt(device, "vendor"), joinStrings(memberAt(device, "backends")),
                    memoryCell(memberAt(device, "memory")),
                    formatRatio(numberAt(readings, "utilizationRatio")),
                    formatCelsius(numberAt(readings, "temperatureCelsius")), healthCell(device)});
    }
  }
  if (table.rowCount() == 0) {
    session.out() << "no devices\n";
  } else {
    session.out() << table.render();
  }
  const Json& backends = memberAt(*list, "backends");
  if (backends.is_array()) {
    for (const auto& backend : backends) {
      if (memberAt(backend, "available") != false) continue;
      const std::string reason = stringAt(backend, "reason");
      session.out() << fmt::format("backend {}: unavailable{}\n", stringAt(backend, "name"),
                                   reason.empty() ? "" : " (" + reason + ")");
    }
  }
  return kExitOk;
}

int showDevice(CliSession& session, const std::string& id) {
  auto device = session.getJson(devicePath(id));
  if (!device) return session.report(device.error());
  if (session.jsonOutput()) return session.printJson(*device);

  Entries entries;
  for (const char* key : {"id", "type", "name", "vendor"}) {
    entries.emplace_back(key, stringAt(*device, key));
  }
  entries.emplace_back("backends", joinStrings(memberAt(*device, "backends")));
  entries.emplace_back("simulated", memberAt(*device, "simulated") == true ? "yes" : "no");
  entries.emplace_back("uuid", stringAt(*device, "uuid"));
  entries.emplace_back("pciBusId", stringAt(*device, "pciBusId"));
  appendMemory(memberAt(*device, "memory"), entries);
  flattenJson("readings", memberAt(*device, "readings"), entries, /*formatUnits=*/true);
  appendHealth("health", memberAt(*device, "health"), entries);
  flattenJson("properties", memberAt(*device, "properties"), entries);
  static const std::set<std::string, std::less<>> kShown = {
      "id",       "type",   "name",     "vendor", "backends",   "simulated", "uuid",
      "pciBusId", "memory", "readings", "health", "properties", "updatedAt"};
  if (device->is_object()) {
    for (const auto& [key, value] : device->items()) {
      if (!kShown.contains(key)) flattenJson(key, value, entries);
    }
  }
  entries.emplace_back("updatedAt", stringAt(*device, "updatedAt"));
  session.out() << renderKeyValues(entries);
  return kExitOk;
}

int showDeviceHealth(CliSession& session, const std::string& id) {
  auto health = session.getJson(devicePath(id) + "/health");
  if (!health) return session.report(health.error());
  if (session.jsonOutput()) return session.printJson(*health);

  Entries entries = {{"device", stringAt(*health, "deviceId")}};
  appendHealth("health", *health, entries);
  flattenJson("readings", memberAt(*health, "readings"), entries, /*formatUnits=*/true);
  session.out() << renderKeyValues(entries);
  return kExitOk;
}

// Health of every device, from the device list: one table row per reason (one row with "-"
// for a device without reasons). --json prints {"devices": [<health object per device>]}.
int showAllHealth(CliSession& session) {
  auto list = session.getJson("/api/device");
  if (!list) return session.report(list.error());
  const Json& devices = memberAt(*list, "devices");

  if (session.jsonOutput()) {
    Json healthList = Json::array();
    if (devices.is_array()) {
      for (const auto& device : devices) {
        Json entry =
            memberAt(device, "health").is_object() ? memberAt(device, "health") : Json::object();
        entry["deviceId"] = memberAt(device, "id");
        entry["readings"] = memberAt(device, "readings");
        healthList.push_back(std::move(entry));
      }
    }
    return session.printJson(Json{{"devices", std::move(healthList)}});
  }

  Table table({{"ID"},
               {"NAME", Align::kLeft, kMaxNameWidth},
               {"HEALTH"},
               {"SEVERITY"},
               {"REASON"},
               {"MESSAGE"}});
  if (devices.is_array()) {
    for (const auto& device : devices) {
      const std::string id = stringAt(device, "id");
      const std::string name = stringAt(device, "name");
      const std::string status = healthCell(device);
      const Json& reasons = memberAt(memberAt(device, "health"), "reasons");
      if (!reasons.is_array() || reasons.empty()) {
        table.addRow({id, name, status});
        continue;
      }
      for (const auto& reason : reasons) {
        table.addRow({id, name, status, stringAt(reason, "severity"), stringAt(reason, "code"),
                      stringAt(reason, "message")});
      }
    }
  }
  session.out() << (table.rowCount() == 0 ? std::string("no devices\n") : table.render());
  return kExitOk;
}

}  // namespace

void addDeviceCommands(CLI::App& app, CommandAction& action) {
  auto type = std::make_shared<std::string>();
  auto* devices = app.add_subcommand("devices", "List devices with memory, load and health");
  devices->add_option("--type", *type, "Only devices of this type")
      ->check(CLI::IsMember({"gpu", "cpu"}));
  devices->callback([&action, type] {
    action = [type](CliSession& session) { return listDevices(session, *type); };
  });

  auto deviceId = std::make_shared<std::string>();
  auto* device = app.add_subcommand("device", "Show everything known about one device");
  device->add_option("id", *deviceId, "Device id, e.g. cpu0 or gpu-3f2a9c1e0b7d")->required();
  device->callback([&action, deviceId] {
    action = [deviceId](CliSession& session) { return showDevice(session, *deviceId); };
  });

  auto healthId = std::make_shared<std::string>();
  auto* health = app.add_subcommand("health", "Show the health of one device or of all");
  health->add_option("id", *healthId, "Device id; all devices when left out");
  health->callback([&action, healthId] {
    action = [healthId](CliSession& session) {
      return healthId->empty() ? showAllHealth(session) : showDeviceHealth(session, *healthId);
    };
  });
}

}  // namespace deviceops::client
