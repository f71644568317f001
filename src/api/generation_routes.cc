// /api/suites (model suites: import, list, show, load, unload, delete) and /api/generation
// (image-generation jobs: submit, list, show, events as Server-Sent Events, images, cancel).
// Handlers decode with generation_codec, make one domain call and encode.
#include <fmt/format.h>

#include <charconv>

#include "api/app.h"
#include "api/event_stream.h"
#include "api/generation_codec.h"
#include "api/route_table.h"
#include "api/routes.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

class SuiteRoutes {
 public:
  explicit SuiteRoutes(generation::SuiteManager& suites) : suites_(suites) {}

  Result<http::Reply> import(http::Request& request) {
    ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
    ASSIGN_OR_RETURN(const generation::ImportRequest decoded, decodeSuiteImport(body));
    ASSIGN_OR_RETURN(const generation::SuiteInfo suite, suites_.import(decoded));
    return http::jsonReply(201, encodeSuite(suite))
        .withHeader("Location", "/api/suites/" + suite.id);
  }

  Result<http::Reply> list(http::Request&) {
    return http::jsonReply(200, encodeSuites(suites_.list()));
  }

  Result<http::Reply> show(http::Request& request) {
    return encoded(suites_.get(request.pathParam("suiteId")), encodeSuite);
  }

  Result<http::Reply> load(http::Request& request) {
    return encoded(suites_.load(request.pathParam("suiteId")), encodeSuite);
  }

  Result<http::Reply> unload(http::Request& request) {
    return encoded(suites_.unload(request.pathParam("suiteId")), encodeSuite);
  }

  Result<http::Reply> remove(http::Request& request) {
    const std::string id = request.pathParam("suiteId");
    RETURN_IF_ERROR(suites_.remove(id));
    return http::jsonReply(200, {{"deleted", id}});
  }

 private:
  generation::SuiteManager& suites_;
};

class GenerationRoutes {
 public:
  explicit GenerationRoutes(generation::GenerationService& jobs) : jobs_(jobs) {}

  Result<http::Reply> submit(http::Request& request) {
    ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
    ASSIGN_OR_RETURN(const generation::GenerationRequest decoded, decodeGenerationRequest(body));
    ASSIGN_OR_RETURN(const generation::GenerationJob job, jobs_.submit(decoded));
    return http::jsonReply(202, encodeGenerationJob(job))
        .withHeader("Location", "/api/generation/" + job.id);
  }

  Result<http::Reply> list(http::Request&) {
    return http::jsonReply(200, encodeGenerationJobs(jobs_.list()));
  }

  Result<http::Reply> show(http::Request& request) {
    return encoded(jobs_.get(request.pathParam("jobId")), encodeGenerationJob);
  }

  Result<http::Reply> cancel(http::Request& request) {
    return encoded(jobs_.cancel(request.pathParam("jobId")), encodeGenerationJob, 202);
  }

  Result<http::Reply> image(http::Request& request) {
    const std::string& text = request.pathParam("index");
    int index = -1;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), index);
    if (error != std::errc() || end != text.data() + text.size() || index < 0) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("image index '{}' is not a non-negative integer", text),
                       {{"parameter", "index"}});
    }
    ASSIGN_OR_RETURN(const generation::GenerationService::ImageFile file,
                     jobs_.image(request.pathParam("jobId"), index));
    return http::bytesReply(200, file.contentType, file.bytes)
        .withHeader("Content-Disposition", fmt::format("inline; filename=\"{}-{}\"",
                                                       request.pathParam("jobId"), file.fileName));
  }

  Result<http::Reply> events(http::Request& request) {
    const std::string jobId = request.pathParam("jobId");
    RETURN_IF_ERROR(jobs_.get(jobId));
    generation::GenerationService& jobs = jobs_;
    auto snapshot = [&jobs, jobId]() -> std::optional<json> {
      Result<generation::GenerationJob> job = jobs.get(jobId);
      if (!job.ok()) return std::nullopt;
      json summary = encodeGenerationJob(*job);
      summary.erase("report");
      return summary;
    };
    auto fetch = [&jobs, jobId](std::uint64_t after,
                                std::chrono::milliseconds wait) -> std::optional<StreamedBatch> {
      Result<generation::GenerationEventBatch> batch = jobs.events(jobId, after, wait);
      if (!batch.ok()) return std::nullopt;
      return toStreamedBatch(*batch);
    };
    return http::streamReply(
        std::make_shared<JobEventStream>(std::move(snapshot), std::move(fetch),
                                         lastEventId(request.header("last-event-id"))),
        "text/event-stream");
  }

 private:
  generation::GenerationService& jobs_;
};

constexpr RouteSpec<SuiteRoutes> kSuiteRoutes[] = {
    {"POST", "/api/suites", &SuiteRoutes::import},
    {"GET", "/api/suites", &SuiteRoutes::list},
    {"GET", "/api/suites/{suiteId}", &SuiteRoutes::show},
    {"POST", "/api/suites/{suiteId}/load", &SuiteRoutes::load},
    {"POST", "/api/suites/{suiteId}/unload", &SuiteRoutes::unload},
    {"DELETE", "/api/suites/{suiteId}", &SuiteRoutes::remove},
};

constexpr RouteSpec<GenerationRoutes> kGenerationRoutes[] = {
    {"POST", "/api/generation", &GenerationRoutes::submit},
    {"GET", "/api/generation", &GenerationRoutes::list},
    {"GET", "/api/generation/{jobId}", &GenerationRoutes::show},
    {"POST", "/api/generation/{jobId}/cancel", &GenerationRoutes::cancel},
    {"GET", "/api/generation/{jobId}/images/{index}", &GenerationRoutes::image},
    {"GET", "/api/generation/{jobId}/events", &GenerationRoutes::events},
};

}  // namespace

void registerGenerationRoutes(http::Router& router, AppContext& context,
                              generation::SuiteManager& suites, generation::GenerationService& jobs,
                              inference::ModelRegistry& registry) {
  addRoutes<SuiteRoutes>(router, context.config, http::ErrorShape::kApi,
                         std::make_shared<SuiteRoutes>(suites), kSuiteRoutes);
  registerVaeRoutes(router, context, suites, registry);
  addRoutes<GenerationRoutes>(router, context.config, http::ErrorShape::kApi,
                              std::make_shared<GenerationRoutes>(jobs), kGenerationRoutes);
  context.metricsWriters.push_back([&jobs](std::string& out) { jobs.writeMetrics(out); });
}

void registerGenerationUnavailable(http::Router& router, AppContext& context,
                                   const std::string& reason) {
  addUnavailableRoutes<SuiteRoutes>(router, context.config, http::ErrorShape::kApi, kSuiteRoutes,
                                    reason);
  registerVaeUnavailable(router, context, reason);
  addUnavailableRoutes<GenerationRoutes>(router, context.config, http::ErrorShape::kApi,
                                         kGenerationRoutes, reason);
}

}  // namespace deviceops::api
