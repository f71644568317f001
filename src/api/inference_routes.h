// Internal to src/api: the KServe v2 / Triton routes (kserve_routes.cc), registered with the
// original inference API by registerInferenceRoutes().
#pragma once

#include "api/app.h"

namespace deviceops::api {

void registerKServeRoutes(http::Router& router, AppContext& context,
                          inference::ModelRegistry& models);
// /v2/health/live 200, /v2 metadata, /v2/health/ready 400; every other /v2 route 503 `reason`.
void registerKServeUnavailable(http::Router& router, AppContext& context, const char* reason);

}  // namespace deviceops::api
