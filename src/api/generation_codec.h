// JSON <-> the generation domain (suites, generation jobs) for /api/suites and /api/generation.
// Decoders reject unknown fields and wrong types with kInvalidArgument naming the field.
#pragma once

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "generation/request.h"
#include "generation/service.h"
#include "generation/suite_import.h"
#include "generation/suite_manager.h"
#include "generation/vae_compare.h"

namespace deviceops::api {

Result<generation::ImportRequest> decodeSuiteImport(const nlohmann::json& body);
Result<generation::GenerationRequest> decodeGenerationRequest(const nlohmann::json& body);

nlohmann::json encodeSuite(const generation::SuiteInfo& suite);
nlohmann::json encodeSuiteSummary(const generation::SuiteInfo& suite);
nlohmann::json encodeSuites(const std::vector<generation::SuiteInfo>& suites);
nlohmann::json encodeGenerationJob(const generation::GenerationJob& job);

// Custom VAEs (/api/suites/{suiteId}/vaes...). decodeVaeAdd: {"name", "path"} (JSON);
// decodeVaeUpload: the query of an application/octet-stream upload (name, format).
Result<generation::VaeAddRequest> decodeVaeAdd(const nlohmann::json& body);
Result<generation::VaeAddRequest> decodeVaeUpload(const std::map<std::string, std::string>& query);
// {"name": "..."} of PUT /api/suites/{suiteId}/vae.
Result<std::string> decodeVaeSelect(const nlohmann::json& body);
Result<generation::VaeCompareRequest> decodeVaeCompare(const nlohmann::json& body);
nlohmann::json encodeVae(const generation::VaeRecord& record, const std::string& suiteId,
                         const std::string& defaultVae);
// The list with the "stock" pseudo-entry first (its components from `suite`).
nlohmann::json encodeVaes(const generation::VaeList& list, const generation::SuiteInfo& suite);
nlohmann::json encodeGenerationJobs(const std::vector<generation::GenerationJob>& jobs);

}  // namespace deviceops::api
