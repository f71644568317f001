// deviceops models load|unload|list|show, deviceops infer <model> --input name=file.npy
//
// `infer` speaks KServe v2 (POST /v2/models/{m}/infer) with the pure codec and NumPy reader of
// deviceops_tensor, so the CLI needs no ONNX Runtime.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "client/cli.h"
#include "client/cli_commands.h"
#include "client/table.h"
#include "tensor/kserve_codec.h"
#include "tensor/npy.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;
using Entries = std::vector<std::pair<std::string, std::string>>;
namespace fs = std::filesystem;

std::string shapeText(const Json& shape) {
  if (!shape.is_array()) return "";
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + scalarText(shape[i]);
  return text + "]";
}

std::string specsText(const Json& specs) {
  if (!specs.is_array()) return "";
  std::string text;
  for (const Json& spec : specs) {
    if (!text.empty()) text += ", ";
    text += fmt::format("{} {} {}", stringAt(spec, "name"), stringAt(spec, "datatype"),
                        shapeText(memberAt(spec, "shape")));
  }
  return text;
}

std::string devicesText(const Json& model) {
  std::string text;
  const Json& placements = memberAt(model, "placements");
  if (!placements.is_array()) return text;
  for (const Json& placement : placements) {
    if (!text.empty()) text += ",";
    text += stringAt(placement, "deviceId");
  }
  return text;
}

struct LoadOptions {
  std::string path;
  std::string name;
  std::string version;
  std::vector<std::string> devices;
  int replicas = 0;
  int instances = 0;
  int maxBatch = 0;
  bool persist = false;
  bool pinned = false;
  bool upload = false;
};

int printModel(CliSession& session, const Json& model) {
  if (session.jsonOutput()) return session.printJson(model);
  Entries entries = {{"id", stringAt(model, "id")},
                     {"name", stringAt(model, "name")},
                     {"version", stringAt(model, "version")},
                     {"state", stringAt(model, "state")},
                     {"reason", stringAt(model, "stateReason")},
                     {"path", stringAt(model, "path")},
                     {"sha256", stringAt(model, "sha256")},
                     {"size", formatBytes(bytesAt(model, "sizeBytes"))},
                     {"opset", scalarText(memberAt(model, "opset"))},
                     {"producer", stringAt(model, "producer")},
                     {"inputs", specsText(memberAt(model, "inputs"))},
                     {"outputs", specsText(memberAt(model, "outputs"))},
                     {"devices", devicesText(model)},
                     {"provider", stringAt(model, "provider")},
                     {"instances", scalarText(memberAt(model, "instances"))},
                     {"batching", scalarText(memberAt(memberAt(model, "batching"), "enabled"))},
                     {"charged", formatBytes(bytesAt(model, "chargedBytes"))},
                     {"pinned", scalarText(memberAt(model, "pinned"))},
                     {"persist", scalarText(memberAt(model, "persist"))},
                     {"evicted", scalarText(memberAt(model, "evicted"))},
                     {"loadedAt", stringAt(model, "loadedAt")},
                     {"lastUsedAt", stringAt(model, "lastUsedAt")}};
  flattenJson("statistics", memberAt(model, "statistics"), entries);
  session.out() << renderKeyValues(entries);
  return kExitOk;
}

std::string uploadQuery(const LoadOptions& options) {
  std::string query;
  const auto add = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    query += (query.empty() ? "?" : "&") + std::string(name) + "=" + percentEncode(value);
  };
  add("name", options.name.empty() ? fs::path(options.path).stem().string() : options.name);
  add("version", options.version);
  std::string devices;
  for (const std::string& device : options.devices)
    devices += (devices.empty() ? "" : ",") + device;
  add("devices", devices);
  if (options.replicas > 0) add("replicas", std::to_string(options.replicas));
  if (options.instances > 0) add("instances", std::to_string(options.instances));
  if (options.maxBatch > 0) add("maxBatchSize", std::to_string(options.maxBatch));
  if (options.persist) add("persist", "true");
  if (options.pinned) add("pinned", "true");
  return query;
}

int load(CliSession& session, const LoadOptions& options) {
  if (options.upload) {
    std::ifstream input(options.path, std::ios::binary);
    if (!input) {
      session.err() << "error: cannot read " << options.path << "\n";
      return kExitUsage;
    }
    std::ostringstream content;
    content << input.rdbuf();
    auto response =
        postWithProgress(session, "/api/inference/model/load" + uploadQuery(options), content.str(),
                         "upload " + fs::path(options.path).filename().string());
    if (!response) return session.report(response.error());
    if (response->status < 200 || response->status >= 300) {
      return session.report(answerError(*response));
    }
    const Json model = Json::parse(response->body, nullptr, false);
    return printModel(session, model);
  }
  // A path that exists here is made absolute: the daemon resolves it, not our working directory.
  std::string path = options.path;
  std::error_code error;
  if (fs::path(path).is_relative() && fs::exists(path, error)) path = fs::absolute(path).string();
  Json body = {{"path", path}};
  if (!options.name.empty()) body["name"] = options.name;
  if (!options.version.empty()) body["version"] = options.version;
  if (!options.devices.empty()) body["devices"] = options.devices;
  if (options.replicas > 0) body["replicas"] = options.replicas;
  if (options.instances > 0) body["instances"] = options.instances;
  if (options.maxBatch > 0) body["batching"] = {{"maxBatchSize", options.maxBatch}};
  if (options.persist) body["persist"] = true;
  if (options.pinned) body["pinned"] = true;
  auto result = session.sendJson("POST", "/api/inference/model/load", body);
  if (!result) return session.report(result.error());
  return printModel(session, *result);
}

int unload(CliSession& session, const std::string& id) {
  auto result = session.sendJson("DELETE", "/api/inference/model/" + percentEncode(id), nullptr);
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  session.out() << fmt::format("unloaded {} ({} version {}): released {} of {} charged\n",
                               stringAt(*result, "id"), stringAt(*result, "name"),
                               stringAt(*result, "version"),
                               formatBytes(bytesAt(*result, "releasedBytes")),
                               formatBytes(bytesAt(*result, "chargedBytes")));
  return kExitOk;
}

int list(CliSession& session) {
  auto result = session.getJson("/api/inference/models");
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  Table table({{"ID"},
               {"NAME", Align::kLeft, 24},
               {"VERSION"},
               {"STATE"},
               {"DEVICES"},
               {"PROVIDER"},
               {"INSTANCES", Align::kRight},
               {"CHARGED", Align::kRight},
               {"INFERENCES", Align::kRight},
               {"LAST USED"}});
  const Json& models = memberAt(*result, "models");
  if (models.is_array()) {
    for (const Json& model : models) {
      std::string state = stringAt(model, "state");
      if (memberAt(model, "evicted") == true) state += " (evicted)";
      table.addRow({stringAt(model, "id"), stringAt(model, "name"), stringAt(model, "version"),
                    state, devicesText(model), stringAt(model, "provider"),
                    scalarText(memberAt(model, "instances")),
                    formatBytes(bytesAt(model, "chargedBytes")),
                    scalarText(memberAt(memberAt(model, "statistics"), "inferenceCount")),
                    stringAt(model, "lastUsedAt")});
    }
  }
  session.out() << (table.rowCount() == 0 ? std::string("no models\n") : table.render());
  return kExitOk;
}

int show(CliSession& session, const std::string& id) {
  auto result = session.getJson("/api/inference/model/" + percentEncode(id));
  if (!result) return session.report(result.error());
  return printModel(session, *result);
}

struct InferOptions {
  std::string model;
  std::string version;
  std::vector<std::string> inputs;  // name=file.npy
  std::string outputDir;
  bool binary = false;
};

std::string valuesPreview(const inference::Tensor& tensor) {
  constexpr std::size_t kShown = 8;
  const Json values = inference::tensorDataToJson(tensor);
  std::string text;
  for (std::size_t i = 0; i < values.size() && i < kShown; ++i) {
    text += (i ? ", " : "") + scalarText(values[i]);
  }
  if (values.size() > kShown) text += fmt::format(", … ({} values)", values.size());
  return text;
}

int infer(CliSession& session, const InferOptions& options) {
  std::vector<inference::Tensor> inputs;
  for (const std::string& spec : options.inputs) {
    const std::size_t equals = spec.find('=');
    if (equals == std::string::npos || equals == 0 || equals + 1 == spec.size()) {
      session.err() << "error: --input must be name=file.npy, got '" << spec << "'\n";
      return kExitUsage;
    }
    Result<inference::Tensor> tensor =
        inference::readNpyFile(spec.substr(equals + 1), spec.substr(0, equals));
    if (!tensor.ok()) {
      session.err() << "error: " << tensor.error().message << "\n";
      return kExitUsage;
    }
    inputs.push_back(std::move(*tensor));
  }
  const inference::EncodedBody request =
      inference::encodeV2InferRequest(inputs, {}, options.binary, options.binary);
  std::string target = "/v2/models/" + percentEncode(options.model);
  if (!options.version.empty()) target += "/versions/" + percentEncode(options.version);
  std::vector<std::pair<std::string, std::string>> headers;
  if (request.jsonLength) {
    headers.emplace_back(std::string(inference::kInferenceHeaderContentLength),
                         std::to_string(*request.jsonLength));
  }
  auto response = session.client().request(
      "POST", target + "/infer", request.body,
      request.jsonLength ? "application/octet-stream" : "application/json", headers);
  if (!response) return session.report(response.error());
  if (response->status < 200 || response->status >= 300) {
    return session.report(answerError(*response));
  }
  std::optional<std::string> headerLength;
  if (auto it = response->headers.find("inference-header-content-length");
      it != response->headers.end()) {
    headerLength = it->second;
  }
  Result<inference::V2InferResponse> decoded =
      inference::decodeV2InferResponse(response->body, headerLength);
  if (!decoded.ok()) {
    session.err() << "error: unexpected answer from the server: " << decoded.error().message
                  << "\n";
    return kExitServerError;
  }
  if (!options.outputDir.empty()) {
    std::error_code error;
    fs::create_directories(options.outputDir, error);
    for (const inference::Tensor& tensor : decoded->outputs) {
      std::string file = tensor.name;
      for (char& c : file) {
        if (c == '/' || c == '\\' || c == '\0') c = '_';
      }
      const fs::path path = fs::path(options.outputDir) / (file + ".npy");
      Status written = inference::writeNpyFile(path, tensor);
      if (!written.ok()) {
        session.err() << "error: " << written.error().message << "\n";
        return kExitServerError;
      }
      if (!session.jsonOutput()) {
        session.out() << fmt::format("wrote {} ({} {})\n", path.string(),
                                     inference::dataTypeName(tensor.type),
                                     shapeText(Json(tensor.shape)));
      }
    }
  }
  if (session.jsonOutput()) {
    Json outputs = Json::array();
    for (const inference::Tensor& tensor : decoded->outputs) {
      outputs.push_back({{"name", tensor.name},
                         {"datatype", inference::dataTypeName(tensor.type)},
                         {"shape", tensor.shape},
                         {"data", inference::tensorDataToJson(tensor)}});
    }
    return session.printJson({{"model_name", decoded->modelName},
                              {"model_version", decoded->modelVersion},
                              {"outputs", outputs}});
  }
  if (options.outputDir.empty()) {
    Table table({{"OUTPUT"}, {"DATATYPE"}, {"SHAPE"}, {"VALUES", Align::kLeft, 80}});
    for (const inference::Tensor& tensor : decoded->outputs) {
      table.addRow({tensor.name, std::string(inference::dataTypeName(tensor.type)),
                    shapeText(Json(tensor.shape)), valuesPreview(tensor)});
    }
    session.out() << fmt::format("model {} version {}\n", decoded->modelName, decoded->modelVersion)
                  << table.render();
  }
  return kExitOk;
}

}  // namespace

void addModelCommands(CLI::App& app, CommandAction& action) {
  CLI::App* models = app.add_subcommand("models", "ONNX models: load, unload, list, show");
  models->require_subcommand(1);

  auto load_ = std::make_shared<LoadOptions>();
  CLI::App* loadCommand = models->add_subcommand("load", "load an ONNX model");
  loadCommand->add_option("path", load_->path, "model file (inside the daemon's model roots)")
      ->required();
  loadCommand->add_option("--name", load_->name, "model name (default: the file stem)");
  loadCommand->add_option("--version", load_->version, "model version (default 1)");
  loadCommand->add_option("--device", load_->devices, "pin to this device (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  loadCommand->add_option("--replicas", load_->replicas, "place on this many devices")
      ->check(CLI::Range(1, 64));
  loadCommand->add_option("--instances", load_->instances, "session instances per device")
      ->check(CLI::Range(1, 64));
  loadCommand->add_option("--max-batch", load_->maxBatch, "enable dynamic batching up to this")
      ->check(CLI::Range(1, 4096));
  loadCommand->add_flag("--persist", load_->persist, "load again when the daemon restarts");
  loadCommand->add_flag("--pinned", load_->pinned, "never evict");
  loadCommand->add_flag("--upload", load_->upload, "send the file's bytes instead of its path");
  loadCommand->callback([&action, load_] {
    action = [load_](CliSession& session) { return load(session, *load_); };
  });

  auto unloadId = std::make_shared<std::string>();
  CLI::App* unloadCommand = models->add_subcommand("unload", "unload a model");
  unloadCommand->add_option("model", *unloadId, "model id or name")->required();
  unloadCommand->callback([&action, unloadId] {
    action = [unloadId](CliSession& session) { return unload(session, *unloadId); };
  });

  CLI::App* listCommand = models->add_subcommand("list", "registered models");
  listCommand->callback([&action] { action = [](CliSession& session) { return list(session); }; });

  auto showId = std::make_shared<std::string>();
  CLI::App* showCommand = models->add_subcommand("show", "one model in detail");
  showCommand->add_option("model", *showId, "model id or name")->required();
  showCommand->callback([&action, showId] {
    action = [showId](CliSession& session) { return show(session, *showId); };
  });

  auto infer_ = std::make_shared<InferOptions>();
  CLI::App* inferCommand = app.add_subcommand("infer", "run a model on .npy inputs (KServe v2)");
  inferCommand->add_option("model", infer_->model, "model name or id")->required();
  inferCommand->add_option("--input", infer_->inputs, "name=file.npy (repeatable)")
      ->required()
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  inferCommand->add_option("--version", infer_->version, "model version (default: newest)");
  inferCommand->add_option("--output-dir", infer_->outputDir, "write each output as <name>.npy");
  inferCommand->add_flag("--binary", infer_->binary, "binary tensor data instead of JSON");
  inferCommand->callback([&action, infer_] {
    action = [infer_](CliSession& session) { return infer(session, *infer_); };
  });
}

}  // namespace deviceops::client
