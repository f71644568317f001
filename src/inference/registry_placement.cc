#include "inference/registry_placement.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>

namespace deviceops::inference {
namespace {

bool hasBackend(const devices::DeviceView& view, std::string_view backend) {
  return std::find(view.backends.begin(), view.backends.end(), backend) != view.backends.end() ||
         view.record.backend == backend;
}

// The providers a device can run, the preferred first.
std::vector<Provider> providersFor(const devices::DeviceView& view) {
  if (view.record.simulated || view.record.type == devices::DeviceType::kCpu) {
    return {Provider::kCpu, Provider::kOpenVino};
  }
  if (hasBackend(view, "nvidia")) return {Provider::kCuda};
  if (hasBackend(view, "amd")) return {Provider::kRocm, Provider::kMigraphx};
  return {};
}

int ordinalFor(const devices::DeviceView& view) {
  const nlohmann::json& properties = view.record.properties;
  if (properties.contains("nvidia") && properties["nvidia"].contains("cudaOrdinal") &&
      properties["nvidia"]["cudaOrdinal"].is_number_integer()) {
    return properties["nvidia"]["cudaOrdinal"].get<int>();
  }
  return 0;
}

std::string providerList(const std::vector<Provider>& providers) {
  std::vector<std::string_view> names;
  for (Provider provider : providers) names.push_back(providerName(provider));
  return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

Result<std::vector<PlacementTarget>> choosePlacement(const devices::InventorySnapshot& snapshot,
                                                     memory::MemoryService& memory,
                                                     const LoadRequest& request) {
  std::optional<Provider> asked = request.provider;
  if (!asked && request.runner.session.provider != Provider::kCpu) {
    asked = request.runner.session.provider;
  }
  const std::vector<std::string> built = availableProviders();
  const auto isBuilt = [&](Provider provider) {
    return std::find(built.begin(), built.end(), providerName(provider)) != built.end();
  };
  // The provider `view` would run this model with, or an error naming why it cannot.
  const auto pick = [&](const devices::DeviceView& view) -> Result<Provider> {
    const std::vector<Provider> possible = providersFor(view);
    if (asked) {
      if (std::find(possible.begin(), possible.end(), *asked) == possible.end()) {
        return makeError(ErrorCode::kInvalidArgument,
                         fmt::format("device {} cannot run execution provider {} (it can run: {})",
                                     view.id, providerName(*asked), providerList(possible)),
                         {{"deviceId", view.id}, {"provider", providerName(*asked)}});
      }
      return *asked;
    }
    for (Provider provider : possible) {
      if (isBuilt(provider)) return provider;
    }
    if (!possible.empty()) return possible.front();  // Session::open names what is missing
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("device {} has no execution provider for ONNX models", view.id),
                     {{"deviceId", view.id}});
  };

  std::vector<PlacementTarget> targets;
  if (!request.devices.empty()) {
    std::set<std::string> seen;
    for (const std::string& key : request.devices) {
      const devices::DeviceView* view = snapshot.find(key);
      if (view == nullptr) {
        return makeError(ErrorCode::kNotFound,
                         fmt::format("no device with id '{}'; GET /api/device lists them", key),
                         {{"deviceId", key}});
      }
      if (!seen.insert(view->id).second) continue;
      Result<Provider> provider = pick(*view);
      if (!provider.ok()) return provider.error();
      targets.push_back({view->id, *provider, ordinalFor(*view)});
    }
    return targets;
  }

  if (request.replicas < 1) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("replicas must be at least 1, got {}", request.replicas));
  }
  struct Candidate {
    PlacementTarget target;
    std::uint64_t availableBytes = 0;
  };
  std::vector<Candidate> candidates;
  std::vector<std::string> refused;
  for (const devices::DeviceView& view : snapshot.devices) {
    if (view.record.simulated || view.health.status == devices::HealthStatus::kLost) continue;
    Result<Provider> provider = pick(view);
    if (!provider.ok() || (!asked && !isBuilt(*provider))) {
      refused.push_back(view.id);
      continue;
    }
    Result<memory::DeviceMemoryStatus> status = memory.status(view.id);
    candidates.push_back(
        {{view.id, *provider, ordinalFor(view)}, status.ok() ? status->availableBytes : 0});
  }
  if (candidates.size() < static_cast<std::size_t>(request.replicas)) {
    std::vector<std::string> usable;
    for (const Candidate& candidate : candidates) usable.push_back(candidate.target.deviceId);
    return makeError(
        ErrorCode::kInvalidArgument,
        fmt::format("{} replica(s) asked for, but only {} device(s) can run the model{}{}",
                    request.replicas, candidates.size(),
                    asked ? fmt::format(" with provider {}", providerName(*asked)) : "",
                    usable.empty() ? "" : fmt::format(" ({})", fmt::join(usable, ", "))),
        {{"replicas", request.replicas}, {"devices", usable}, {"unsuitable", refused}});
  }
  std::stable_sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) {
    return a.availableBytes > b.availableBytes;
  });
  for (int i = 0; i < request.replicas; ++i) targets.push_back(candidates[i].target);
  return targets;
}

std::uint64_t processResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t sizePages = 0;
  std::uint64_t residentPages = 0;
  if (!(statm >> sizePages >> residentPages)) return 0;
  const long pageSize = sysconf(_SC_PAGESIZE);
  return residentPages * static_cast<std::uint64_t>(pageSize > 0 ? pageSize : 4096);
}

std::string measurementSource(const PlacementTarget& target) {
  return target.provider == Provider::kCpu || target.provider == Provider::kOpenVino
             ? "rss"
             : target.deviceId;
}

std::optional<std::uint64_t> usedBytes(memory::MemoryService& memory, const std::string& source) {
  if (source == "rss") return processResidentBytes();
  Result<memory::DeviceMemoryStatus> status = memory.status(source);
  if (!status.ok()) return std::nullopt;
  if (status->driverFreeBytes && status->totalBytes >= *status->driverFreeBytes) {
    return status->totalBytes - *status->driverFreeBytes;
  }
  return status->driverUsedBytes;
}

}  // namespace deviceops::inference
