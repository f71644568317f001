#include "api/app.h"

#include "api/routes.h"

namespace deviceops::api {

void registerCoreRoutes(http::Router& router, AppContext& context) {
  registerSystemRoutes(router, context);
  registerDeviceRoutes(router, context);
  registerMemoryRoutes(router, context);
  registerAvailabilityRoutes(router, context);
  registerMetricsRoutes(router, context);
}

void registerAllRoutesDisabled(http::Router& router, AppContext& context) {
  registerCoreRoutes(router, context);
  registerInferenceUnavailable(router, context);
  registerTelemetryUnavailable(router, context);
  registerTrainingUnavailable(router, context);
  registerGenerationUnavailable(router, context, "image generation is disabled");
  registerTestingUnavailable(router, context, "self-tests are disabled");
  registerStreamUnavailable(router, context);
}

}  // namespace deviceops::api
