// deviceops vae add|list|compare|select|remove: a suite's custom VAE weights
// (/api/suites/{suite}/vaes). The suite's own VAE is the entry named "stock".
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "client/cli.h"
#include "client/cli_commands.h"
#include "client/table.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;
namespace fs = std::filesystem;

struct AddOptions {
  std::string suite, file, name;
  bool upload = false;
};

struct CompareOptions {
  std::string suite;
  std::vector<std::string> candidates, images;
  int size = 0;
  bool select = false;
  CLI::Option* sizeOption = nullptr;  // set while parsing; read by the action
};

// The weight formats an upload may declare, by file extension (compared case-insensitively).
constexpr std::array<std::pair<std::string_view, std::string_view>, 4> kUploadFormats = {{
    {".safetensors", "safetensors"},
    {".pt", "pt"},
    {".ckpt", "ckpt"},
    {".bin", "bin"},
}};

// The upload format for file's extension; "" when the extension is none of kUploadFormats.
std::string uploadFormat(const std::string& file) {
  std::string extension = fs::path(file).extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const auto& [suffix, format] : kUploadFormats) {
    if (extension == suffix) return std::string(format);
  }
  return "";
}

// A path that exists here is made absolute: the daemon resolves it, not our working directory.
// Anything else is sent as given (a path relative to one of the daemon's model roots).
std::string daemonPath(const std::string& path) {
  std::error_code error;
  if (!fs::path(path).is_relative() || !fs::exists(path, error)) return path;
  const fs::path absolute = fs::absolute(path, error);
  return error ? path : absolute.string();
}

Result<std::string> readWholeFile(const std::string& file) {
  std::error_code error;
  std::ifstream input(file, std::ios::binary | std::ios::ate);
  if (!input || !fs::is_regular_file(file, error)) {
    return makeError(ErrorCode::kNotFound, "cannot read " + file);
  }
  const std::streamoff size = input.tellg();
  if (size < 0) return makeError(ErrorCode::kUnavailable, "cannot read " + file);
  std::string bytes(static_cast<std::size_t>(size), '\0');
  input.seekg(0);
  input.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!input) {
    return makeError(ErrorCode::kUnavailable,
                     fmt::format("cannot read {}: {}", file, std::strerror(errno)));
  }
  return bytes;
}

std::string vaesTarget(const std::string& suite) {
  return "/api/suites/" + percentEncode(suite) + "/vaes";
}

// The JSON of a 2xx answer (as CliSession::sendJson returns it) from a raw response.
Result<Json> jsonAnswer(const Result<HttpResponse>& response, std::string_view what) {
  if (!response) return response.error();
  if (response->status < 200 || response->status >= 300) return answerError(*response);
  Json body = Json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    return makeError(ErrorCode::kInternal, fmt::format("the answer to {} is not JSON", what));
  }
  return body;
}

std::string fixed(std::optional<double> value, int decimals) {
  return value ? fmt::format("{:.{}f}", *value, decimals) : std::string();
}

std::string psnrText(const Json& object) { return fixed(numberAt(object, "psnr"), 2); }
std::string ssimText(const Json& object) { return fixed(numberAt(object, "ssim"), 4); }

// A 0..1 fraction as a percentage with one decimal ("0.1%"); rates of rare events (NaN
// pixels, clipped outputs) would all read "0%" as whole percentages.
std::string percentText(std::optional<double> fraction) {
  return fraction ? fmt::format("{:.1f}%", *fraction * 100.0) : std::string();
}

// "patched 40 decoder and 38 encoder tensors in 12.5 ms"
std::string patchedText(const Json& vae) {
  const Json& components = memberAt(vae, "components");
  const Json& decoder = memberAt(components, "vae_decoder");
  const Json& encoder = memberAt(components, "vae_encoder");
  const std::string decoderPart =
      fmt::format("{} decoder", scalarText(memberAt(decoder, "patched")));
  const std::string encoderPart =
      encoder.is_object()
          ? fmt::format(" and {} encoder tensors", scalarText(memberAt(encoder, "patched")))
          : " tensors (no encoder)";
  return fmt::format("patched {}{} in {} ms", decoderPart, encoderPart,
                     fixed(numberAt(vae, "patchMs"), 1));
}

int printAdded(CliSession& session, const Json& vae) {
  if (session.jsonOutput()) return session.printJson(vae);
  session.out() << fmt::format("added {} to {}: {}, {} keys, {} tensors\n", stringAt(vae, "name"),
                               stringAt(vae, "suite"), stringAt(memberAt(vae, "source"), "format"),
                               stringAt(vae, "keyFormat"), scalarText(memberAt(vae, "tensors")))
                << patchedText(vae) << "\n";
  return kExitOk;
}

int addVae(CliSession& session, const AddOptions& options) {
  const std::string name =
      options.name.empty() ? fs::path(options.file).stem().string() : options.name;
  if (!options.upload) {
    const Json body = {{"name", name}, {"path", daemonPath(options.file)}};
    auto vae = session.sendJson("POST", vaesTarget(options.suite), body);
    if (!vae) return session.report(vae.error());
    return printAdded(session, *vae);
  }
  const std::string format = uploadFormat(options.file);
  if (format.empty()) {
    session.err() << fmt::format(
        "error: cannot tell the format of {}: --upload takes .safetensors, .pt, .ckpt or .bin\n",
        options.file);
    return kExitUsage;
  }
  auto bytes = readWholeFile(options.file);
  if (!bytes) {
    session.err() << "error: " << bytes.error().message << "\n";
    return kExitUsage;
  }
  const std::string target =
      fmt::format("{}?name={}&format={}", vaesTarget(options.suite), percentEncode(name), format);
  auto vae = jsonAnswer(
      postWithProgress(session, target, *bytes,
                       "upload " + std::filesystem::path(options.file).filename().string()),
      target);
  if (!vae) return session.report(vae.error());
  return printAdded(session, *vae);
}

// "yes" when the VAE patches the suite's encoder too, "no" when it has none (null).
std::string encoderText(const Json& vae) {
  const Json& components = memberAt(vae, "components");
  if (!components.is_object() || !components.contains("vae_encoder")) return "";
  return memberAt(components, "vae_encoder").is_object() ? "yes" : "no";
}

int listVaes(CliSession& session, const std::string& suite) {
  auto result = session.getJson(vaesTarget(suite));
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  const Json& vaes = memberAt(*result, "vaes");
  if (!vaes.is_array() || vaes.empty()) {
    session.out() << "no VAEs; add one with: deviceops vae add SUITE FILE\n";
    return kExitOk;
  }
  const std::string defaultName = stringAt(*result, "default");
  Table table({{"NAME"},
               {"DEFAULT"},
               {"FORMAT"},
               {"KEYS"},
               {"TENSORS", Align::kRight},
               {"ENCODER"},
               {"PSNR", Align::kRight},
               {"SSIM", Align::kRight}});
  for (const Json& vae : vaes) {
    const Json& quality = memberAt(vae, "quality");
    const bool isDefault = memberAt(vae, "default") == true || stringAt(vae, "name") == defaultName;
    // A blank (not "-") for the others: "-" would read as a missing figure.
    table.addRow({stringAt(vae, "name"), isDefault ? "*" : " ",
                  stringAt(memberAt(vae, "source"), "format"), stringAt(vae, "keyFormat"),
                  scalarText(memberAt(vae, "tensors")), encoderText(vae), psnrText(quality),
                  ssimText(quality)});
  }
  session.out() << table.render();
  return kExitOk;
}

Json compareBody(const CompareOptions& options) {
  Json body = Json::object();
  if (!options.candidates.empty()) body["candidates"] = options.candidates;
  if (!options.images.empty()) {
    Json images = Json::array();
    for (const std::string& image : options.images) images.push_back(daemonPath(image));
    body["images"] = std::move(images);
  }
  if (options.sizeOption != nullptr && options.sizeOption->count() > 0) body["size"] = options.size;
  body["select"] = options.select;
  return body;
}

int compareVaes(CliSession& session, const CompareOptions& options) {
  auto comparison =
      session.sendJson("POST", vaesTarget(options.suite) + "/compare", compareBody(options));
  if (!comparison) return session.report(comparison.error());
  if (session.jsonOutput()) return session.printJson(*comparison);
  Table table({{"RANK", Align::kRight},
               {"NAME"},
               {"PSNR", Align::kRight},
               {"SSIM", Align::kRight},
               {"NAN16", Align::kRight},
               {"NAN32", Align::kRight},
               {"CLIP", Align::kRight},
               {"DRIFT", Align::kRight},
               {"DECODE_MS", Align::kRight},
               {"PEAK", Align::kRight}});
  for (const Json& entry : memberAt(*comparison, "ranking")) {
    const Json& nanRate = memberAt(entry, "nanRate");
    table.addRow({scalarText(memberAt(entry, "rank")), stringAt(entry, "name"), psnrText(entry),
                  ssimText(entry), percentText(numberAt(nanRate, "fp16")),
                  percentText(numberAt(nanRate, "fp32")),
                  percentText(numberAt(entry, "clippedFraction")),
                  fixed(numberAt(entry, "colourfulnessDrift"), 1),
                  fixed(numberAt(entry, "decodeMs"), 1), formatBytes(bytesAt(entry, "peakBytes"))});
  }
  const std::string winner = stringAt(*comparison, "winner");
  session.out() << table.render() << "winner: " << (winner.empty() ? kAbsent : winner) << "\n";
  if (memberAt(*comparison, "selected") == true) session.out() << "selected as default\n";
  return kExitOk;
}

int selectVae(CliSession& session, const std::string& suite, const std::string& name) {
  auto result =
      session.sendJson("PUT", "/api/suites/" + percentEncode(suite) + "/vae", {{"name", name}});
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  session.out() << fmt::format("default VAE of {}: {}\n", stringAt(*result, "suite"),
                               stringAt(*result, "default"));
  return kExitOk;
}

// The answer is 204 without a body, so --json prints nothing.
int removeVae(CliSession& session, const std::string& suite, const std::string& name) {
  auto response = session.client().request("DELETE", vaesTarget(suite) + "/" + percentEncode(name));
  if (!response) return session.report(response.error());
  if (response->status < 200 || response->status >= 300) {
    return session.report(answerError(*response));
  }
  if (!session.jsonOutput()) session.out() << fmt::format("removed {} from {}\n", name, suite);
  return kExitOk;
}

}  // namespace

void addVaeCommands(CLI::App& app, CommandAction& action) {
  CLI::App* vae = app.add_subcommand("vae", "custom VAE weights of a suite");
  vae->alias("vaes");
  vae->require_subcommand(1);

  auto add = std::make_shared<AddOptions>();
  CLI::App* addCommand =
      vae->add_subcommand("add", "patch a suite's VAE with weights from a checkpoint file");
  addCommand->add_option("suite", add->suite, "suite name or id")->required();
  addCommand->add_option("file", add->file, ".safetensors, .pt, .ckpt or .bin")->required();
  addCommand->add_option("--name", add->name, "the VAE's name (default: the file stem)");
  addCommand->add_flag("--upload", add->upload, "send the file's bytes instead of its path");
  addCommand->callback(
      [&action, add] { action = [add](CliSession& session) { return addVae(session, *add); }; });

  auto listSuite = std::make_shared<std::string>();
  CLI::App* listCommand = vae->add_subcommand("list", "the suite's VAEs, stock included");
  listCommand->add_option("suite", *listSuite, "suite name or id")->required();
  listCommand->callback([&action, listSuite] {
    action = [listSuite](CliSession& session) { return listVaes(session, *listSuite); };
  });

  auto compare = std::make_shared<CompareOptions>();
  CLI::App* compareCommand =
      vae->add_subcommand("compare", "rank VAEs by a round trip over probe images");
  compareCommand->add_option("suite", compare->suite, "suite name or id")->required();
  compareCommand
      ->add_option("--candidate", compare->candidates,
                   "a VAE to compare (repeatable; default: all)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  compareCommand
      ->add_option("--image", compare->images, "a probe image under a model root (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  compare->sizeOption = compareCommand->add_option("--size", compare->size, "probe side in pixels")
                            ->check(CLI::PositiveNumber);
  compareCommand->add_flag("--select", compare->select, "make the winner the suite's default");
  compareCommand->callback([&action, compare] {
    action = [compare](CliSession& session) { return compareVaes(session, *compare); };
  });

  auto suite = std::make_shared<std::string>();
  auto name = std::make_shared<std::string>();
  const auto withSuiteAndName = [&](const char* command, const char* help) {
    CLI::App* sub = vae->add_subcommand(command, help);
    sub->add_option("suite", *suite, "suite name or id")->required();
    sub->add_option("name", *name, "VAE name (\"stock\": the suite's own)")->required();
    return sub;
  };
  withSuiteAndName("select", "make a VAE the suite's default")->callback([&action, suite, name] {
    action = [suite, name](CliSession& session) { return selectVae(session, *suite, *name); };
  });
  withSuiteAndName("remove", "forget a custom VAE")->callback([&action, suite, name] {
    action = [suite, name](CliSession& session) { return removeVae(session, *suite, *name); };
  });
}

}  // namespace deviceops::client
