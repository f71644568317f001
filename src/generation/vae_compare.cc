#include "generation/vae_compare.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "common/time_format.h"
#include "generation/resident_memory.h"
#include "generation/tensors.h"
#include "imaging/quality.h"
#include "imaging/similarity.h"
#include "inference/registry_paths.h"
#include "vae/probes.h"

namespace deviceops::generation {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

constexpr int kMaxImages = 8;
constexpr double kHalfMax = 65504.0;

struct CandidateScore {
  std::string name;
  double psnr = 0, ssim = 0;
  std::uint64_t values = 0, nonFinite = 0, beyondHalf = 0, clipped = 0;
  double colourfulnessDrift = 0;
  double decodeMs = 0;
  std::uint64_t modelBytes = 0, peakRise = 0;
  json perProbe = json::array();
};

Result<std::vector<vae::Probe>> probeSet(const VaeCompareRequest& request,
                                         const std::vector<fs::path>& roots) {
  if (request.size < 16 || request.size > 2048 || request.size % 8 != 0) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("size must be a multiple of 8 in [16, 2048], got {}", request.size),
        {{"field", "size"}});
  }
  if (request.images.size() > kMaxImages) {
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("at most {} probe images, got {}", kMaxImages, request.images.size()),
        {{"field", "images"}});
  }
  std::vector<vae::Probe> probes = vae::syntheticProbes(request.size);
  for (const fs::path& image : request.images) {
    ASSIGN_OR_RETURN(const fs::path file, inference::resolveInRoots(image, roots, false));
    std::ifstream in(file, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    ASSIGN_OR_RETURN(vae::Probe probe,
                     vae::probeFromPng(file.filename().string(), bytes.str(), request.size));
    probes.push_back(std::move(probe));
  }
  return probes;
}

Result<std::vector<float>> runModel(inference::ModelRegistry& registry, const std::string& model,
                                    inference::Tensor input, const std::string& output) {
  inference::InferRequest infer;
  infer.model = model;
  infer.inputs.push_back(std::move(input));
  infer.outputs = {output};
  ASSIGN_OR_RETURN(inference::InferResult result, registry.infer(std::move(infer)));
  return readFloats(result.outputs.at(0));
}

Result<CandidateScore> scoreCandidate(SuiteManager& suites, inference::ModelRegistry& registry,
                                      const std::string& suite, const std::string& name,
                                      const std::vector<vae::Probe>& probes) {
  ASSIGN_OR_RETURN(const std::unique_ptr<SuiteLease> lease, suites.acquireVae(suite, name));
  const SuiteDefinition& definition = *lease->definition;
  const Component* encoder = definition.find(Role::kVaeEncoder);
  const Component* decoder = definition.find(Role::kVaeDecoder);
  if (!encoder || !lease->models.count(Role::kVaeEncoder)) {
    return makeError(ErrorCode::kUnprocessable,
                     fmt::format("suite {} has no vae_encoder; a comparison needs one to encode "
                                 "the probes",
                                 definition.name));
  }
  const inference::DataType encoderType = inputType(*encoder->metadata, "sample");
  const inference::DataType decoderType = inputType(*decoder->metadata, "latent_sample");
  CandidateScore score;
  score.name = name;
  if (Result<inference::ModelInfo> info = registry.find(lease->models.at(Role::kVaeDecoder));
      info.ok()) {
    for (const auto& placement : info->placements) score.modelBytes += placement.chargedBytes;
  }
  for (const vae::Probe& probe : probes) {
    const imaging::PlanarImage& original = probe.image;
    ASSIGN_OR_RETURN(const std::vector<float> parameters,
                     runModel(registry, lease->models.at(Role::kVaeEncoder),
                              makeFloatTensor("sample", {1, 3, original.height, original.width},
                                              original.data, encoderType),
                              "latent_parameters"));
    const int latentHeight = original.height / 8, latentWidth = original.width / 8;
    const std::size_t plane = static_cast<std::size_t>(latentHeight) * latentWidth;
    const int channels = static_cast<int>(parameters.size() / plane) / 2;
    if (channels < 1 || parameters.size() != 2 * channels * plane) {
      return makeError(ErrorCode::kInternal,
                       fmt::format("the encoder returned {} values for a {}x{} latent",
                                   parameters.size(), latentHeight, latentWidth));
    }
    const std::vector<float> mean(parameters.begin(),
                                  parameters.begin() + static_cast<long>(channels * plane));
    const std::uint64_t before = residentBytes();
    const auto started = Clock::now();
    imaging::PlanarImage decoded;
    decoded.channels = 3;
    decoded.height = original.height;
    decoded.width = original.width;
    ASSIGN_OR_RETURN(
        decoded.data,
        runModel(registry, lease->models.at(Role::kVaeDecoder),
                 makeFloatTensor("latent_sample", {1, channels, latentHeight, latentWidth}, mean,
                                 decoderType),
                 "sample"));
    score.decodeMs += std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    const std::uint64_t after = residentBytes();
    score.peakRise = std::max(score.peakRise, after > before ? after - before : 0);
    if (decoded.data.size() != original.data.size()) {
      return makeError(ErrorCode::kInternal,
                       fmt::format("the decoder returned {} values for a {}x{} image",
                                   decoded.data.size(), original.height, original.width));
    }
    ASSIGN_OR_RETURN(const imaging::Similarity similarity,
                     imaging::compareImages(original, decoded));
    for (const float value : decoded.data) {
      const bool finite = std::isfinite(value);
      score.nonFinite += finite ? 0 : 1;
      score.beyondHalf += (!finite || std::fabs(value) > kHalfMax) ? 1 : 0;
      score.clipped += (!finite || value < -1.0f || value > 1.0f) ? 1 : 0;
    }
    score.values += decoded.data.size();
    const double drift = std::fabs(imaging::measureImage(decoded).colourfulness -
                                   imaging::measureImage(original).colourfulness);
    score.colourfulnessDrift += drift;
    score.psnr += std::min(similarity.psnr, 100.0);
    score.ssim += similarity.ssim;
    score.perProbe.push_back({{"probe", probe.name},
                              {"psnr", std::min(similarity.psnr, 100.0)},
                              {"ssim", similarity.ssim},
                              {"colourfulnessDrift", drift}});
  }
  const double count = static_cast<double>(probes.size());
  score.psnr /= count;
  score.ssim /= count;
  score.colourfulnessDrift /= count;
  score.decodeMs /= count;
  return score;
}

json toJson(const CandidateScore& score, int rank) {
  const double values = static_cast<double>(std::max<std::uint64_t>(score.values, 1));
  return {{"rank", rank},
          {"name", score.name},
          {"psnr", score.psnr},
          {"ssim", score.ssim},
          {"nanRate", {{"fp32", score.nonFinite / values}, {"fp16", score.beyondHalf / values}}},
          {"clippedFraction", score.clipped / values},
          {"colourfulnessDrift", score.colourfulnessDrift},
          {"decodeMs", score.decodeMs},
          {"modelBytes", score.modelBytes},
          {"peakBytes", score.modelBytes + score.peakRise},
          {"perProbe", score.perProbe}};
}

}  // namespace

Result<json> compareVaes(SuiteManager& suites, inference::ModelRegistry& registry,
                         const std::string& suite, const VaeCompareRequest& request) {
  ASSIGN_OR_RETURN(const VaeList list, suites.listVaes(suite));
  std::vector<std::string> candidates = request.candidates;
  if (candidates.empty()) {
    candidates.push_back(std::string(kStockVae));
    for (const VaeRecord& record : list.vaes) candidates.push_back(record.name);
  }
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    if (Result<std::string> known = suites.resolveVae(list.suiteId, candidates[i]); !known.ok()) {
      return known.error();
    }
    if (std::find(candidates.begin(), candidates.begin() + static_cast<long>(i), candidates[i]) !=
        candidates.begin() + static_cast<long>(i)) {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("candidate {} is listed twice", candidates[i]),
                       {{"field", "candidates"}});
    }
  }
  ASSIGN_OR_RETURN(const std::vector<vae::Probe> probes,
                   probeSet(request, suites.options().modelRoots));
  std::vector<CandidateScore> scores;
  for (const std::string& name : candidates) {
    ASSIGN_OR_RETURN(CandidateScore score,
                     scoreCandidate(suites, registry, list.suiteId, name, probes));
    scores.push_back(std::move(score));
  }
  std::stable_sort(scores.begin(), scores.end(),
                   [](const CandidateScore& a, const CandidateScore& b) {
                     if ((a.nonFinite > 0) != (b.nonFinite > 0)) return a.nonFinite == 0;
                     if (a.ssim != b.ssim) return a.ssim > b.ssim;
                     return a.psnr > b.psnr;
                   });
  json ranking = json::array();
  for (std::size_t i = 0; i < scores.size(); ++i) {
    ranking.push_back(toJson(scores[i], static_cast<int>(i) + 1));
  }
  json probeNames = json::array();
  for (const vae::Probe& probe : probes) probeNames.push_back(probe.name);
  json comparison = {{"suite", list.suiteId},
                     {"comparedAt", formatIso8601(std::chrono::system_clock::now())},
                     {"probeSize", request.size},
                     {"probes", probeNames},
                     {"ranking", ranking},
                     {"winner", scores.front().name},
                     {"selected", request.select},
                     {"default", request.select ? scores.front().name : list.defaultVae}};
  RETURN_IF_ERROR(suites.recordComparison(list.suiteId, comparison));
  return comparison;
}

}  // namespace deviceops::generation
