#include "client/cli.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <ostream>

#include "client/cli_commands.h"
#include "client/table.h"

namespace deviceops::client {
namespace {

constexpr std::size_t kMaxQuotedBodyChars = 200;

bool endsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// The first line of a non-JSON error body, shortened, for the message.
std::string bodySnippet(std::string_view body) {
  std::string_view line = body.substr(0, body.find_first_of("\r\n"));
  return truncateToWidth(line, kMaxQuotedBodyChars);
}

int showVersion(CliSession& session, const std::string& cliVersion) {
  if (!session.jsonOutput()) session.out() << "deviceops " << cliVersion << "\n";
  auto version = session.getJson("/api/version");
  if (!version) return session.report(version.error());
  if (session.jsonOutput()) return session.printJson(*version);
  std::vector<std::pair<std::string, std::string>> entries = {
      {"server", fmt::format("{} {}", stringAt(*version, "name"), stringAt(*version, "version"))}};
  if (version->is_object()) {
    for (const auto& [key, value] : version->items()) {
      if (key != "name" && key != "version") entries.emplace_back(key, scalarText(value));
    }
  }
  session.out() << renderKeyValues(entries);
  return kExitOk;
}

}  // namespace

Error answerError(const HttpResponse& response) {
  nlohmann::json details = {{"httpStatus", response.status}};
  const auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  const nlohmann::json& error = memberAt(body, "error");
  if (error.is_object() && !stringAt(error, "message").empty()) {
    details["code"] = stringAt(error, "code");
    details["details"] = memberAt(error, "details");
    return makeError(ErrorCode::kInternal, stringAt(error, "message"), std::move(details));
  }
  if (error.is_string() && !error.get<std::string>().empty()) {  // Triton's {"error": "..."}
    return makeError(ErrorCode::kInternal, error.get<std::string>(), std::move(details));
  }
  std::string message =
      response.body.empty() ? "the answer has no error body" : bodySnippet(response.body);
  return makeError(ErrorCode::kInternal, std::move(message), std::move(details));
}

Result<nlohmann::json> CliSession::getJson(std::string_view target) {
  return sendJson("GET", target, nullptr);
}

Result<nlohmann::json> CliSession::sendJson(std::string_view method, std::string_view target,
                                            const nlohmann::json& requestBody) {
  auto response = method == "GET"
                      ? client_.get(target)
                      : client_.request(method, target,
                                        requestBody.is_null() ? std::string() : requestBody.dump());
  if (!response) return response.error();
  if (response->status < 200 || response->status >= 300) return answerError(*response);
  auto body = nlohmann::json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) {
    return makeError(ErrorCode::kInternal,
                     fmt::format("the answer to {} {} is not JSON: {}", method, target,
                                 bodySnippet(response->body)));
  }
  return body;
}

int CliSession::report(const Error& error) {
  const nlohmann::json& status = memberAt(error.details, "httpStatus");
  if (status.is_number_integer()) {
    const std::string code = stringAt(error.details, "code");
    if (code.empty()) {
      err_ << fmt::format("error: {} (HTTP {})\n", error.message, status.get<int>());
    } else {
      err_ << fmt::format("error: {} ({}, HTTP {})\n", error.message, code, status.get<int>());
    }
    return kExitServerError;
  }
  err_ << "error: " << error.message << "\n";
  const bool noAnswer =
      error.code == ErrorCode::kUnavailable || error.code == ErrorCode::kDeadlineExceeded;
  return noAnswer ? kExitUnreachable : kExitServerError;
}

int CliSession::printJson(const nlohmann::json& value) {
  out_ << value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return kExitOk;
}

const nlohmann::json& memberAt(const nlohmann::json& object, std::string_view key) {
  static const nlohmann::json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string stringAt(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json& value = memberAt(object, key);
  return value.is_string() ? value.get<std::string>() : std::string();
}

std::optional<double> numberAt(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json& value = memberAt(object, key);
  if (!value.is_number()) return std::nullopt;
  return value.get<double>();
}

std::optional<std::uint64_t> bytesAt(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json& value = memberAt(object, key);
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(value.get<std::int64_t>());
  }
  if (value.is_number_float() && value.get<double>() >= 0 && std::isfinite(value.get<double>())) {
    return static_cast<std::uint64_t>(value.get<double>());
  }
  return std::nullopt;
}

std::string scalarText(const nlohmann::json& value) {
  if (value.is_null()) return "";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array() && std::none_of(value.begin(), value.end(), [](const nlohmann::json& item) {
        return item.is_structured();
      })) {
    std::string joined;
    for (const auto& item : value) {
      if (!joined.empty()) joined += ", ";
      joined += scalarText(item);
    }
    return joined;
  }
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string formatByKey(std::string_view key, const nlohmann::json& value) {
  if (!value.is_number()) return scalarText(value);
  const double number = value.get<double>();
  if (endsWith(key, "Bytes") && number >= 0) {
    return formatBytes(static_cast<std::uint64_t>(number));
  }
  if (endsWith(key, "Ratio")) return formatRatio(number);
  if (endsWith(key, "Celsius")) return formatCelsius(number);
  if (endsWith(key, "Watts")) return fmt::format("{:.1f} W", number);
  if (endsWith(key, "Mhz") || endsWith(key, "MHz")) return fmt::format("{:.0f} MHz", number);
  return scalarText(value);
}

void flattenJson(const std::string& prefix, const nlohmann::json& value,
                 std::vector<std::pair<std::string, std::string>>& entries, bool formatUnits) {
  if (value.is_object() && !value.empty()) {
    for (const auto& [key, member] : value.items()) {
      flattenJson(prefix.empty() ? key : prefix + "." + key, member, entries, formatUnits);
    }
    return;
  }
  if (value.is_array() && std::any_of(value.begin(), value.end(), [](const nlohmann::json& item) {
        return item.is_structured();
      })) {
    for (std::size_t index = 0; index < value.size(); ++index) {
      flattenJson(fmt::format("{}[{}]", prefix, index), value[index], entries, formatUnits);
    }
    return;
  }
  const std::string_view key = std::string_view(prefix).substr(prefix.rfind('.') + 1);
  entries.emplace_back(prefix, formatUnits ? formatByKey(key, value) : scalarText(value));
}

void addVersionCommand(CLI::App& app, CommandAction& action, std::string cliVersion) {
  auto* command = app.add_subcommand("version", "Show the versions of this client and the server");
  command->callback([&action, cliVersion = std::move(cliVersion)] {
    action = [cliVersion](CliSession& session) { return showVersion(session, cliVersion); };
  });
}

int runCli(int argc, char** argv, std::ostream& out, std::ostream& err,
           std::string_view cliVersion) {
  CLI::App app{"deviceops: command-line client of the deviceopsd REST API", "deviceops"};
  std::string url(kDefaultUrl);
  std::string token;
  bool json = false;
  double timeoutSeconds = 30;
  app.add_option("--url", url, "Server URL, http://host:port")
      ->envname("DEVICEOPS_URL")
      ->capture_default_str();
  app.add_option("--token", token, "Bearer token sent with every request")
      ->envname("DEVICEOPS_TOKEN");
  app.add_flag("--json", json, "Print the server's JSON instead of a table");
  app.add_option("--timeout", timeoutSeconds, "Seconds to wait for each answer")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.require_subcommand(1);
  app.fallthrough();  // global options are accepted after the command name too

  CommandAction action;
  addVersionCommand(app, action, std::string(cliVersion));
  addDeviceCommands(app, action);
  addMemoryCommands(app, action);
  addModelCommands(app, action);
  addTelemetryCommands(app, action);
  addTrainingCommands(app, action);
  addSuiteCommands(app, action);
  addGenerateCommands(app, action);
  addVaeCommands(app, action);
  addTestingCommands(app, action);
  addTopCommand(app, action);
  addCompletionCommand(app, action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error, out, err) == 0 ? kExitOk : kExitUsage;
  }

  auto endpoint = parseUrl(url);
  if (!endpoint) {
    err << "error: --url: " << endpoint.error().message << "\n";
    return kExitUsage;
  }
  const auto timeout = std::chrono::milliseconds(
      std::max<long long>(1, std::llround(std::min(timeoutSeconds, 1e9) * 1000.0)));
  HttpClient client(std::move(*endpoint), timeout);
  client.setBearerToken(token);
  CliSession session(std::move(client), json, out, err);
  if (!action) return kExitUsage;  // unreachable: require_subcommand(1) guarantees a command
  try {
    return action(session);
  } catch (const std::exception& exception) {
    // Only an answer of an unexpected shape gets here (nlohmann::json type errors).
    err << "error: unexpected answer from the server: " << exception.what() << "\n";
    return kExitServerError;
  }
}

}  // namespace deviceops::client
