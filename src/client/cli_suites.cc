// deviceops suites import|list|show|load|unload|delete: model suites (/api/suites).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <fstream>
#include <memory>

#include "client/cli.h"
#include "client/cli_commands.h"
#include "client/table.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;

struct ImportOptions {
  std::string path, name, refinerPath, manifestFile;
};

// "cpu0 1.2 GiB, gpu-1 3.0 GiB" from {"cpu0": bytes, ...}; "" when empty.
std::string memoryText(const Json& memoryByDevice) {
  std::string text;
  if (!memoryByDevice.is_object()) return text;
  for (const auto& [device, bytes] : memoryByDevice.items()) {
    if (!text.empty()) text += ", ";
    text += device + " " + formatBytes(bytesAt(memoryByDevice, device));
  }
  return text;
}

std::string scoreText(const Json& suite) { return formatRatio(numberAt(suite, "score")); }

// One row per check: name, pass/FAIL, component, tensor, expected, found, description.
Table checksTable(const Json& checks) {
  Table table({{"CHECK"},
               {"RESULT"},
               {"COMPONENT"},
               {"TENSOR"},
               {"EXPECTED", Align::kLeft, 40},
               {"FOUND", Align::kLeft, 40},
               {"DESCRIPTION", Align::kLeft, 60}});
  for (const Json& check : checks) {
    table.addRow({stringAt(check, "name"), memberAt(check, "passed") == true ? "pass" : "FAIL",
                  stringAt(check, "component"), stringAt(check, "tensor"),
                  stringAt(check, "expected"), stringAt(check, "found"),
                  stringAt(check, "description")});
  }
  return table;
}

std::size_t passedCount(const Json& checks) {
  return static_cast<std::size_t>(std::count_if(
      checks.begin(), checks.end(), [](const Json& c) { return memberAt(c, "passed") == true; }));
}

// "tiny (suite-0123456789ab): ready, loaded, refiner yes, score 100%"
std::string suiteLine(const Json& suite) {
  return fmt::format("{} ({}): {}{}, refiner {}, score {}", stringAt(suite, "name"),
                     stringAt(suite, "id"), stringAt(suite, "state"),
                     memberAt(suite, "loaded") == true ? ", loaded" : "",
                     memberAt(suite, "hasRefiner") == true ? "yes" : "no", scoreText(suite));
}

int importSuite(CliSession& session, const ImportOptions& options) {
  Json body = {{"name", options.name}, {"path", options.path}};
  if (!options.refinerPath.empty()) body["refinerPath"] = options.refinerPath;
  if (!options.manifestFile.empty()) {
    std::ifstream input(options.manifestFile);
    if (!input) {
      session.err() << "error: cannot read " << options.manifestFile << "\n";
      return kExitUsage;
    }
    body["manifest"] = Json::parse(input, nullptr, /*allow_exceptions=*/false);
    if (!body["manifest"].is_object()) {
      session.err() << "error: " << options.manifestFile << " is not a JSON object\n";
      return kExitUsage;
    }
  }
  auto suite = session.sendJson("POST", "/api/suites", body);
  if (!suite) {
    const int status = session.report(suite.error());
    // An incompatible suite: every check, so the user sees all that is wrong at once.
    const Json& checks =
        memberAt(memberAt(memberAt(suite.error().details, "details"), "validation"), "checks");
    if (checks.is_array() && !checks.empty()) session.err() << checksTable(checks).render();
    return status;
  }
  if (session.jsonOutput()) return session.printJson(*suite);
  const Json& checks = memberAt(memberAt(*suite, "validation"), "checks");
  session.out() << "imported " << suiteLine(*suite) << "\n"
                << fmt::format("{} components, {}/{} checks passed\n",
                               memberAt(*suite, "components").size(), passedCount(checks),
                               checks.size());
  return kExitOk;
}

int listSuites(CliSession& session) {
  auto result = session.getJson("/api/suites");
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  const Json& suites = memberAt(*result, "suites");
  if (!suites.is_array() || suites.empty()) {
    session.out() << "no suites; import one with: deviceops suites import PATH --name NAME\n";
    return kExitOk;
  }
  Table table({{"NAME"},
               {"ID"},
               {"STATE"},
               {"REFINER"},
               {"SCORE", Align::kRight},
               {"ACTIVE", Align::kRight},
               {"MEMORY"}});
  for (const Json& suite : suites) {
    table.addRow({stringAt(suite, "name"), stringAt(suite, "id"), stringAt(suite, "state"),
                  memberAt(suite, "hasRefiner") == true ? "yes" : "no", scoreText(suite),
                  scalarText(memberAt(suite, "activeGenerations")),
                  memoryText(memberAt(suite, "memoryByDevice"))});
  }
  session.out() << table.render();
  return kExitOk;
}

int showSuite(CliSession& session, const std::string& suiteId) {
  auto suite = session.getJson("/api/suites/" + percentEncode(suiteId));
  if (!suite) return session.report(suite.error());
  if (session.jsonOutput()) return session.printJson(*suite);
  const Json& validation = memberAt(*suite, "validation");
  const Json& checks = memberAt(validation, "checks");
  session.out() << renderKeyValues({
      {"name", stringAt(*suite, "name")},
      {"id", stringAt(*suite, "id")},
      {"kind", stringAt(*suite, "kind")},
      {"state", stringAt(*suite, "state")},
      {"loaded", memberAt(*suite, "loaded") == true ? "yes" : "no"},
      {"refiner", memberAt(*suite, "hasRefiner") == true ? "yes" : "no"},
      {"score", scoreText(*suite)},
      {"compatible", memberAt(validation, "compatible") == true ? "yes" : "no"},
      {"active generations", scalarText(memberAt(*suite, "activeGenerations"))},
      {"memory", memoryText(memberAt(*suite, "memoryByDevice"))},
      {"created", stringAt(*suite, "createdAt")},
      {"last used", stringAt(*suite, "lastUsedAt")},
  });
  Table components({{"ROLE"},
                    {"STATE"},
                    {"MODEL"},
                    {"CHARGED", Align::kRight},
                    {"FILE SIZE", Align::kRight},
                    {"SHARED WITH"}});
  for (const Json& component : memberAt(*suite, "components")) {
    components.addRow({stringAt(component, "role"), stringAt(component, "state"),
                       stringAt(component, "modelName"),
                       formatBytes(bytesAt(component, "chargedBytes")),
                       formatBytes(bytesAt(component, "sizeBytes")),
                       scalarText(memberAt(component, "sharedWith"))});
  }
  session.out() << "\n" << components.render();
  session.out() << fmt::format("\nvalidation: {}/{} checks passed\n", passedCount(checks),
                               checks.size());
  if (!checks.empty()) session.out() << checksTable(checks).render();
  return kExitOk;
}

// POST /api/suites/{id}/{verb} (load, unload), printing the suite it returns.
int changeSuite(CliSession& session, const std::string& suiteId, const std::string& verb) {
  auto suite =
      session.sendJson("POST", "/api/suites/" + percentEncode(suiteId) + "/" + verb, nullptr);
  if (!suite) return session.report(suite.error());
  if (session.jsonOutput()) return session.printJson(*suite);
  session.out() << suiteLine(*suite) << "\n";
  return kExitOk;
}

int deleteSuite(CliSession& session, const std::string& suiteId) {
  auto result = session.sendJson("DELETE", "/api/suites/" + percentEncode(suiteId), nullptr);
  if (!result) return session.report(result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  session.out() << "deleted " << suiteId << "\n";
  return kExitOk;
}

}  // namespace

void addSuiteCommands(CLI::App& app, CommandAction& action) {
  CLI::App* suites = app.add_subcommand("suites", "model suites for image generation");
  suites->alias("suite");
  suites->require_subcommand(1);

  auto importOptions = std::make_shared<ImportOptions>();
  CLI::App* importCommand =
      suites->add_subcommand("import", "import and validate an Optimum SDXL export folder");
  importCommand
      ->add_option("path", importOptions->path, "the base export folder, relative to a model root")
      ->required();
  importCommand->add_option("--name", importOptions->name, "the suite's name")->required();
  importCommand->add_option("--refiner", importOptions->refinerPath, "the refiner export folder");
  importCommand->add_option("--manifest", importOptions->manifestFile,
                            "a JSON manifest file (read here, sent with the request)");
  importCommand->callback([&action, importOptions] {
    action = [importOptions](CliSession& session) { return importSuite(session, *importOptions); };
  });

  suites->add_subcommand("list", "imported suites")->callback([&action] {
    action = [](CliSession& session) { return listSuites(session); };
  });

  auto suiteId = std::make_shared<std::string>();
  const auto withSuite = [&](const char* name, const char* help) {
    CLI::App* command = suites->add_subcommand(name, help);
    command->add_option("suite", *suiteId, "suite name or id")->required();
    return command;
  };
  withSuite("show", "components, memory and every validation check")->callback([&action, suiteId] {
    action = [suiteId](CliSession& session) { return showSuite(session, *suiteId); };
  });
  withSuite("load", "load every component now")->callback([&action, suiteId] {
    action = [suiteId](CliSession& session) { return changeSuite(session, *suiteId, "load"); };
  });
  withSuite("unload", "release the suite's models")->callback([&action, suiteId] {
    action = [suiteId](CliSession& session) { return changeSuite(session, *suiteId, "unload"); };
  });
  withSuite("delete", "forget the suite (its files stay)")->callback([&action, suiteId] {
    action = [suiteId](CliSession& session) { return deleteSuite(session, *suiteId); };
  });
}

}  // namespace deviceops::client
