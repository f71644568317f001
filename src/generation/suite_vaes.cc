// SuiteManager's custom VAEs (issue 14): registration (read, map, patch, store), listing,
// selection, removal and the record of comparisons. See suite_manager.h.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "common/atomic_file.h"
#include "common/sha256.h"
#include "common/time_format.h"
#include "generation/suite_manager.h"
#include "inference/registry_paths.h"
#include "vae/onnx_patch.h"

namespace deviceops::generation {
namespace fs = std::filesystem;
namespace {

Status checkVaeName(const std::string& name) {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  if (!std::regex_match(name, kName) || name == kStockVae) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("VAE name '{}' must be 1-64 characters of letters, digits, '.', "
                                 "'_' or '-', starting with a letter or digit, and not '{}'",
                                 name, kStockVae),
                     {{"field", "name"}});
  }
  return Status::success();
}

Result<std::string> readWholeFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return makeError(ErrorCode::kNotFound, "cannot open " + file.string());
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return std::move(bytes).str();
}

// Removes a streamed upload when registration ends, whatever the outcome.
struct UploadCleanup {
  fs::path path;
  bool active = false;
  ~UploadCleanup() {
    if (!active) return;
    std::error_code error;
    fs::remove(path, error);
  }
};

double millisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

Result<VaeRecord> SuiteManager::addVae(const std::string& idOrName, const VaeAddRequest& request) {
  const UploadCleanup cleanup{request.path, request.uploaded};
  if (!store_) return makeError(ErrorCode::kUnavailable, "the suite manager is not started");
  ASSIGN_OR_RETURN(const std::shared_ptr<Suite> suite, lookup(idOrName));
  fs::path file = request.path;
  std::optional<vae::FileFormat> format = request.format;
  if (request.uploaded) {
    if (!format) {
      return makeError(ErrorCode::kInvalidArgument,
                       "an uploaded VAE needs ?format=safetensors|pt|ckpt|bin",
                       {{"field", "format"}});
    }
  } else {
    ASSIGN_OR_RETURN(file, inference::resolveInRoots(request.path, options_.modelRoots, false));
  }
  const std::string name = request.name.empty() ? file.stem().string() : request.name;
  RETURN_IF_ERROR(checkVaeName(name));
  const auto nameFreeLocked = [&]() -> Status {
    if (!suite->vaes.count(name)) return Status::success();
    return makeError(ErrorCode::kConflict,
                     fmt::format("suite {} has a VAE named '{}'; remove it first",
                                 suite->definition->name, name),
                     {{"vae", name}});
  };
  const auto nameFree = [&]() -> Status {
    std::lock_guard lock(mutex_);
    return nameFreeLocked();
  };
  RETURN_IF_ERROR(nameFree());
  const auto started = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(const vae::VaeWeights weights, vae::readVaeWeights(file, format));
  if (!weights.hasDecoder()) {
    return makeError(ErrorCode::kInvalidArgument,
                     "the file holds no decoder weights (decoder.* or post_quant_conv.*); a "
                     "custom VAE must at least replace the decoder");
  }
  VaeRecord record;
  record.name = name;
  record.keyFormat = std::string(vae::keyFormatName(weights.keyFormat));
  record.prefix = weights.prefix;
  record.tensors = weights.tensors.size();
  record.parameters = weights.parameters;
  record.dtypes = weights.dtypes;
  // The patched models: content-addressed files the registry loads as managed models.
  const auto patchPart = [&](Role role, vae::VaePart part,
                             std::size_t& patched) -> Result<Component> {
    const Component* stock = suite->definition->find(role);
    ASSIGN_OR_RETURN(const std::string original, readWholeFile(stock->path));
    vae::PatchReport report;
    Result<std::string> bytes = vae::patchVaeModel(original, part, weights, report);
    if (!bytes.ok()) {
      Error error = bytes.error();
      error.details["suite"] = suite->definition->name;
      return error;
    }
    patched = report.patched;
    Component component = *stock;
    component.sha256 = sha256Hex(*bytes);
    component.sizeBytes = bytes->size();
    component.path = options_.vaeDirectory / (component.sha256 + ".onnx");
    std::error_code error;
    fs::create_directories(options_.vaeDirectory, error);
    if (!fs::exists(component.path, error)) {
      RETURN_IF_ERROR(writeFileAtomically(component.path, *bytes));
    }
    return component;
  };
  ASSIGN_OR_RETURN(record.decoder,
                   patchPart(Role::kVaeDecoder, vae::VaePart::kDecoder, record.decoderPatched));
  if (weights.hasEncoder() && suite->definition->find(Role::kVaeEncoder)) {
    ASSIGN_OR_RETURN(Component encoder,
                     patchPart(Role::kVaeEncoder, vae::VaePart::kEncoder, record.encoderPatched));
    record.encoder = std::move(encoder);
  }
  record.patchMs = millisecondsSince(started);
  record.createdAt = std::chrono::system_clock::now();
  ASSIGN_OR_RETURN(const std::string digest, sha256File(file));
  std::error_code sizeError;
  record.source = {{"path", request.uploaded ? nlohmann::json(nullptr) : nlohmann::json(file)},
                   {"uploaded", request.uploaded},
                   {"format", std::string(vae::fileFormatName(weights.fileFormat))},
                   {"sha256", digest},
                   {"sizeBytes", fs::file_size(file, sizeError)}};
  {
    std::lock_guard lock(mutex_);
    RETURN_IF_ERROR(nameFreeLocked());
    RETURN_IF_ERROR(store_->insertVae(suite->id, record));
    suite->vaes.emplace(name, record);
  }
  publish("suite.vae.added", "info",
          fmt::format("suite {}: VAE {} added ({} {} tensors, {} decoder and {} encoder weights "
                      "replaced in {:.0f} ms)",
                      suite->definition->name, name, record.tensors, record.keyFormat,
                      record.decoderPatched, record.encoderPatched, record.patchMs),
          {{"suiteId", suite->id}, {"suite", suite->definition->name}, {"vae", name}});
  return record;
}

Result<VaeList> SuiteManager::listVaes(const std::string& idOrName) const {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(const std::shared_ptr<Suite> suite, lookupLocked(idOrName));
  VaeList list;
  list.suiteId = suite->id;
  list.defaultVae = suite->defaultVae;
  list.comparison = suite->comparison;
  for (const auto& [name, record] : suite->vaes) list.vaes.push_back(record);
  std::sort(list.vaes.begin(), list.vaes.end(), [](const VaeRecord& a, const VaeRecord& b) {
    return a.createdAt != b.createdAt ? a.createdAt < b.createdAt : a.name < b.name;
  });
  return list;
}

Status SuiteManager::removeVae(const std::string& idOrName, const std::string& name) {
  ASSIGN_OR_RETURN(const std::shared_ptr<Suite> suite, lookup(idOrName));
  std::vector<fs::path> files;
  std::vector<std::string> models;
  {
    std::lock_guard serial(loadMutex_);
    std::lock_guard lock(mutex_);
    const auto found = suite->vaes.find(name);
    if (found == suite->vaes.end()) {
      return makeError(ErrorCode::kNotFound,
                       fmt::format("suite {} has no VAE '{}'", suite->definition->name, name),
                       {{"vae", name}});
    }
    if (suite->defaultVae == name) {
      return makeError(ErrorCode::kConflict,
                       fmt::format("VAE {} is the default of suite {}; select another first "
                                   "(PUT /api/suites/{}/vae)",
                                   name, suite->definition->name, suite->id),
                       {{"vae", name}});
    }
    if (suite->vaeActive.count(name)) {
      return makeError(ErrorCode::kConflict,
                       fmt::format("VAE {} is in use by a running generation or comparison", name),
                       {{"vae", name}});
    }
    RETURN_IF_ERROR(store_->removeVae(suite->id, name));
    std::vector<const Component*> components = {&found->second.decoder};
    if (found->second.encoder) components.push_back(&*found->second.encoder);
    for (const Component* component : components) {
      if (vaeFileUsedLocked(component->path, *suite, name)) continue;
      files.push_back(component->path);
      const std::string model = modelNameOf(*component);
      if (suite->vaeModels.erase(model)) {
        users_[model].erase(suite->id);
        if (users_[model].empty()) models.push_back(model);
      }
    }
    suite->vaes.erase(found);
  }
  for (const std::string& model : models) (void)registry_.unload(model);
  for (const fs::path& file : files) {
    std::error_code error;
    fs::remove(file, error);
  }
  publish("suite.vae.removed", "info",
          fmt::format("suite {}: VAE {} removed", suite->definition->name, name),
          {{"suiteId", suite->id}, {"suite", suite->definition->name}, {"vae", name}});
  return Status::success();
}

bool SuiteManager::vaeFileUsedLocked(const fs::path& path, const Suite& leaving,
                                     const std::string& leavingVae) const {
  for (const auto& [id, other] : suites_) {
    for (const auto& [name, record] : other->vaes) {
      if (other.get() == &leaving && (leavingVae.empty() || name == leavingVae)) continue;
      if (record.decoder.path == path || (record.encoder && record.encoder->path == path)) {
        return true;
      }
    }
  }
  return false;
}

void SuiteManager::removeVaeFilesOf(const Suite& suite) {
  std::vector<fs::path> files;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [name, record] : suite.vaes) {
      for (const Component* component :
           {&record.decoder, record.encoder ? &*record.encoder : nullptr}) {
        if (component && !vaeFileUsedLocked(component->path, suite, "")) {
          files.push_back(component->path);
        }
      }
    }
  }
  for (const fs::path& file : files) {
    std::error_code error;
    fs::remove(file, error);
  }
}

Result<std::string> SuiteManager::selectVae(const std::string& idOrName, const std::string& name) {
  ASSIGN_OR_RETURN(const std::shared_ptr<Suite> suite, lookup(idOrName));
  {
    std::lock_guard lock(mutex_);
    if (name != kStockVae && !suite->vaes.count(name)) {
      return makeError(ErrorCode::kNotFound,
                       fmt::format("suite {} has no VAE '{}'", suite->definition->name, name),
                       {{"vae", name}});
    }
    RETURN_IF_ERROR(store_->saveState(suite->id, {name, suite->comparison}));
    suite->defaultVae = name;
  }
  publish("suite.vae.selected", "info",
          fmt::format("suite {}: VAE {} is the default", suite->definition->name, name),
          {{"suiteId", suite->id}, {"suite", suite->definition->name}, {"vae", name}});
  return suite->id;
}

Result<std::string> SuiteManager::resolveVae(const std::string& idOrName,
                                             const std::string& name) const {
  std::lock_guard lock(mutex_);
  ASSIGN_OR_RETURN(const std::shared_ptr<Suite> suite, lookupLocked(idOrName));
  if (name.empty()) return suite->defaultVae;
  if (name != kStockVae && !suite->vaes.count(name)) {
    return makeError(ErrorCode::kNotFound,
                     fmt::format("suite {} has no VAE '{}'", suite->definition->name, name),
                     {{"vae", name}, {"field", "vae.name"}});
  }
  return name;
}

Status SuiteManager::recordComparison(const std::string& idOrName,
                                      const nlohmann::json& comparison) {
  ASSIGN_OR_RETURN(const std::shared_ptr<Suite> suite, lookup(idOrName));
  std::lock_guard lock(mutex_);
  for (const nlohmann::json& row : comparison.at("ranking")) {
    const auto found = suite->vaes.find(row.at("name").get<std::string>());
    if (found == suite->vaes.end()) continue;
    found->second.quality = {{"psnr", row.at("psnr")},
                             {"ssim", row.at("ssim")},
                             {"rank", row.at("rank")},
                             {"comparedAt", comparison.at("comparedAt")}};
    RETURN_IF_ERROR(store_->updateVae(suite->id, found->second));
  }
  const std::string defaultVae = comparison.value("default", suite->defaultVae);
  RETURN_IF_ERROR(store_->saveState(suite->id, {defaultVae, comparison}));
  suite->defaultVae = defaultVae;
  suite->comparison = comparison;
  return Status::success();
}

}  // namespace deviceops::generation
