// /api/suites/{suiteId}/vaes... and /api/suites/{suiteId}/vae: a suite's custom VAEs — register
// (a path under the model roots, or a streamed upload), list, remove, select the default, and
// compare by measured round-trip quality. Handlers decode with generation_codec, make one domain
// call and encode.
#include "api/app.h"
#include "api/generation_codec.h"
#include "api/route_table.h"
#include "api/routes.h"
#include "generation/vae_compare.h"

namespace deviceops::api {
namespace {

using nlohmann::json;

class VaeRoutes {
 public:
  VaeRoutes(generation::SuiteManager& suites, inference::ModelRegistry& registry)
      : suites_(suites), registry_(registry) {}

  // A JSON {"name", "path"} or an upload (application/octet-stream, ?name=&format=), streamed to
  // a file by the server either way.
  Result<http::Reply> add(http::Request& request) {
    generation::VaeAddRequest decoded;
    if (request.header("content-type").starts_with("application/octet-stream")) {
      ASSIGN_OR_RETURN(decoded, decodeVaeUpload(request.query));
      std::error_code error;
      if (request.bodyFile.empty() || std::filesystem::file_size(request.bodyFile, error) == 0) {
        return makeError(ErrorCode::kInvalidArgument,
                         "the upload is empty; send the VAE weights file as the body");
      }
      // Moved out of the server's temporary so that it outlives the request; addVae removes it.
      decoded.path = request.bodyFile.string() + ".vae";
      std::filesystem::rename(request.bodyFile, decoded.path, error);
      if (error) {
        return makeError(ErrorCode::kInternal, "cannot keep the upload: " + error.message());
      }
    } else {
      RETURN_IF_ERROR(readSmallBody(request, "a VAE file"));
      ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
      ASSIGN_OR_RETURN(decoded, decodeVaeAdd(body));
    }
    const std::string suite = request.pathParam("suiteId");
    ASSIGN_OR_RETURN(const generation::VaeRecord record, suites_.addVae(suite, decoded));
    ASSIGN_OR_RETURN(const generation::VaeList list, suites_.listVaes(suite));
    return http::jsonReply(201, encodeVae(record, list.suiteId, list.defaultVae))
        .withHeader("Location", "/api/suites/" + list.suiteId + "/vaes");
  }

  Result<http::Reply> list(http::Request& request) {
    const std::string suite = request.pathParam("suiteId");
    ASSIGN_OR_RETURN(const generation::SuiteInfo info, suites_.get(suite));
    ASSIGN_OR_RETURN(const generation::VaeList list, suites_.listVaes(suite));
    return http::jsonReply(200, encodeVaes(list, info));
  }

  Result<http::Reply> remove(http::Request& request) {
    RETURN_IF_ERROR(suites_.removeVae(request.pathParam("suiteId"), request.pathParam("name")));
    return http::emptyReply(204);
  }

  Result<http::Reply> select(http::Request& request) {
    ASSIGN_OR_RETURN(const json body, http::parseJsonBody(request));
    ASSIGN_OR_RETURN(const std::string name, decodeVaeSelect(body));
    ASSIGN_OR_RETURN(const std::string suiteId,
                     suites_.selectVae(request.pathParam("suiteId"), name));
    return http::jsonReply(200, {{"suite", suiteId}, {"default", name}});
  }

  Result<http::Reply> compare(http::Request& request) {
    json body = nullptr;
    if (!request.body.empty()) {
      ASSIGN_OR_RETURN(body, http::parseJsonBody(request));
    }
    ASSIGN_OR_RETURN(const generation::VaeCompareRequest decoded, decodeVaeCompare(body));
    return encoded(
        generation::compareVaes(suites_, registry_, request.pathParam("suiteId"), decoded),
        [](const json& comparison) { return comparison; });
  }

 private:
  generation::SuiteManager& suites_;
  inference::ModelRegistry& registry_;
};

constexpr RouteSpec<VaeRoutes> kVaeRoutes[] = {
    // Weights files are streamed to disk, never held in memory.
    {"POST", "/api/suites/{suiteId}/vaes", &VaeRoutes::add, http::Execution::kWorker, std::nullopt,
     true, /*bodyToFile=*/true,
     [](const config::Config& config) { return config.inference.maxUploadBytes; }},
    {"GET", "/api/suites/{suiteId}/vaes", &VaeRoutes::list},
    {"DELETE", "/api/suites/{suiteId}/vaes/{name}", &VaeRoutes::remove},
    {"PUT", "/api/suites/{suiteId}/vae", &VaeRoutes::select},
    {"POST", "/api/suites/{suiteId}/vaes/compare", &VaeRoutes::compare},
};

}  // namespace

void registerVaeRoutes(http::Router& router, AppContext& context, generation::SuiteManager& suites,
                       inference::ModelRegistry& registry) {
  addRoutes<VaeRoutes>(router, context.config, http::ErrorShape::kApi,
                       std::make_shared<VaeRoutes>(suites, registry), kVaeRoutes);
}

void registerVaeUnavailable(http::Router& router, AppContext& context, const std::string& reason) {
  addUnavailableRoutes<VaeRoutes>(router, context.config, http::ErrorShape::kApi, kVaeRoutes,
                                  reason);
}

}  // namespace deviceops::api
