// Prometheus families of the telemetry service (GET /metrics): sampler and writer counters, store
// health, labelled with the node and the store kind.
#include "common/prometheus.h"
#include "telemetry/telemetry_service.h"

namespace deviceops::telemetry {

void TelemetryService::writeMetrics(std::string& text) {
  prometheus::TextWriter out(text);
  TelemetryService& service = *this;
  const StoreHealth health = service.storeHealth();
  const prometheus::Labels labels = {{"node", service.node()}, {"store", health.kind}};
  const auto counter = [&](const char* name, const char* help, double value) {
    out.family(name, "counter", help);
    out.sample(name, labels, value);
  };
  const auto gauge = [&](const char* name, const char* help, double value) {
    out.family(name, "gauge", help);
    out.sample(name, labels, value);
  };
  const WriterCounters& c = health.counters;
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

}  // namespace deviceops::telemetry
