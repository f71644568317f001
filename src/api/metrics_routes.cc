// GET /metrics: Prometheus text exposition format 0.0.4. Device gauges from the live inventory
// snapshot (labels device, vendor, name, node), the memory ledger's held bytes, the telemetry
// writer's counters and the models' families come from AppContext::metricsWriters (registered
// by the telemetry and inference groups).
#include <fmt/format.h>

#include "api/route_table.h"
#include "api/routes.h"
#include "common/prometheus.h"

namespace deviceops::api {
namespace {

using prometheus::Labels;
using Exposition = prometheus::TextWriter;

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
                 memory::MemoryService& memory, const std::string& node) {
  out.family("deviceops_memory_held_bytes", "gauge",
             "Bytes this service holds on a device (memory ledger), by kind.");
  for (const devices::DeviceView& view : snapshot.devices) {
    auto status = memory.status(view.id);
    if (!status.ok()) continue;
    for (const auto& [kind, bytes] : status->heldBytesByKind) {
      out.sample("deviceops_memory_held_bytes",
                 {{"device", view.id}, {"kind", kind}, {"node", node}}, static_cast<double>(bytes));
    }
  }
}

class MetricsRoutes {
 public:
  explicit MetricsRoutes(AppContext& context) : context_(context) {}

  Result<http::Reply> metrics(http::Request&) {
    auto snapshot = context_.inventory.snapshot();
    const std::string node = context_.node.empty() ? telemetry::localHostName() : context_.node;
    std::string text;
    Exposition out(text);
    writeDeviceGauges(out, *snapshot, node);
    writeLedger(out, *snapshot, context_.memory, node);
    for (const auto& writer : context_.metricsWriters) writer(text);
    return http::bytesReply(200, "text/plain; version=0.0.4; charset=utf-8", std::move(text));
  }

 private:
  AppContext& context_;
};

constexpr RouteSpec<MetricsRoutes> kMetricsRoutes[] = {
    {"GET", "/metrics", &MetricsRoutes::metrics},
};

}  // namespace

void registerMetricsRoutes(http::Router& router, AppContext& context) {
  addRoutes<MetricsRoutes>(router, context.config, http::ErrorShape::kApi,
                           std::make_shared<MetricsRoutes>(context), kMetricsRoutes);
}

}  // namespace deviceops::api
