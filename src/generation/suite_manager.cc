#include "generation/suite_manager.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <regex>
#include <system_error>

#include "generation/suite_validation.h"

namespace deviceops::generation {
namespace fs = std::filesystem;
namespace {

std::string newSuiteId() {
  static std::mutex mutex;
  static std::mt19937_64 random{std::random_device{}()};
  std::lock_guard lock(mutex);
  return fmt::format("suite-{:012x}", random() & 0xffffffffffffULL);
}

Status checkName(const std::string& name) {
  static const std::regex kName("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  if (!std::regex_match(name, kName)) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("suite name '{}' must be 1-64 characters of letters, digits, "
                                 "'.', '_' or '-', starting with a letter or digit",
                                 name),
                     {{"field", "name"}});
  }
  return Status::success();
}

// The roles a generation holds: the base stage always, the refiner when asked.
std::vector<Role> rolesFor(const SuiteDefinition& definition, bool withRefiner) {
  std::vector<Role> roles = {Role::kTextEncoder, Role::kTextEncoder2, Role::kUnet,
                             Role::kVaeDecoder};
  if (withRefiner && definition.hasRefiner()) roles.push_back(Role::kRefinerUnet);
  return roles;
}

}  // namespace

SuiteLease::~SuiteLease() {
  holds_.clear();
  if (release_) release_();
}

SuiteManager::SuiteManager(inference::ModelRegistry& registry, SuiteManagerOptions options,
                           EventSink& events)
    : registry_(registry), options_(std::move(options)), events_(events) {}

SuiteManager::~SuiteManager() = default;

std::string SuiteManager::modelNameOf(const Component& component) {
  return "sdxl-" + component.sha256.substr(0, 16);
}

Status SuiteManager::start() {
  std::error_code error;
  fs::create_directories(options_.databaseFile.parent_path(), error);
  if (!options_.vaeDirectory.empty()) fs::create_directories(options_.vaeDirectory, error);
  ASSIGN_OR_RETURN(store_, SuiteStore::open(options_.databaseFile));
  ASSIGN_OR_RETURN(std::vector<StoredSuite> stored, store_->list());
  std::lock_guard lock(mutex_);
  for (StoredSuite& item : stored) {
    auto suite = std::make_shared<Suite>();
    suite->id = item.id;
    suite->createdAt = item.createdAt;
    suite->validation = validateSuite(item.definition);
    suite->definition = std::make_shared<const SuiteDefinition>(std::move(item.definition));
    ASSIGN_OR_RETURN(std::vector<VaeRecord> vaes, store_->listVaes(suite->id));
    for (VaeRecord& record : vaes) suite->vaes.emplace(record.name, std::move(record));
    ASSIGN_OR_RETURN(SuiteState state, store_->state(suite->id));
    suite->defaultVae =
        suite->vaes.count(state.defaultVae) ? state.defaultVae : std::string(kStockVae);
    suite->comparison = std::move(state.comparison);
    suites_[suite->id] = std::move(suite);
  }
  spdlog::info("suites: {} registered suite(s) read from {}", suites_.size(),
               options_.databaseFile.string());
  return Status::success();
}

void SuiteManager::publish(std::string type, std::string severity, std::string message,
                           nlohmann::json details) {
  Event event;
  event.type = std::move(type);
  event.severity = std::move(severity);
  event.message = std::move(message);
  event.details = std::move(details);
  events_.publish(std::move(event));
}

Result<std::shared_ptr<SuiteManager::Suite>> SuiteManager::lookupLocked(
    const std::string& idOrName) const {
  if (const auto found = suites_.find(idOrName); found != suites_.end()) return found->second;
  for (const auto& [id, suite] : suites_) {
    if (suite->definition->name == idOrName) return suite;
  }
  return makeError(ErrorCode::kNotFound, fmt::format("no suite '{}'", idOrName),
                   {{"suite", idOrName}});
}

Result<SuiteInfo> SuiteManager::import(const ImportRequest& request) {
  if (!store_) return makeError(ErrorCode::kUnavailable, "the suite manager is not started");
  if (!request.name.empty()) RETURN_IF_ERROR(checkName(request.name));
  ASSIGN_OR_RETURN(SuiteDefinition definition, importSuite(request, options_.modelRoots));
  RETURN_IF_ERROR(checkName(definition.name));
  Validation validation = validateSuite(definition);
  if (const Check* failed = validation.firstFailure()) {
    return makeError(
        ErrorCode::kConflict,
        fmt::format("suite '{}' is not compatible: {} ({}: {} '{}' expected {}, found {})",
                    definition.name, failed->description, failed->name, failed->component,
                    failed->tensor, failed->expected, failed->found),
        {{"check", toJson(*failed)}, {"validation", toJson(validation)}});
  }
  auto suite = std::make_shared<Suite>();
  suite->id = newSuiteId();
  suite->createdAt = std::chrono::system_clock::now();
  suite->validation = std::move(validation);
  suite->definition = std::make_shared<const SuiteDefinition>(std::move(definition));
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, other] : suites_) {
      if (other->definition->name == suite->definition->name) {
        return makeError(ErrorCode::kConflict,
                         fmt::format("a suite named '{}' exists ({}); delete it first",
                                     other->definition->name, id),
                         {{"suiteId", id}});
      }
    }
    RETURN_IF_ERROR(store_->insert({suite->id, suite->createdAt, *suite->definition}));
    suites_[suite->id] = suite;
  }
  publish("suite.imported", "info",
          fmt::format("suite {} imported ({} components, score {:.2f})", suite->definition->name,
                      suite->definition->components.size(), suite->validation.score),
          {{"suiteId", suite->id}, {"suite", suite->definition->name}});
  return describe(*suite);
}

SuiteInfo SuiteManager::describe(const Suite& suite) const {
  SuiteInfo info;
  {
    std::lock_guard lock(mutex_);
    info.id = suite.id;
    info.name = suite.definition->name;
    info.definition = *suite.definition;
    info.validation = suite.validation;
    info.loaded = suite.loaded;
    info.createdAt = suite.createdAt;
    info.lastUsed = suite.lastUsed;
    info.activeGenerations = suite.active;
    info.defaultVae = suite.defaultVae;
    std::vector<const VaeRecord*> vaes;
    for (const auto& [name, record] : suite.vaes) vaes.push_back(&record);
    std::sort(vaes.begin(), vaes.end(),
              [](const VaeRecord* a, const VaeRecord* b) { return a->createdAt < b->createdAt; });
    for (const VaeRecord* record : vaes) info.vaes.push_back(record->name);
    for (const auto& [role, component] : suite.definition->components) {
      ComponentStatus status;
      status.role = role;
      if (isModelRole(role)) {
        status.modelName = modelNameOf(component);
        const auto users = users_.find(status.modelName);
        if (users != users_.end()) {
          for (const std::string& user : users->second) {
            if (user == suite.id) continue;
            const auto other = suites_.find(user);
            if (other != suites_.end())
              status.sharedWith.push_back(other->second->definition->name);
          }
        }
      }
      info.components.push_back(std::move(status));
    }
  }
  bool anyEvicted = false;
  for (ComponentStatus& status : info.components) {
    if (status.modelName.empty()) {
      status.state = info.loaded ? "ready" : "unloaded";
      continue;
    }
    Result<inference::ModelInfo> model = registry_.find(status.modelName);
    if (!model.ok() || !info.loaded) {
      status.state = "unloaded";
      continue;
    }
    status.state =
        model->evicted ? "evicted" : std::string(inference::modelStateName(model->state));
    anyEvicted = anyEvicted || model->evicted;
    status.placements = model->placements;
    for (const inference::Placement& placement : model->placements) {
      status.chargedBytes += placement.chargedBytes;
      info.memoryByDevice[placement.deviceId] += placement.chargedBytes;
    }
  }
  info.state = !info.loaded ? "registered" : (anyEvicted ? "partial" : "ready");
  return info;
}

std::vector<SuiteInfo> SuiteManager::list() const {
  std::vector<std::shared_ptr<Suite>> suites;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [id, suite] : suites_) suites.push_back(suite);
  }
  std::vector<SuiteInfo> out;
  for (const auto& suite : suites) out.push_back(describe(*suite));
  std::sort(out.begin(), out.end(),
            [](const SuiteInfo& a, const SuiteInfo& b) { return a.createdAt < b.createdAt; });
  return out;
}

Result<SuiteInfo> SuiteManager::get(const std::string& idOrName) const {
  std::shared_ptr<Suite> suite;
  {
    std::lock_guard lock(mutex_);
    ASSIGN_OR_RETURN(suite, lookupLocked(idOrName));
  }
  return describe(*suite);
}

void SuiteManager::evictForRoom(const std::shared_ptr<Suite>& incoming) {
  while (true) {
    std::shared_ptr<Suite> victim;
    {
      std::lock_guard lock(mutex_);
      int loaded = 0;
      for (const auto& [id, suite] : suites_) {
        if (!suite->loaded || suite == incoming) continue;
        ++loaded;
        if (suite->active > 0) continue;
        if (!victim || suite->lastUsed.value_or(suite->createdAt) <
                           victim->lastUsed.value_or(victim->createdAt)) {
          victim = suite;
        }
      }
      if (loaded < options_.maxLoaded || !victim) return;
    }
    spdlog::info("suites: unloading {} (least recently used) to stay within maxLoaded {}",
                 victim->definition->name, options_.maxLoaded);
    if (Status unloaded = unloadSuite(victim, "maxLoaded"); !unloaded.ok()) {
      spdlog::warn("suites: could not unload {}: {}", victim->definition->name,
                   unloaded.error().message);
      return;
    }
  }
}

Status SuiteManager::loadSuite(const std::shared_ptr<Suite>& suite) {
  const SuiteDefinition& definition = *suite->definition;
  evictForRoom(suite);
  std::shared_ptr<const clip::ClipTokenizer> tokenizer, tokenizer2;
  for (const auto& [role, component] : definition.components) {
    if (role != Role::kTokenizer && role != Role::kTokenizer2) continue;
    Result<clip::ClipTokenizer> loaded = clip::ClipTokenizer::load(component.path);
    if (!loaded.ok()) {
      Error error = loaded.error();
      error.message =
          fmt::format("suite {}: {}: {}", definition.name, roleName(role), error.message);
      return error;
    }
    auto shared = std::make_shared<const clip::ClipTokenizer>(std::move(loaded.value()));
    (role == Role::kTokenizer ? tokenizer : tokenizer2) = std::move(shared);
  }
  std::vector<std::string> loadedNow;
  for (const auto& [role, component] : definition.components) {
    if (!isModelRole(role)) continue;
    inference::LoadRequest request;
    request.name = modelNameOf(component);
    request.path = component.path;
    request.owner = "suite:" + definition.name;
    Result<inference::ModelInfo> model = registry_.load(request);
    if (!model.ok()) {
      Error error = model.error();
      error.message =
          fmt::format("suite {}: loading {}: {}", definition.name, roleName(role), error.message);
      error.details["component"] = roleName(role);
      // Undo what this call loaded and nobody else uses.
      for (const std::string& name : loadedNow) (void)registry_.unload(name);
      return error;
    }
    std::lock_guard lock(mutex_);
    if (users_[request.name].empty()) loadedNow.push_back(request.name);
  }
  std::lock_guard lock(mutex_);
  for (const auto& [role, component] : definition.components) {
    if (isModelRole(role)) users_[modelNameOf(component)].insert(suite->id);
  }
  suite->tokenizer = std::move(tokenizer);
  suite->tokenizer2 = std::move(tokenizer2);
  suite->loaded = true;
  suite->lastUsed = std::chrono::system_clock::now();
  return Status::success();
}

Status SuiteManager::unloadSuite(const std::shared_ptr<Suite>& suite, const std::string& reason) {
  std::vector<std::string> release;
  {
    std::lock_guard lock(mutex_);
    if (suite->active > 0) {
      return makeError(ErrorCode::kConflict,
                       fmt::format("suite {} has {} running generation(s); cancel them or wait",
                                   suite->definition->name, suite->active),
                       {{"suiteId", suite->id}, {"activeGenerations", suite->active}});
    }
    if (!suite->loaded) return Status::success();
    for (const auto& [role, component] : suite->definition->components) {
      if (!isModelRole(role)) continue;
      const std::string name = modelNameOf(component);
      std::set<std::string>& users = users_[name];
      users.erase(suite->id);
      if (users.empty() && std::find(release.begin(), release.end(), name) == release.end()) {
        release.push_back(name);
      }
    }
    for (const std::string& name : suite->vaeModels) {
      std::set<std::string>& users = users_[name];
      users.erase(suite->id);
      if (users.empty() && std::find(release.begin(), release.end(), name) == release.end()) {
        release.push_back(name);
      }
    }
    suite->vaeModels.clear();
    suite->loaded = false;
    suite->tokenizer.reset();
    suite->tokenizer2.reset();
  }
  std::uint64_t released = 0;
  for (const std::string& name : release) {
    Result<inference::UnloadResult> result = registry_.unload(name);
    if (result.ok()) {
      released += result->chargedBytes;
    } else if (result.error().code != ErrorCode::kNotFound) {
      spdlog::warn("suites: unloading {} of {}: {}", name, suite->definition->name,
                   result.error().message);
    }
  }
  const bool eviction = reason != "unload";
  publish(eviction ? "suite.evicted" : "suite.unloaded", eviction ? "warning" : "info",
          fmt::format("suite {} {} ({}): {} models released, {} bytes returned to the ledger",
                      suite->definition->name, eviction ? "evicted" : "unloaded", reason,
                      release.size(), released),
          {{"suiteId", suite->id},
           {"suite", suite->definition->name},
           {"reason", reason},
           {"releasedModels", release},
           {"chargedBytes", released}});
  return Status::success();
}

Result<SuiteInfo> SuiteManager::load(const std::string& idOrName) {
  std::shared_ptr<Suite> suite;
  {
    std::lock_guard lock(mutex_);
    ASSIGN_OR_RETURN(suite, lookupLocked(idOrName));
  }
  {
    std::lock_guard serial(loadMutex_);
    if (!suite->loaded) RETURN_IF_ERROR(loadSuite(suite));
  }
  publish("suite.loaded", "info", fmt::format("suite {} loaded", suite->definition->name),
          {{"suiteId", suite->id}, {"suite", suite->definition->name}});
  return describe(*suite);
}

Result<SuiteInfo> SuiteManager::unload(const std::string& idOrName) {
  std::shared_ptr<Suite> suite;
  {
    std::lock_guard lock(mutex_);
    ASSIGN_OR_RETURN(suite, lookupLocked(idOrName));
  }
  {
    std::lock_guard serial(loadMutex_);
    RETURN_IF_ERROR(unloadSuite(suite, "unload"));
  }
  return describe(*suite);
}

Status SuiteManager::remove(const std::string& idOrName) {
  std::shared_ptr<Suite> suite;
  {
    std::lock_guard lock(mutex_);
    ASSIGN_OR_RETURN(suite, lookupLocked(idOrName));
  }
  std::lock_guard serial(loadMutex_);
  RETURN_IF_ERROR(unloadSuite(suite, "unload"));
  RETURN_IF_ERROR(store_->remove(suite->id));
  removeVaeFilesOf(*suite);
  std::lock_guard lock(mutex_);
  suites_.erase(suite->id);
  return Status::success();
}

Result<std::shared_ptr<SuiteManager::Suite>> SuiteManager::lookup(
    const std::string& idOrName) const {
  std::lock_guard lock(mutex_);
  return lookupLocked(idOrName);
}

Result<std::pair<const Component*, const Component*>> SuiteManager::vaeComponentsLocked(
    const Suite& suite, const std::string& vae) const {
  if (vae == kStockVae) {
    return std::pair{suite.definition->find(Role::kVaeDecoder),
                     suite.definition->find(Role::kVaeEncoder)};
  }
  const auto found = suite.vaes.find(vae);
  if (found == suite.vaes.end()) {
    return makeError(ErrorCode::kNotFound,
                     fmt::format("suite {} has no VAE '{}'", suite.definition->name, vae),
                     {{"suiteId", suite.id}, {"vae", vae}});
  }
  const VaeRecord& record = found->second;
  return std::pair{&record.decoder,
                   record.encoder ? &*record.encoder : suite.definition->find(Role::kVaeEncoder)};
}

Status SuiteManager::holdComponent(const Suite& suite, const Component& component, bool managed,
                                   SuiteLease& lease) {
  const std::string name = modelNameOf(component);
  Result<inference::ModelHold> hold = registry_.hold(name);
  if (!hold.ok() && hold.error().code == ErrorCode::kNotFound) {
    // Not loaded yet (a custom VAE's first use) or unloaded behind the suite's back.
    inference::LoadRequest request;
    request.name = name;
    request.path = component.path;
    request.managed = managed;
    request.owner = "suite:" + suite.definition->name;
    if (Result<inference::ModelInfo> loaded = registry_.load(request); loaded.ok()) {
      hold = registry_.hold(name);
    } else {
      hold = loaded.error();
    }
  }
  if (!hold.ok()) {
    Error error = hold.error();
    error.message = fmt::format("suite {}: {}: {}", suite.definition->name,
                                roleName(component.role), error.message);
    return error;
  }
  lease.holds_.push_back(std::move(hold.value()));
  lease.models[component.role] = name;
  return Status::success();
}

Result<std::unique_ptr<SuiteLease>> SuiteManager::acquire(const std::string& idOrName,
                                                          bool withRefiner,
                                                          const std::string& vae) {
  ASSIGN_OR_RETURN(const std::shared_ptr<Suite> suite, lookup(idOrName));
  if (withRefiner && !suite->definition->hasRefiner()) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("suite {} has no refiner", suite->definition->name),
                     {{"field", "refiner.mode"}});
  }
  auto lease = std::make_unique<SuiteLease>();
  std::string chosen;
  const Component* decoder = nullptr;
  {
    std::lock_guard serial(loadMutex_);
    if (!suite->loaded) RETURN_IF_ERROR(loadSuite(suite));
    std::lock_guard lock(mutex_);
    chosen = vae.empty() ? suite->defaultVae : vae;
    ASSIGN_OR_RETURN(const auto components, vaeComponentsLocked(*suite, chosen));
    decoder = components.first;
    ++suite->active;  // from here on the suite is not unloaded; the lease gives it back
    ++suite->vaeActive[chosen];
    suite->lastUsed = std::chrono::system_clock::now();
    lease->tokenizer = suite->tokenizer;
    lease->tokenizer2 = suite->tokenizer2;
  }
  lease->release_ = [this, suite, chosen] {
    std::lock_guard lock(mutex_);
    --suite->active;
    if (--suite->vaeActive[chosen] == 0) suite->vaeActive.erase(chosen);
    suite->lastUsed = std::chrono::system_clock::now();
  };
  lease->suiteId = suite->id;
  lease->definition = suite->definition;
  lease->vae = chosen;
  for (Role role : rolesFor(*suite->definition, withRefiner)) {
    const Component* component =
        role == Role::kVaeDecoder ? decoder : suite->definition->find(role);
    if (!component) continue;
    RETURN_IF_ERROR(holdComponent(*suite, *component,
                                  chosen != kStockVae && role == Role::kVaeDecoder, *lease));
    if (chosen != kStockVae && role == Role::kVaeDecoder) {
      std::lock_guard lock(mutex_);
      users_[modelNameOf(*component)].insert(suite->id);
      suite->vaeModels.insert(modelNameOf(*component));
    }
  }
  return lease;
}

Result<std::unique_ptr<SuiteLease>> SuiteManager::acquireVae(const std::string& idOrName,
                                                             const std::string& vae) {
  ASSIGN_OR_RETURN(const std::shared_ptr<Suite> suite, lookup(idOrName));
  auto lease = std::make_unique<SuiteLease>();
  std::pair<const Component*, const Component*> components;
  {
    std::lock_guard serial(loadMutex_);
    if (!suite->loaded) RETURN_IF_ERROR(loadSuite(suite));
    std::lock_guard lock(mutex_);
    ASSIGN_OR_RETURN(components, vaeComponentsLocked(*suite, vae));
    ++suite->active;
    ++suite->vaeActive[vae];
    suite->lastUsed = std::chrono::system_clock::now();
  }
  lease->release_ = [this, suite, vae] {
    std::lock_guard lock(mutex_);
    --suite->active;
    if (--suite->vaeActive[vae] == 0) suite->vaeActive.erase(vae);
  };
  lease->suiteId = suite->id;
  lease->definition = suite->definition;
  lease->vae = vae;
  const Component* stockEncoder = suite->definition->find(Role::kVaeEncoder);
  for (const Component* component : {components.first, components.second}) {
    if (!component) continue;
    const bool managed =
        vae != kStockVae && (component->role == Role::kVaeDecoder || component != stockEncoder);
    RETURN_IF_ERROR(holdComponent(*suite, *component, managed, *lease));
    if (managed) {
      std::lock_guard lock(mutex_);
      users_[modelNameOf(*component)].insert(suite->id);
      suite->vaeModels.insert(modelNameOf(*component));
    }
  }
  return lease;
}

}  // namespace deviceops::generation
