// GET /metrics: Prometheus text exposition format 0.0.4. Device gauges from the live inventory
// snapshot (labels device, vendor, name, node), the memory ledger's held bytes, the telemetry
// writer's counters, then every family registered in AppContext::metricsWriters.
#include <fmt/format.h>

#include "api/app.h"
#include "http/errors.h"

namespace deviceops::api {
namespace {

// Label values escape backslash, double quote and line feed (format 0.0.4).
std::string escapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

class Exposition {
 public:
  // Starts a family: "# HELP" and "# TYPE" lines.
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels,
              double value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      for (std::size_t i = 0; i < labels.size(); ++i) {
        out_ += fmt::format("{}{}=\"{}\"", i == 0 ? "" : ",", labels[i].first,
                            escapeLabel(labels[i].second));
      }
      out_ += '}';
    }
    out_ += fmt::format(" {}\n", value);
  }
  std::string& text() { return out_; }

 private:
  std::string out_;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

Labels deviceLabels(const devices::DeviceView& view, const std::string& node) {
  return {{"device", view.id},
          {"vendor", view.record.vendor},
          {"name", view.record.name},
          {"node", node}};
}

void writeDeviceGauges(Exposition& out, const devices::InventorySnapshot& snapshot,
                       const std::string& node) {
  struct Gauge {
    const char* name;
    const char* help;
    std::optional<double> (*read)(const devices::DeviceView&);
  };
  static const Gauge kGauges[] = {
      {"deviceops_device_temperature_celsius", "Device temperature in degrees Celsius.",
       [](const devices::DeviceView& v) { return v.record.readings.temperatureCelsius; }},
      {"deviceops_device_memory_used_bytes", "Device memory in use, as the driver reports it.",
       [](const devices::DeviceView& v) -> std::optional<double> {
         if (!v.record.memory.usedBytes) return std::nullopt;
         return static_cast<double>(*v.record.memory.usedBytes);
       }},
      {"deviceops_device_memory_total_bytes", "Device memory in total.",
       [](const devices::DeviceView& v) -> std::optional<double> {
         return static_cast<double>(v.record.memory.totalBytes);
       }},
      {"deviceops_device_utilization_ratio", "Compute utilization, 0 to 1.",
       [](const devices::DeviceView& v) { return v.record.readings.utilizationRatio; }},
      {"deviceops_device_power_watts", "Power draw in watts.",
       [](const devices::DeviceView& v) { return v.record.readings.powerWatts; }},
      {"deviceops_device_health_status", "Health: 0 healthy, 1 degraded, 2 critical, 3 lost.",
       [](const devices::DeviceView& v) -> std::optional<double> {
         return static_cast<double>(static_cast<int>(v.health.status));
       }},
  };
  for (const Gauge& gauge : kGauges) {
    out.family(gauge.name, "gauge", gauge.help);
    for (const devices::DeviceView& view : snapshot.devices) {
      if (auto value = gauge.read(view)) out.sample(gauge.name, deviceLabels(view, node), *value);
    }
  }
}

void writeLedger(Exposition& out, const devices::InventorySnapshot& snapshot,
                 memory::MemoryService* memory, const std::string& node) {
  if (memory == nullptr) return;
  out.family("deviceops_memory_held_bytes", "gauge",
             "Bytes this service holds on a device (memory ledger), by kind.");
  for (const devices::DeviceView& view : snapshot.devices) {
    auto status = memory->status(view.id);
    if (!status.ok()) continue;
    for (const auto& [kind, bytes] : status->heldBytesByKind) {
      out.sample("deviceops_memory_held_bytes",
                 {{"device", view.id}, {"kind", kind}, {"node", node}}, static_cast<double>(bytes));
    }
  }
}

void writeTelemetry(Exposition& out, telemetry::TelemetryService& service) {
  const telemetry::StoreHealth health = service.storeHealth();
  const Labels labels = {{"node", service.node()}, {"store", health.kind}};
  const auto counter = [&](const char* name, const char* help, double value) {
    out.family(name, "counter", help);
    out.sample(name, labels, value);
  };
  const auto gauge = [&](const char* name, const char* help, double value) {
    out.family(name, "gauge", help);
    out.sample(name, labels, value);
  };
  const telemetry::WriterCounters& c = health.counters;
  counter("deviceops_telemetry_samples_taken_total", "Device samples taken by the sampler.",
          static_cast<double>(service.sampler().sampleCount()));
  counter("deviceops_telemetry_samples_written_total", "Device samples written to the store.",
          static_cast<double>(c.samplesWritten));
  counter("deviceops_telemetry_samples_lost_total",
          "Samples dropped because the buffer bound was exceeded while the store was down.",
          static_cast<double>(c.samplesLost));
  counter("deviceops_telemetry_events_written_total", "Events written to the store.",
          static_cast<double>(c.eventsWritten));
  counter("deviceops_telemetry_events_lost_total", "Events dropped (buffer bound exceeded).",
          static_cast<double>(c.eventsLost));
  counter("deviceops_telemetry_write_failures_total", "Failed store write attempts.",
          static_cast<double>(c.writeFailures));
  gauge("deviceops_telemetry_buffered_items",
        "Samples and events waiting for the store (memory and spill file).",
        static_cast<double>(c.bufferedItems));
  gauge("deviceops_telemetry_spilled_items", "Of the buffered items, those in the spill file.",
        static_cast<double>(c.spilledItems));
  gauge("deviceops_telemetry_store_up", "1 when the last write to the store succeeded.",
        health.up ? 1.0 : 0.0);
}

}  // namespace

void registerMetricsRoutes(http::Router& router, AppContext& context) {
  router.add("GET", "/metrics", [&context](http::Request&) {
    auto snapshot = context.inventory.snapshot();
    const std::string node =
        context.telemetry != nullptr ? context.telemetry->node() : telemetry::localHostName();
    Exposition out;
    writeDeviceGauges(out, *snapshot, node);
    writeLedger(out, *snapshot, context.memory, node);
    if (context.telemetry != nullptr) writeTelemetry(out, *context.telemetry);
    for (const auto& writer : context.metricsWriters) writer(out.text());
    return http::textResponse(200, "text/plain; version=0.0.4; charset=utf-8",
                              std::move(out.text()));
  });
}

}  // namespace deviceops::api
