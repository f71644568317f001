// JSON <-> the generation domain (suites, generation jobs) for /api/suites and /api/generation.
// Decoders reject unknown fields and wrong types with kInvalidArgument naming the field.
#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "generation/request.h"
#include "generation/service.h"
#include "generation/suite_import.h"
#include "generation/suite_manager.h"

namespace deviceops::api {

Result<generation::ImportRequest> decodeSuiteImport(const nlohmann::json& body);
Result<generation::GenerationRequest> decodeGenerationRequest(const nlohmann::json& body);

nlohmann::json encodeSuite(const generation::SuiteInfo& suite);
nlohmann::json encodeSuiteSummary(const generation::SuiteInfo& suite);
nlohmann::json encodeSuites(const std::vector<generation::SuiteInfo>& suites);
nlohmann::json encodeGenerationJob(const generation::GenerationJob& job);
nlohmann::json encodeGenerationJobs(const std::vector<generation::GenerationJob>& jobs);

}  // namespace deviceops::api
