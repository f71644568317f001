// SuiteManager: registered model suites and their residency.
//
// - import(): reads and validates a suite (suite_import.h, suite_validation.h); an incompatible
//   combination is kConflict naming the first failing check (every check in the details); a
//   taken name is kConflict. Registered suites persist (SuiteStore); residency does not.
// - load(): every ONNX component goes through the inference registry as its own model, named
//   "sdxl-<first 16 hex of its sha256>": charged to the memory ledger, placed per device,
//   evictable like any model. Components with the same bytes (a refiner's text_encoder_2 and VAE,
//   or two suites sharing a VAE) are one registry model, reference-counted by the suites that
//   have them loaded. Past `maxLoaded` loaded suites, the least recently used one that no
//   generation uses is unloaded first (event "suite.evicted", reason "maxLoaded").
// - acquire(): what a generation holds while it runs: loads the suite if needed, then holds
//   (inference::ModelHold) every component its stages use, reloading any the registry evicted
//   under memory pressure. A held suite cannot be unloaded or deleted (kConflict).
// - unload(): releases the components no other loaded suite uses. remove(): unload + forget.
//
// Thread-safety: every public method may be called concurrently. mutex_ guards suites_ and
// users_; registry calls (loads, unloads, holds) are made without it.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "clip/clip_tokenizer.h"
#include "common/events.h"
#include "generation/suite.h"
#include "generation/suite_import.h"
#include "generation/suite_store.h"
#include "generation/vae_record.h"
#include "inference/registry.h"
#include "vae/vae_weights.h"

namespace deviceops::generation {

using SystemTime = std::chrono::system_clock::time_point;

struct SuiteManagerOptions {
  std::vector<std::filesystem::path> modelRoots;
  std::filesystem::path databaseFile;  // <dataDir>/generation/suites.db
  // Where patched VAE decoders/encoders are written (<dataDir>/generation/vaes); must be one of
  // the registry's managedRoots.
  std::filesystem::path vaeDirectory;
  int maxLoaded = 2;  // [suites] maxLoaded
};

struct ComponentStatus {
  Role role = Role::kUnet;
  std::string modelName;  // in the inference registry; empty for tokenizers
  std::string state;      // "unloaded" | "ready" | "evicted" | "loading" | "failed"
  std::vector<inference::Placement> placements;
  std::uint64_t chargedBytes = 0;
  std::vector<std::string> sharedWith;  // other loaded suites using the same model
};

struct SuiteInfo {
  std::string id;  // "suite-" + 12 hex
  std::string name;
  SuiteDefinition definition;
  Validation validation;
  // "registered" (not loaded) | "ready" | "partial" (loaded, some component evicted)
  std::string state;
  bool loaded = false;
  std::vector<ComponentStatus> components;
  std::map<std::string, std::uint64_t> memoryByDevice;  // ledger charges of its components
  SystemTime createdAt;
  std::optional<SystemTime> lastUsed;
  int activeGenerations = 0;
  std::string defaultVae = std::string(kStockVae);
  std::vector<std::string> vaes;  // registered custom VAEs, oldest first
};

struct VaeAddRequest {
  std::string name;                       // empty: the file's stem
  std::filesystem::path path;             // under the model roots, or the received upload
  bool uploaded = false;                  // path is a streamed upload (removed afterwards)
  std::optional<vae::FileFormat> format;  // required for uploads; else from the extension
};

struct VaeList {
  std::string suiteId;
  std::string defaultVae;
  std::vector<VaeRecord> vaes;          // custom ones, oldest first (not "stock")
  nlohmann::json comparison = nullptr;  // the last comparison
};

// What a running generation holds. Releasing it (destruction) lets the suite be evicted again.
class SuiteLease {
 public:
  SuiteLease() = default;
  SuiteLease(const SuiteLease&) = delete;
  SuiteLease& operator=(const SuiteLease&) = delete;
  ~SuiteLease();

  std::string suiteId;
  std::shared_ptr<const SuiteDefinition> definition;
  std::map<Role, std::string> models;  // registry model name per held role
  std::string vae;                     // the VAE held: "stock" or a registered name
  std::shared_ptr<const clip::ClipTokenizer> tokenizer, tokenizer2;

 private:
  friend class SuiteManager;
  std::vector<inference::ModelHold> holds_;
  std::function<void()> release_;
};

class SuiteManager {
 public:
  SuiteManager(inference::ModelRegistry& registry, SuiteManagerOptions options, EventSink& events);
  ~SuiteManager();

  // Opens the store and reads the registered suites (none is loaded).
  Status start();

  Result<SuiteInfo> import(const ImportRequest& request);
  std::vector<SuiteInfo> list() const;
  Result<SuiteInfo> get(const std::string& idOrName) const;
  Result<SuiteInfo> load(const std::string& idOrName);
  Result<SuiteInfo> unload(const std::string& idOrName);
  Status remove(const std::string& idOrName);
  // withRefiner: also hold the refiner UNet (kInvalidArgument when the suite has none).
  // vae: the VAE whose decoder (and encoder, when it has one) the lease holds: "stock", a
  // registered name, or empty for the suite's default; kNotFound for an unknown name.
  Result<std::unique_ptr<SuiteLease>> acquire(const std::string& idOrName, bool withRefiner,
                                              const std::string& vae = "");
  // Holds only the VAE decoder and encoder (the VAE's own encoder when it has one, else the
  // suite's) of `vae` ("stock" or a registered name): what a comparison runs.
  Result<std::unique_ptr<SuiteLease>> acquireVae(const std::string& idOrName,
                                                 const std::string& vae);

  // Custom VAEs (suite_vaes.cc). addVae reads the weights (vae_weights.h), writes them into the
  // suite's decoder and encoder (onnx_patch.h) and stores the result; errors: kNotFound (suite,
  // file), kPermissionDenied (path outside the model roots), kConflict (name taken),
  // kInvalidArgument (unreadable or hostile file, missing key, shape mismatch),
  // kUnprocessable (the suite's decoder must be re-exported).
  Result<VaeRecord> addVae(const std::string& idOrName, const VaeAddRequest& request);
  Result<VaeList> listVaes(const std::string& idOrName) const;
  // kConflict when it is the suite's default or a running generation holds it.
  Status removeVae(const std::string& idOrName, const std::string& name);
  // Makes `name` ("stock" or registered) the default; returns the suite id.
  Result<std::string> selectVae(const std::string& idOrName, const std::string& name);
  // The VAE a request gets: `name` when set (kNotFound if unknown), else the default.
  Result<std::string> resolveVae(const std::string& idOrName, const std::string& name) const;
  // Stores a comparison: the suite's last comparison, and each ranked VAE's quality.
  Status recordComparison(const std::string& idOrName, const nlohmann::json& comparison);

  const SuiteManagerOptions& options() const { return options_; }
  // The registry's name for a component: "sdxl-" + the first 16 hex digits of its sha256.
  static std::string modelNameOf(const Component& component);

 private:
  struct Suite {
    std::string id;
    std::shared_ptr<const SuiteDefinition> definition;
    Validation validation;
    SystemTime createdAt;
    std::optional<SystemTime> lastUsed;
    bool loaded = false;
    bool loading = false;
    int active = 0;
    std::shared_ptr<const clip::ClipTokenizer> tokenizer, tokenizer2;
    std::map<std::string, VaeRecord> vaes;  // by name
    std::string defaultVae = std::string(kStockVae);
    nlohmann::json comparison = nullptr;
    std::set<std::string> vaeModels;       // registry models of custom VAEs this suite loaded
    std::map<std::string, int> vaeActive;  // custom VAE name -> leases holding it
  };

  Result<std::shared_ptr<Suite>> lookupLocked(const std::string& idOrName) const;
  SuiteInfo describe(const Suite& suite) const;  // takes no lock on mutex_ (registry calls)
  // Loads the components and tokenizers of `suite`; marks it loaded. Evicts LRU suites first.
  Status loadSuite(const std::shared_ptr<Suite>& suite);
  // Unloads the registry models only `suite` uses. Precondition: not active.
  Status unloadSuite(const std::shared_ptr<Suite>& suite, const std::string& reason);
  void evictForRoom(const std::shared_ptr<Suite>& incoming);
  Result<std::shared_ptr<Suite>> lookup(const std::string& idOrName) const;
  // Holds `component` (loading it first when the registry does not have it) for `lease`.
  Status holdComponent(const Suite& suite, const Component& component, bool managed,
                       SuiteLease& lease);
  // The decoder/encoder components of `vae` for `suite` (stock ones for "stock"); the encoder
  // may be null. kNotFound for an unknown name. Precondition: mutex_ held.
  Result<std::pair<const Component*, const Component*>> vaeComponentsLocked(
      const Suite& suite, const std::string& vae) const;
  // Whether a VAE other than `leavingVae` of `leaving` (every VAE of it when empty) uses the
  // patched model file `path`. Precondition: mutex_ held.
  bool vaeFileUsedLocked(const std::filesystem::path& path, const Suite& leaving,
                         const std::string& leavingVae) const;
  // Deletes the patched model files of `suite`'s VAEs that no other suite's VAE uses.
  void removeVaeFilesOf(const Suite& suite);
  void publish(std::string type, std::string severity, std::string message, nlohmann::json details);

  inference::ModelRegistry& registry_;
  const SuiteManagerOptions options_;
  EventSink& events_;
  std::unique_ptr<SuiteStore> store_;

  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Suite>> suites_;  // by id
  std::map<std::string, std::set<std::string>> users_;    // registry model -> loaded suite ids
  std::mutex loadMutex_;  // one suite load/unload at a time (they share components)
};

}  // namespace deviceops::generation
