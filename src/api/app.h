// The daemon's API: every route group, wired to the domain libraries by reference. Handlers
// decode, make one domain call and encode (route_table.h says how to add one). Components that
// always run (devices, memory) are in AppContext; optional ones (inference, telemetry,
// training) are registered with their own group, or as the same routes answering 503 when the
// configuration disables them — nothing holds or checks a null component.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/device_codec.h"
#include "config/config.h"
#include "devices/inventory.h"
#include "generation/service.h"
#include "generation/suite_manager.h"
#include "http/router.h"
#include "inference/registry.h"
#include "memory/memory_service.h"
#include "selftest/self_test_service.h"
#include "telemetry/telemetry_service.h"
#include "training/dataset_catalog.h"
#include "training/job_manager.h"
#include "training/model_export.h"

namespace deviceops::api {

class LiveFeed;

// One part of GET /ready beyond the devices: shown under checks.<name>; a degraded part makes
// the node "degraded" (still 200: it serves).
struct ReadinessCheck {
  bool degraded = false;
  nlohmann::json detail;
};

// What every route group may read. Set up before serving; the vectors are not changed after.
struct AppContext {
  const config::Config& config;
  devices::Inventory& inventory;
  memory::MemoryService& memory;
  DeviceCatalog catalog;
  // The node's name in metrics and availability: the telemetry node, or empty without it.
  std::string node;
  // Extra parts of GET /ready, by name; called concurrently from I/O threads (must not block).
  std::vector<std::pair<std::string, std::function<ReadinessCheck()>>> readinessChecks;
  // Each appends Prometheus text-format metric families to `out` for GET /metrics; called
  // concurrently from worker threads, so each must be thread-safe.
  std::vector<std::function<void(std::string& out)>> metricsWriters;
  std::atomic<bool> ready{false};

  AppContext(const config::Config& c, devices::Inventory& i, memory::MemoryService& m)
      : config(c), inventory(i), memory(m), catalog(i) {}
};

// Routes of the components that always run: system (health, ready, version, config, OpenAPI,
// Swagger UI), devices, memory, availability, /metrics.
void registerCoreRoutes(http::Router& router, AppContext& context);

// /api/inference (our error shape) and /v2 (KServe v2 / Triton's).
void registerInferenceRoutes(http::Router& router, AppContext& context,
                             inference::ModelRegistry& models);
// Inference disabled: every route answers 503, except /v2/health/live (200), /v2 (metadata) and
// /v2/health/ready (400: not ready), as Triton's probes expect.
void registerInferenceUnavailable(http::Router& router, AppContext& context);

// /api/integration/health, /statistics and /api/events (the telemetry store).
void registerTelemetryRoutes(http::Router& router, AppContext& context,
                             telemetry::TelemetryService& telemetry);
void registerTelemetryUnavailable(http::Router& router, AppContext& context);

// /api/training. `serve` registers an exported ONNX file with the inference registry; without
// inference it answers kUnavailable (training::unavailableModelServer).
void registerTrainingRoutes(http::Router& router, AppContext& context, training::JobManager& jobs,
                            training::DatasetCatalog& datasets, training::ModelServer serve);
void registerTrainingUnavailable(http::Router& router, AppContext& context);

// /api/suites (with their custom VAEs) and /api/generation (model suites and SDXL generation;
// they need inference).
void registerGenerationRoutes(http::Router& router, AppContext& context,
                              generation::SuiteManager& suites, generation::GenerationService& jobs,
                              inference::ModelRegistry& registry);
void registerGenerationUnavailable(http::Router& router, AppContext& context,
                                   const std::string& reason);

// /api/testing: device health, end-to-end self-tests and benchmarks (src/selftest).
void registerTestingRoutes(http::Router& router, AppContext& context,
                           selftest::SelfTestService& service);
void registerTestingUnavailable(http::Router& router, AppContext& context,
                                const std::string& reason);

// GET /api/stream: the live feed as Server-Sent Events. `hello` is the first event's data
// (node, intervalSeconds, telemetry); the feed must outlive the router's use.
void registerStreamRoutes(http::Router& router, AppContext& context, LiveFeed& feed,
                          nlohmann::json hello);
void registerStreamUnavailable(http::Router& router, AppContext& context);

// Every group with every component disabled but the core ones: the API's full shape (tests).
void registerAllRoutesDisabled(http::Router& router, AppContext& context);

// docs/openapi.yaml as JSON, compiled in (generated by scripts/embed_openapi.py).
std::string_view openApiSpecJson();
// "1.31.1", from the linked ONNX Runtime library itself.
std::string onnxRuntimeVersion();

}  // namespace deviceops::api
