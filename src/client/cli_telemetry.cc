// deviceops stats <device> [--window 24h | --from T --to T], deviceops events [--device --type
// --since --limit], deviceops available [--min-free 4GiB --type gpu --max-util 0.5].
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "client/cli.h"
#include "client/cli_commands.h"
#include "client/table.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;
using Entries = std::vector<std::pair<std::string, std::string>>;

std::string queryString(const std::vector<std::pair<std::string, std::string>>& parameters) {
  std::string query;
  for (const auto& [name, value] : parameters) {
    if (value.empty()) continue;
    query += (query.empty() ? "?" : "&") + name + "=" + percentEncode(value);
  }
  return query;
}

std::string number(const Json& object, std::string_view key, const char* format = "{:.1f}") {
  auto value = numberAt(object, key);
  return value ? fmt::format(fmt::runtime(format), *value) : std::string(kAbsent);
}

struct StatsOptions {
  std::string deviceId;
  std::string window;
  std::string from;
  std::string to;
  std::string resolution;
};

int stats(CliSession& session, const StatsOptions& options) {
  auto result = session.getJson("/api/integration/statistics/" + percentEncode(options.deviceId) +
                                queryString({{"window", options.window},
                                             {"from", options.from},
                                             {"to", options.to},
                                             {"resolution", options.resolution}}));
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  const Json& s = *result;
  Entries entries = {
      {"device", stringAt(s, "deviceId")},
      {"window", stringAt(s, "from") + " .. " + stringAt(s, "to")},
      {"resolution", stringAt(s, "resolution") + " (p95 " + stringAt(s, "p95Method") + ")"},
      {"samples", scalarText(memberAt(s, "sampleCount"))},
      {"coverage", formatRatio(numberAt(s, "coverageRatio"))}};
  session.out() << renderKeyValues(entries) << "\n";
  Table table({{"METRIC"},
               {"MIN", Align::kRight},
               {"AVG", Align::kRight},
               {"MAX", Align::kRight},
               {"P95", Align::kRight},
               {"LAST", Align::kRight}});
  const auto row = [&](const char* label, const char* key, auto format) {
    const Json& m = memberAt(s, key);
    table.addRow({label, format(numberAt(m, "min")), format(numberAt(m, "avg")),
                  format(numberAt(m, "max")), format(numberAt(m, "p95")),
                  format(numberAt(m, "last"))});
  };
  row("temperature", "temperatureCelsius",
      [](std::optional<double> v) { return formatCelsius(v); });
  row("utilization", "utilizationRatio", [](std::optional<double> v) { return formatRatio(v); });
  row("memory used", "memoryUsedBytes", [](std::optional<double> v) {
    return v ? formatBytes(static_cast<std::uint64_t>(*v)) : std::string(kAbsent);
  });
  row("power", "powerWatts", [](std::optional<double> v) {
    return v ? fmt::format("{:.1f} W", *v) : std::string(kAbsent);
  });
  session.out() << table.render() << "\n";
  Entries totals;
  const Json& energy = memberAt(s, "energy");
  totals.emplace_back("energy",
                      energy.is_object()
                          ? fmt::format("{} Wh ({} J)", number(energy, "wattHours", "{:.3f}"),
                                        number(energy, "joules", "{:.0f}"))
                          : std::string(kAbsent));
  totals.emplace_back("throttled", number(s, "throttledSeconds", "{:.0f} s"));
  const Json& health = memberAt(s, "healthSeconds");
  for (const char* state : {"healthy", "degraded", "critical", "lost"}) {
    totals.emplace_back(std::string("time ") + state, number(health, state, "{:.0f} s"));
  }
  session.out() << renderKeyValues(totals);
  return kExitOk;
}

struct EventsOptions {
  std::string deviceId;
  std::string type;
  std::string since;
  std::string limit;
};

int events(CliSession& session, const EventsOptions& options) {
  auto result = session.getJson("/api/events" + queryString({{"deviceId", options.deviceId},
                                                             {"type", options.type},
                                                             {"since", options.since},
                                                             {"limit", options.limit}}));
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  Table table({{"TIME"}, {"DEVICE"}, {"TYPE"}, {"SEVERITY"}, {"MESSAGE", Align::kLeft, 80}});
  const Json& list = memberAt(*result, "events");
  if (list.is_array()) {
    for (const Json& e : list) {
      table.addRow({stringAt(e, "time"), stringAt(e, "deviceId"), stringAt(e, "type"),
                    stringAt(e, "severity"), stringAt(e, "message")});
    }
  }
  session.out() << (table.rowCount() == 0 ? std::string("no events\n") : table.render());
  return kExitOk;
}

struct AvailableOptions {
  std::string minFree;
  std::string type;
  std::string maxUtilization;
};

int available(CliSession& session, const AvailableOptions& options) {
  auto result = session.getJson("/api/integration/availability" +
                                queryString({{"minFreeBytes", options.minFree},
                                             {"type", options.type},
                                             {"maxUtilization", options.maxUtilization}}));
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  Table table({{"DEVICE"},
               {"TYPE"},
               {"NAME", Align::kLeft, 28},
               {"AVAILABLE"},
               {"FREE", Align::kRight},
               {"UTIL", Align::kRight},
               {"HEALTH"},
               {"REASONS", Align::kLeft, 70}});
  const Json& list = memberAt(*result, "devices");
  if (list.is_array()) {
    for (const Json& d : list) {
      std::string reasons;
      const Json& why = memberAt(d, "reasons");
      if (why.is_array()) {
        for (const Json& r : why) reasons += (reasons.empty() ? "" : "; ") + stringAt(r, "message");
      }
      table.addRow({stringAt(d, "deviceId"), stringAt(d, "type"), stringAt(d, "name"),
                    memberAt(d, "available") == true ? "yes" : "no",
                    formatBytes(bytesAt(d, "availableBytes")),
                    formatRatio(numberAt(d, "utilizationRatio")), stringAt(d, "health"), reasons});
    }
  }
  session.out() << (table.rowCount() == 0 ? std::string("no devices\n") : table.render());
  return kExitOk;
}

}  // namespace

void addTelemetryCommands(CLI::App& app, CommandAction& action) {
  auto statsOptions = std::make_shared<StatsOptions>();
  CLI::App* statsCommand =
      app.add_subcommand("stats", "device statistics over a window (from the telemetry store)");
  statsCommand->add_option("device", statsOptions->deviceId, "device id")->required();
  statsCommand->add_option("--window", statsOptions->window, "1h, 24h, 7d, 30d (default 1h)");
  statsCommand->add_option("--from", statsOptions->from, "start, RFC 3339 (instead of --window)");
  statsCommand->add_option("--to", statsOptions->to, "end, RFC 3339 (default now)");
  statsCommand->add_option("--resolution", statsOptions->resolution, "auto, raw, 1m or 1h");
  statsCommand->callback([&action, statsOptions] {
    action = [statsOptions](CliSession& session) { return stats(session, *statsOptions); };
  });

  auto eventsOptions = std::make_shared<EventsOptions>();
  CLI::App* eventsCommand = app.add_subcommand("events", "recent events, newest first");
  eventsCommand->add_option("--device", eventsOptions->deviceId, "only this device");
  eventsCommand->add_option("--type", eventsOptions->type, "type or dotted prefix, e.g. health");
  eventsCommand->add_option("--since", eventsOptions->since, "RFC 3339 time or a duration (1h)");
  eventsCommand->add_option("--limit", eventsOptions->limit, "at most this many (default 100)");
  eventsCommand->callback([&action, eventsOptions] {
    action = [eventsOptions](CliSession& session) { return events(session, *eventsOptions); };
  });

  auto availableOptions = std::make_shared<AvailableOptions>();
  CLI::App* availableCommand =
      app.add_subcommand("available", "which devices can take a job now, and why not");
  availableCommand->add_option("--min-free", availableOptions->minFree,
                               "free memory needed: bytes or a size like 4GiB");
  availableCommand->add_option("--type", availableOptions->type, "gpu or cpu");
  availableCommand->add_option("--max-util", availableOptions->maxUtilization,
                               "highest acceptable utilization, 0 to 1");
  availableCommand->callback([&action, availableOptions] {
    action = [availableOptions](CliSession& session) {
      return available(session, *availableOptions);
    };
  });
}

}  // namespace deviceops::client
