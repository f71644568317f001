// GET /health, /ready, /api/version, /api/config, /openapi.json, /swagger, /swagger/{file}.
#include <fmt/format.h>
#include <onnxruntime_c_api.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "api/app.h"
#include "common/time_format.h"
#include "http/errors.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

std::string contentTypeFor(std::string_view file) {
  const auto endsWith = [&](std::string_view suffix) { return file.ends_with(suffix); };
  if (endsWith(".html")) return "text/html; charset=utf-8";
  if (endsWith(".js")) return "application/javascript";
  if (endsWith(".css")) return "text/css";
  if (endsWith(".png")) return "image/png";
  if (endsWith(".json") || endsWith(".map")) return "application/json";
  return "application/octet-stream";
}

// Serves swagger-ui-dist's files, read once and kept in memory. Our own initializer points the
// UI at /openapi.json instead of the package's demo URL.
class SwaggerAssets {
 public:
  explicit SwaggerAssets(std::filesystem::path root) : root_(std::move(root)) {}

  http::Response serve(const std::string& file) {
    if (file == "swagger-initializer.js") {
      return http::textResponse(200, "application/javascript", kInitializer);
    }
    if (file.empty() || file.find('/') != std::string::npos || file.find("..") != std::string::npos ||
        file.front() == '.') {
      return http::errorResponse(ErrorCode::kNotFound, "no such Swagger UI file");
    }
    std::lock_guard lock(mutex_);
    auto cached = files_.find(file);
    if (cached == files_.end()) {
      std::ifstream input(root_ / file, std::ios::binary);
      if (!input) {
        if (!std::filesystem::exists(root_ / "index.html")) {
          return http::errorResponse(
              ErrorCode::kUnavailable,
              fmt::format("Swagger UI assets are not installed at {}; run scripts/setup.sh "
                          "(npm install of swagger-ui-dist)",
                          root_.string()));
        }
        return http::errorResponse(ErrorCode::kNotFound, "no such Swagger UI file: " + file);
      }
      std::stringstream content;
      content << input.rdbuf();
      cached = files_.emplace(file, content.str()).first;
    }
    http::Response response = http::textResponse(200, contentTypeFor(file), cached->second);
    response.headers.emplace_back("Cache-Control", "public, max-age=3600");
    return response;
  }

 private:
  static constexpr const char* kInitializer =
      "window.onload = function () {\n"
      "  window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui',\n"
      "    deepLinking: true, presets: [SwaggerUIBundle.presets.apis, "
      "SwaggerUIStandalonePreset],\n"
      "    layout: 'StandaloneLayout'});\n};\n";
  std::filesystem::path root_;
  std::mutex mutex_;  // guards files_
  std::unordered_map<std::string, std::string> files_;
};

}  // namespace

std::string onnxRuntimeVersion() { return OrtGetApiBase()->GetVersionString(); }

void registerSystemRoutes(http::Router& router, AppContext& context) {
  const auto started = std::chrono::system_clock::now();
  auto& health = router.add("GET", "/health", [started](http::Request&) {
    const auto uptime = std::chrono::duration<double>(std::chrono::system_clock::now() - started);
    return http::jsonResponse(200, {{"status", "ok"}, {"uptimeSeconds", uptime.count()}});
  });
  health.execution = http::Execution::kInline;
  health.authenticate = false;

  auto& ready = router.add("GET", "/ready", [&context](http::Request&) {
    auto snapshot = context.inventory.snapshot();
    json backends = json::object();
    for (const auto& backend : snapshot->backends) {
      backends[backend.name] = backend.available ? "ok" : "unavailable: " + backend.reason;
    }
    const bool isReady = context.ready.load();
    // The telemetry store: "degraded" while writes fail (samples are buffered, the API still
    // answers, so the node stays ready: 200 with status "degraded").
    json telemetry = {{"status", "disabled"}};
    bool degraded = false;
    if (context.telemetry != nullptr) {
      const telemetry::StoreHealth store = context.telemetry->storeHealth();
      degraded = !store.up;
      telemetry = {{"status", store.up ? "ok" : "degraded"},
                   {"store", store.kind},
                   {"bufferedItems", store.counters.bufferedItems},
                   {"spilledItems", store.counters.spilledItems},
                   {"lostSamples", store.counters.samplesLost},
                   {"lostEvents", store.counters.eventsLost}};
      if (!store.up) telemetry["error"] = store.lastError;
    }
    return http::jsonResponse(
        isReady ? 200 : 503,
        {{"status", !isReady ? "starting" : degraded ? "degraded" : "ready"},
         {"checks", {{"devices", backends}, {"store", "ok"}, {"telemetry", telemetry}}}});
  });
  ready.execution = http::Execution::kInline;
  ready.authenticate = false;

  router
      .add("GET", "/api/version",
           [](http::Request&) {
             return http::jsonResponse(200, {{"name", "deviceops"},
                                             {"version", DEVICEOPS_VERSION},
                                             {"onnxRuntimeVersion", onnxRuntimeVersion()},
                                             {"onnxRuntimeVersionExpected", DEVICEOPS_ORT_VERSION},
#ifdef NDEBUG
                                             {"buildType", "Release"},
#else
                                             {"buildType", "Debug"},
#endif
                                             {"compiler", __VERSION__}});
           })
      .execution = http::Execution::kInline;

  router
      .add("GET", "/api/config",
           [&context](http::Request&) {
             const config::Config& c = context.config;
             json tokens = json::array();
             for (const auto& token : c.tokens) {
               tokens.push_back({{"name", token.name}, {"scope", scopeName(token.scope)}});
             }
             json backends = c.devices.backends;
             return http::jsonResponse(
                 200, {{"listen", fmt::format("{}:{}", c.server.listenHost, c.server.listenPort)},
                       {"dataDir", c.dataDir.string()},
                       {"database", c.database.rfind("postgres", 0) == 0 ? "postgresql" : c.database},
                       {"authRequired", c.authRequired()},
                       {"tokens", tokens},
                       {"maxBodyBytes", c.server.maxBodyBytes},
                       {"devices",
                        {{"backends", backends},
                         {"pollIntervalMs", c.devices.pollInterval.count()},
                         {"simulatedDevices", c.devices.simulated.devices.size()}}},
                       {"health",
                        {{"temperatureMarginCelsius", c.devices.health.temperatureMarginCelsius},
                         {"fallbackSlowdownCelsius", c.devices.health.fallbackSlowdownCelsius},
                         {"memoryUsedRatio", c.devices.health.memoryUsedRatio},
                         {"throttlingDegrades", c.devices.health.throttlingDegrades}}}});
           })
      .scope = Scope::kAdmin;

  router
      .add("GET", "/openapi.json",
           [](http::Request&) {
             return http::textResponse(200, "application/json", std::string(openApiSpecJson()));
           })
      .execution = http::Execution::kInline;

  auto assets = std::make_shared<SwaggerAssets>(context.config.server.webRoot /
                                                "node_modules" / "swagger-ui-dist");
  router.add("GET", "/swagger", [](http::Request&) {
    http::Response response = http::textResponse(301, "text/plain", "see /swagger/\n");
    response.headers.emplace_back("Location", "/swagger/");
    return response;
  });
  router.add("GET", "/swagger/", [assets](http::Request&) { return assets->serve("index.html"); });
  router.add("GET", "/swagger/{file}",
             [assets](http::Request& request) { return assets->serve(request.pathParam("file")); });
  router.add("GET", "/", [](http::Request&) {
    http::Response response = http::textResponse(302, "text/plain", "see /swagger/\n");
    response.headers.emplace_back("Location", "/swagger/");
    return response;
  });
}

void registerAllRoutes(http::Router& router, AppContext& context) {
  registerSystemRoutes(router, context);
  registerDeviceRoutes(router, context);
  registerMemoryRoutes(router, context);
  registerInferenceRoutes(router, context);
  registerTelemetryRoutes(router, context);
  registerMetricsRoutes(router, context);
  registerTrainingRoutes(router, context);
}

}  // namespace deviceops::api
