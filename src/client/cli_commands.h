// Internals of the CLI shared by its command groups (not a public API; see cli.h).
//
// Adding a command group: write `void addXCommands(CLI::App& app, CommandAction& action)` in
// cli_x.cc, declare it here and call it from runCli (cli.cc). Each subcommand's CLI11 callback
// only stores, in `action`, the function to run; runCli runs it once parsing has finished, so
// every global option is known by then.
#pragma once

#include <functional>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/event_stream.h"
#include "client/http_client.h"
#include "common/result.h"

namespace CLI {
class App;
}

namespace deviceops::client {

// What a command needs once the command line is parsed. Not thread-safe.
class CliSession {
 public:
  CliSession(HttpClient client, bool jsonOutput, std::ostream& out, std::ostream& err)
      : client_(std::move(client)), jsonOutput_(jsonOutput), out_(out), err_(err) {}

  // --json: print the server's JSON instead of tables.
  bool jsonOutput() const { return jsonOutput_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  HttpClient& client() { return client_; }

  // GETs target (encoded, from the API root) and parses the JSON body of a 2xx answer.
  // An error answer becomes an Error whose details hold "httpStatus" and the server's "code".
  Result<nlohmann::json> getJson(std::string_view target);
  // Same for any method; a non-null body is sent as JSON.
  Result<nlohmann::json> sendJson(std::string_view method, std::string_view target,
                                  const nlohmann::json& body);

  // Prints "error: <message> (<code>, HTTP <status>)" (or "error: <message>") to err and returns
  // the exit status for it: kExitServerError for an answer, kExitUnreachable for no answer.
  int report(const Error& error);

  // Prints value as indented JSON to out; returns kExitOk.
  int printJson(const nlohmann::json& value);

 private:
  HttpClient client_;
  bool jsonOutput_;
  std::ostream& out_;
  std::ostream& err_;
};

// The command chosen on the command line; returns the exit status.
using CommandAction = std::function<int(CliSession&)>;

// The Error for a non-2xx answer: our {"error": {code, message, details}} or Triton's
// {"error": "message"}; details hold "httpStatus" (and "code", "details" when present).
Error answerError(const HttpResponse& response);

// Follows a job's Server-Sent Events at `target` until "event: end", reconnecting with
// Last-Event-ID (at most 5 times) when the stream breaks off; `onEvent` gets every other event.
// `stopRequested` (may be empty) is asked between pieces and about every 100 ms while the stream
// is quiet: true stops following. Returns true
// when the stream ended, false when stopped. Errors: the first failure to connect, an error
// answer, or kUnavailable with `endedEarly` when the stream keeps breaking off.
Result<bool> followEventStream(CliSession& session, const std::string& target,
                               const std::string& endedEarly,
                               const std::function<void(const ServerSentEvent&)>& onEvent,
                               const std::function<bool()>& stopRequested = {});

// POSTs body (application/octet-stream) to target while a progress bar of the bytes sent
// (cli_progress.h, labelled `label`) is shown on err: redrawn on a terminal, plain lines at most
// once a second otherwise, and nothing for an upload done within a second. Any answer is a
// successful Result, as HttpClient::request.
Result<HttpResponse> postWithProgress(CliSession& session, const std::string& target,
                                      const std::string& body, const std::string& label);

// Command groups, one function each.
void addVersionCommand(CLI::App& app, CommandAction& action, std::string cliVersion);
void addDeviceCommands(CLI::App& app, CommandAction& action);  // devices, device, health
void addMemoryCommands(CLI::App& app, CommandAction& action);  // mem alloc|free|status|list
void addModelCommands(CLI::App& app, CommandAction& action);  // models load|unload|list|show, infer
void addTelemetryCommands(CLI::App& app, CommandAction& action);  // stats, events, available
void addTrainingCommands(CLI::App& app, CommandAction& action);   // train ...
void addSuiteCommands(CLI::App& app, CommandAction& action);      // suites import|list|show|...
// generate "prompt" --suite ..., generation (alias generations) list|show|cancel
void addGenerateCommands(CLI::App& app, CommandAction& action);
void addVaeCommands(CLI::App& app, CommandAction& action);  // vae add|list|compare|select|remove
// test quick|standard|long|health|runs|show|cancel, bench
void addTestingCommands(CLI::App& app, CommandAction& action);
void addTopCommand(CLI::App& app, CommandAction& action);  // top [--once]
// completion bash|zsh (hidden): the scripts of cli_completion.h from `app`'s definition. Call
// it last: it prints what exists when it runs.
void addCompletionCommand(CLI::App& app, CommandAction& action);

// Reading server JSON defensively: a missing key, a null or a value of another type gives the
// empty result, never an exception.
const nlohmann::json& memberAt(const nlohmann::json& object, std::string_view key);
std::string stringAt(const nlohmann::json& object, std::string_view key);  // "" if not a string
std::optional<double> numberAt(const nlohmann::json& object, std::string_view key);
std::optional<std::uint64_t> bytesAt(const nlohmann::json& object, std::string_view key);

// A scalar as text: strings unquoted, null as "", numbers and booleans as JSON writes them, an
// array of scalars joined by ", ", anything else as compact JSON.
std::string scalarText(const nlohmann::json& value);

// A reading or memory value formatted by its key's unit suffix: ...Bytes -> "16.0 GiB",
// ...Ratio -> "37%", ...Celsius -> "62 °C", ...Watts -> "250.0 W", ...Mhz -> "1410 MHz";
// others as scalarText.
std::string formatByKey(std::string_view key, const nlohmann::json& value);

// Appends one "prefix.key.sub" entry per scalar leaf of value (arrays of scalars are one entry,
// other arrays use "prefix[i]"). Leaf values are rendered with scalarText, or with formatByKey
// when formatUnits is true.
void flattenJson(const std::string& prefix, const nlohmann::json& value,
                 std::vector<std::pair<std::string, std::string>>& entries,
                 bool formatUnits = false);

}  // namespace deviceops::client
