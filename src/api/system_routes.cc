// GET /health, /ready, /api/version, /api/config, /openapi.json, /swagger, /swagger/{file}, and
// the dashboard: / and /assets/{file} (webRoot/dist, built by web/build.mjs).
#include <fmt/format.h>
#include <onnxruntime_c_api.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "api/route_table.h"
#include "api/routes.h"
#include "api/static_assets.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

// Our own Swagger UI initializer: the UI reads /openapi.json instead of the package's demo URL.
constexpr const char* kSwaggerInitializer =
    "window.onload = function () {\n"
    "  window.ui = SwaggerUIBundle({url: '/openapi.json', dom_id: '#swagger-ui',\n"
    "    deepLinking: true, presets: [SwaggerUIBundle.presets.apis, "
    "SwaggerUIStandalonePreset],\n"
    "    layout: 'StandaloneLayout'});\n};\n";

nlohmann::json encodeConfig(const config::Config& c) {
  json tokens = json::array();
  for (const auto& token : c.tokens) {
    tokens.push_back({{"name", token.name}, {"scope", scopeName(token.scope)}});
  }
  json backends = c.devices.backends;
  return {{"listen", fmt::format("{}:{}", c.server.listenHost, c.server.listenPort)},
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
            {"throttlingDegrades", c.devices.health.throttlingDegrades}}}};
}

http::Reply redirect(int status, const char* location) {
  return http::bytesReply(status, "text/plain", std::string("see ") + location + "\n")
      .withHeader("Location", location);
}

class SystemRoutes {
 public:
  explicit SystemRoutes(AppContext& context)
      : context_(context),
        swagger_(context.config.server.webRoot / "node_modules" / "swagger-ui-dist",
                 "run scripts/setup.sh (npm ci in web/)"),
        dashboard_(context.config.server.webRoot / "dist",
                   "run scripts/setup.sh (npm ci in web/ and the deviceops_web build target)"),
        dashboardAssets_(context.config.server.webRoot / "dist" / "assets",
                         "run scripts/setup.sh (npm ci in web/ and the deviceops_web target)"),
        started_(std::chrono::system_clock::now()) {}

  Result<http::Reply> health(http::Request&) {
    const auto uptime = std::chrono::duration<double>(std::chrono::system_clock::now() - started_);
    return http::jsonReply(200, {{"status", "ok"}, {"uptimeSeconds", uptime.count()}});
  }

  // 503 "starting" until the daemon serves; then 200, "degraded" when a check says so.
  Result<http::Reply> ready(http::Request&) {
    auto snapshot = context_.inventory.snapshot();
    json backends = json::object();
    for (const auto& backend : snapshot->backends) {
      backends[backend.name] = backend.available ? "ok" : "unavailable: " + backend.reason;
    }
    json checks = {{"devices", backends}, {"store", "ok"}};
    bool degraded = false;
    for (const auto& [name, check] : context_.readinessChecks) {
      ReadinessCheck result = check();
      degraded = degraded || result.degraded;
      checks[name] = std::move(result.detail);
    }
    const bool isReady = context_.ready.load();
    return http::jsonReply(isReady ? 200 : 503, {{"status", !isReady   ? "starting"
                                                            : degraded ? "degraded"
                                                                       : "ready"},
                                                 {"checks", checks}});
  }

  Result<http::Reply> version(http::Request&) {
    return http::jsonReply(200, {{"name", "deviceops"},
                                 {"version", DEVICEOPS_VERSION},
                                 {"onnxRuntimeVersion", onnxRuntimeVersion()},
                                 {"onnxRuntimeVersionExpected", DEVICEOPS_ORT_VERSION},
#ifdef NDEBUG
                                 {"buildType", "Release"},
#else
                                 {"buildType", "Debug"},
#endif
                                 {"compiler", __VERSION__}});
  }

  Result<http::Reply> config(http::Request&) {
    return http::jsonReply(200, encodeConfig(context_.config));
  }

  Result<http::Reply> openApi(http::Request&) {
    return http::bytesReply(200, "application/json", std::string(openApiSpecJson()));
  }

  Result<http::Reply> swaggerRedirect(http::Request&) { return redirect(301, "/swagger/"); }
  Result<http::Reply> swaggerIndex(http::Request& request) {
    return swagger_.serve("index.html", request);
  }
  Result<http::Reply> swaggerFile(http::Request& request) {
    const std::string& file = request.pathParam("file");
    if (file == "swagger-initializer.js") {
      return http::bytesReply(200, "application/javascript", kSwaggerInitializer);
    }
    return swagger_.serve(file, request, "public, max-age=3600");
  }
  Result<http::Reply> dashboard(http::Request& request) {
    return dashboard_.serve("index.html", request);
  }
  Result<http::Reply> dashboardAsset(http::Request& request) {
    return dashboardAssets_.serve(request.pathParam("file"), request);
  }

 private:
  AppContext& context_;
  StaticAssets swagger_;
  StaticAssets dashboard_;
  StaticAssets dashboardAssets_;
  std::chrono::system_clock::time_point started_;
};

constexpr auto kInline = http::Execution::kInline;
constexpr RouteSpec<SystemRoutes> kSystemRoutes[] = {
    {"GET", "/health", &SystemRoutes::health, kInline, std::nullopt, /*authenticate=*/false},
    {"GET", "/ready", &SystemRoutes::ready, kInline, std::nullopt, /*authenticate=*/false},
    {"GET", "/api/version", &SystemRoutes::version, kInline},
    {"GET", "/api/config", &SystemRoutes::config, http::Execution::kWorker, Scope::kAdmin},
    // The spec, Swagger UI and the dashboard's files hold no secrets: a browser loads them
    // before it has a token (the page asks for one when the API answers 401).
    {"GET", "/openapi.json", &SystemRoutes::openApi, kInline, std::nullopt, false},
    {"GET", "/swagger", &SystemRoutes::swaggerRedirect, kInline, std::nullopt, false},
    {"GET", "/swagger/", &SystemRoutes::swaggerIndex, kInline, std::nullopt, false},
    {"GET", "/swagger/{file}", &SystemRoutes::swaggerFile, kInline, std::nullopt, false},
    {"GET", "/", &SystemRoutes::dashboard, kInline, std::nullopt, false},
    {"GET", "/assets/{file}", &SystemRoutes::dashboardAsset, kInline, std::nullopt, false},
};

}  // namespace

std::string onnxRuntimeVersion() { return OrtGetApiBase()->GetVersionString(); }

void registerSystemRoutes(http::Router& router, AppContext& context) {
  addRoutes<SystemRoutes>(router, context.config, http::ErrorShape::kApi,
                          std::make_shared<SystemRoutes>(context), kSystemRoutes);
}

}  // namespace deviceops::api
