// GET /health, /ready, /api/version, /api/config, /openapi.json, /swagger, /swagger/{file}.
#include <fmt/format.h>
#include <onnxruntime_c_api.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "api/route_table.h"
#include "api/routes.h"

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

  Result<http::Reply> serve(const std::string& file) {
    if (file == "swagger-initializer.js") {
      return http::bytesReply(200, "application/javascript", kInitializer);
    }
    if (file.empty() || file.find('/') != std::string::npos ||
        file.find("..") != std::string::npos || file.front() == '.') {
      return makeError(ErrorCode::kNotFound, "no such Swagger UI file");
    }
    std::lock_guard lock(mutex_);
    auto cached = files_.find(file);
    if (cached == files_.end()) {
      std::ifstream input(root_ / file, std::ios::binary);
      if (!input) {
        if (!std::filesystem::exists(root_ / "index.html")) {
          return makeError(
              ErrorCode::kUnavailable,
              fmt::format("Swagger UI assets are not installed at {}; run scripts/setup.sh "
                          "(npm install of swagger-ui-dist)",
                          root_.string()));
        }
        return makeError(ErrorCode::kNotFound, "no such Swagger UI file: " + file);
      }
      std::stringstream content;
      content << input.rdbuf();
      cached = files_.emplace(file, content.str()).first;
    }
    return http::bytesReply(200, contentTypeFor(file), cached->second)
        .withHeader("Cache-Control", "public, max-age=3600");
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
        assets_(context.config.server.webRoot / "node_modules" / "swagger-ui-dist"),
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
  Result<http::Reply> rootRedirect(http::Request&) { return redirect(302, "/swagger/"); }
  Result<http::Reply> swaggerIndex(http::Request&) { return assets_.serve("index.html"); }
  Result<http::Reply> swaggerFile(http::Request& request) {
    return assets_.serve(request.pathParam("file"));
  }

 private:
  AppContext& context_;
  SwaggerAssets assets_;
  std::chrono::system_clock::time_point started_;
};

constexpr auto kInline = http::Execution::kInline;
constexpr RouteSpec<SystemRoutes> kSystemRoutes[] = {
    {"GET", "/health", &SystemRoutes::health, kInline, std::nullopt, /*authenticate=*/false},
    {"GET", "/ready", &SystemRoutes::ready, kInline, std::nullopt, /*authenticate=*/false},
    {"GET", "/api/version", &SystemRoutes::version, kInline},
    {"GET", "/api/config", &SystemRoutes::config, http::Execution::kWorker, Scope::kAdmin},
    {"GET", "/openapi.json", &SystemRoutes::openApi, kInline},
    {"GET", "/swagger", &SystemRoutes::swaggerRedirect},
    {"GET", "/swagger/", &SystemRoutes::swaggerIndex},
    {"GET", "/swagger/{file}", &SystemRoutes::swaggerFile},
    {"GET", "/", &SystemRoutes::rootRedirect},
};

}  // namespace

std::string onnxRuntimeVersion() { return OrtGetApiBase()->GetVersionString(); }

void registerSystemRoutes(http::Router& router, AppContext& context) {
  addRoutes<SystemRoutes>(router, context.config, http::ErrorShape::kApi,
                          std::make_shared<SystemRoutes>(context), kSystemRoutes);
}

}  // namespace deviceops::api
