// deviceops test quick|standard|long: end-to-end self-tests (POST /api/testing/end-to-end);
// deviceops bench: performance benchmarks (POST /api/testing/performance-benchmark). Both follow
// the run's Server-Sent Events (GET /api/testing/runs/{id}/events) with a progress line on
// stderr, then print the results. deviceops test health|runs|show|cancel: the rest of
// /api/testing.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cmath>
#include <csignal>
#include <iostream>
#include <memory>

#include "client/cli.h"
#include "client/cli_commands.h"
#include "client/cli_progress.h"
#include "client/event_stream.h"
#include "client/table.h"
#include "common/byte_size.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;

// Exit statuses of the test and bench commands; kExitUsage (2) and kExitUnreachable (3) as
// everywhere else. The server's error answers get their own status here, so that a script can
// tell "the devices failed" (1) from "the request failed".
constexpr int kExitRunFailed = 1;      // the run's verdict is fail (health: status fail)
constexpr int kExitAnswerError = 4;    // an error answer: 400, 404, 409 (device busy), 503...
constexpr int kExitNoVerdict = 5;      // the run was cancelled, or failed itself, without a fail
constexpr int kExitInterrupted = 130;  // Ctrl-C while following: the run was cancelled
static_assert(kExitUsage == 2 && kExitUnreachable == 3, "the --help footer names 2 and 3");

constexpr std::string_view kExitStatusHelp =
    "Exit status: 0 pass or warn, 1 fail, 2 usage error, 3 server unreachable, 4 error answer\n"
    "(400, 404, 409 device busy, 503), 5 run cancelled or failed without a verdict,\n"
    "130 interrupted by Ctrl-C (the run is cancelled).";

struct EndToEndOptions {
  std::string level, memory, suite;
  std::vector<std::string> devices;
  bool force = false;
  bool follow = true;
};

struct BenchmarkOptions {
  std::vector<std::string> tests, devices;
  int durationSeconds = 0;
  bool follow = true;
  CLI::Option* durationOption = nullptr;  // set while parsing; read by the action
};

struct RunsOptions {
  std::string kind, device;
  int limit = 0;
};

std::string runTarget(const std::string& runId) {
  return "/api/testing/runs/" + percentEncode(runId);
}

// session.report, with the error answers of these commands on their own exit status. A 409 for
// a busy device names the run that holds it.
int reportError(CliSession& session, const Error& error) {
  const int status = session.report(error);
  const std::string holder = stringAt(memberAt(error.details, "details"), "runId");
  if (!holder.empty()) session.err() << fmt::format("see: deviceops test show {}\n", holder);
  return status == kExitServerError ? kExitAnswerError : status;
}

// ---- Formatting figures ----------------------------------------------------------------------

// 1.23e10 -> "12.3 GB/s": decimal prefixes, one decimal below 100, none from 100 up.
std::string decimalText(double value, std::string_view unit) {
  static constexpr std::array<std::string_view, 6> kPrefixes = {"", "k", "M", "G", "T", "P"};
  std::size_t prefix = 0;
  while (std::abs(value) >= 999.95 && prefix + 1 < kPrefixes.size()) {
    value /= 1000;
    ++prefix;
  }
  const bool whole = prefix == 0 && value == std::floor(value);
  const int decimals = whole || std::abs(value) >= 100 ? 0 : 1;
  return fmt::format("{:.{}f} {}{}", value, decimals, kPrefixes[prefix], unit);
}

// A figure's value in its unit: rates and FLOP/s with decimal prefixes, "B" in binary units as
// everywhere in the CLI, seconds as "850 ms" / "1.25 s", anything else with 4 significant digits.
std::string quantityText(std::optional<double> value, std::string_view unit) {
  if (!value || !std::isfinite(*value)) return std::string(kAbsent);
  if (unit == "B/s" || unit == "FLOP/s") return decimalText(*value, unit);
  if (unit == "B" && *value >= 0) return formatBytes(static_cast<std::uint64_t>(*value));
  if (unit == "s") {
    return *value < 1 ? fmt::format("{:.3g} ms", *value * 1000) : fmt::format("{:.3g} s", *value);
  }
  return unit.empty() ? fmt::format("{:.4g}", *value) : fmt::format("{:.4g} {}", *value, unit);
}

// "REGRESSED -14%" when the figure regressed; the change against the baseline median otherwise
// ("no (+3%)"); kAbsent without a baseline.
std::string regressionText(const Json& figure) {
  const auto value = numberAt(figure, "value");
  const auto median = numberAt(figure, "baselineMedian");
  const bool regressed = memberAt(figure, "regression") == true;
  if (!value || !median || *median == 0) return regressed ? "REGRESSED" : std::string(kAbsent);
  const std::string change = fmt::format("{:+.0f}%", (*value - *median) / *median * 100);
  return regressed ? "REGRESSED " + change : "no (" + change + ")";
}

// "12.3 GB/s (81% of peak)", ", REGRESSED -14%" appended when it regressed.
std::string figureText(const Json& figure) {
  std::string text = quantityText(numberAt(figure, "value"), stringAt(figure, "unit"));
  if (const auto ratio = numberAt(figure, "ratio")) {
    text += fmt::format(" ({} of peak)", formatRatio(ratio));
  }
  if (memberAt(figure, "regression") == true) text += ", " + regressionText(figure);
  return text;
}

// pass and skip in lower case, WARN and FAIL in upper case so that they stand out.
std::string statusText(const std::string& status) {
  if (status == "warn" || status == "fail") {
    std::string upper = status;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return upper;
  }
  return status;
}

std::string durationText(std::optional<double> milliseconds) {
  if (!milliseconds || !std::isfinite(*milliseconds)) return std::string(kAbsent);
  if (*milliseconds < 1000) return fmt::format("{:.0f} ms", *milliseconds);
  return fmt::format("{:.1f} s", *milliseconds / 1000);
}

// The figures ("bandwidth 12.3 GB/s, latency 3.2 ms": names only when there are several), then
// the reason unless the test passed with figures to show.
std::string detailText(const Json& result) {
  const Json& figures = memberAt(result, "figures");
  std::string text;
  if (figures.is_array()) {
    for (const Json& figure : figures) {
      if (!text.empty()) text += ", ";
      if (figures.size() > 1) text += stringAt(figure, "name") + " ";
      text += figureText(figure);
    }
  }
  const std::string reason = stringAt(result, "reason");
  if (!reason.empty() && (text.empty() || stringAt(result, "status") != "pass")) {
    text += text.empty() ? reason : "; " + reason;
  }
  return text;
}

// "pass 12, warn 1, fail 0, skip 2", from the run's summary or, without one, its results.
std::string summaryText(const Json& run) {
  static constexpr std::array<std::string_view, 4> kOutcomes = {"pass", "warn", "fail", "skip"};
  const Json& summary = memberAt(run, "summary");
  std::string text;
  for (const std::string_view outcome : kOutcomes) {
    std::size_t count = 0;
    if (const auto given = numberAt(summary, outcome)) {
      count = static_cast<std::size_t>(std::max(0.0, *given));
    } else if (memberAt(run, "results").is_array()) {
      for (const Json& result : memberAt(run, "results")) {
        count += stringAt(result, "status") == outcome ? 1 : 0;
      }
    }
    text += fmt::format("{}{} {}", text.empty() ? "" : ", ", outcome, count);
  }
  return text;
}

std::string endToEndTable(const Json& results) {
  Table table(
      {{"DEVICE"}, {"TEST"}, {"STATUS"}, {"TIME", Align::kRight}, {"DETAIL", Align::kLeft, 100}});
  for (const Json& result : results) {
    table.addRow({stringAt(result, "deviceId"), stringAt(result, "test"),
                  statusText(stringAt(result, "status")),
                  durationText(numberAt(result, "durationMs")), detailText(result)});
  }
  return table.render();
}

// One row per figure ("matmul (latency)" when a test has several); a result without figures
// shows its status and reason as its RESULT.
std::string benchmarkTable(const Json& results) {
  Table table({{"DEVICE"},
               {"TEST"},
               {"RESULT", Align::kLeft, 60},
               {"PEAK", Align::kRight},
               {"RATIO", Align::kRight},
               {"BASELINE", Align::kRight},
               {"REGRESSION"}});
  for (const Json& result : results) {
    const std::string device = stringAt(result, "deviceId");
    const std::string test = stringAt(result, "test");
    const std::string status = stringAt(result, "status");
    const Json& figures = memberAt(result, "figures");
    if (!figures.is_array() || figures.empty()) {
      const std::string reason = stringAt(result, "reason");
      table.addRow(
          {device, test, reason.empty() ? statusText(status) : statusText(status) + ": " + reason});
      continue;
    }
    for (const Json& figure : figures) {
      const std::string unit = stringAt(figure, "unit");
      std::string value = quantityText(numberAt(figure, "value"), unit);
      if (status != "pass") value += " (" + statusText(status) + ")";
      std::string baseline(kAbsent);
      if (const auto median = numberAt(figure, "baselineMedian")) {
        baseline = fmt::format("{} ({} runs)", quantityText(median, unit),
                               scalarText(memberAt(figure, "baselineRuns")));
      }
      const std::string name =
          figures.size() > 1 ? test + " (" + stringAt(figure, "name") + ")" : test;
      table.addRow({device, name, value, quantityText(numberAt(figure, "peak"), unit),
                    formatRatio(numberAt(figure, "ratio")), baseline, regressionText(figure)});
    }
  }
  return table.render();
}

// The results table for the run's kind, then the summary line.
std::string resultsText(const Json& run) {
  const Json& results = memberAt(run, "results");
  std::string text;
  if (results.is_array() && !results.empty()) {
    text = stringAt(run, "kind") == "performance-benchmark" ? benchmarkTable(results)
                                                            : endToEndTable(results);
  } else {
    text = "no results\n";
  }
  return text + summaryText(run) + "\n";
}

// The exit status for a finished run, after saying on err why it has no verdict or failed.
int verdictExit(CliSession& session, const Json& run) {
  const std::string id = stringAt(run, "id");
  const std::string state = stringAt(run, "state");
  const std::string status = stringAt(run, "status");
  const std::string error = stringAt(run, "error");
  if (!error.empty()) session.err() << fmt::format("error: run {} {}: {}\n", id, state, error);
  if (status == "fail") return kExitRunFailed;
  if (state == "completed" && (status == "pass" || status == "warn")) return kExitOk;
  if (error.empty()) {
    session.err() << fmt::format("error: run {} {} without a verdict\n", id, state);
  }
  return kExitNoVerdict;
}

// ---- Following a run ---------------------------------------------------------------------------

// Set by SIGINT while a run is followed. Lock-free, so the signal handler may store into it.
std::atomic<bool> gInterrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void onInterrupt(int) {
  gInterrupted.store(true);
  static constexpr char kMessage[] =
      "\ncancelling the run at its next event (Ctrl-C again quits without cancelling)\n";
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
}

// Catches the first SIGINT while it lives (the handler resets itself, so a second one ends the
// process as usual) and restores the previous handler when it goes. The event stream blocks
// until its next piece, so the interruption is seen at the run's next event or keep-alive.
// Process-wide, like runCli's reading of the environment: one follower at a time.
class InterruptCatcher {
 public:
  InterruptCatcher() {
    gInterrupted.store(false);
    struct sigaction action {};
    action.sa_handler = onInterrupt;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    installed_ = ::sigaction(SIGINT, &action, &previous_) == 0;
  }
  ~InterruptCatcher() {
    if (installed_) ::sigaction(SIGINT, &previous_, nullptr);
  }
  InterruptCatcher(const InterruptCatcher&) = delete;
  InterruptCatcher& operator=(const InterruptCatcher&) = delete;

  bool interrupted() const { return gInterrupted.load(); }

 private:
  struct sigaction previous_ {};
  bool installed_ = false;
};

// Shows a run's progress from its events as one ProgressBar (cli_progress.h):
// " 42% cpu0 memory.movingInversions" after the bar on a terminal, redrawn in place; otherwise
// one line per step as it starts. Warnings and failures are printed on lines of their own as
// their results arrive.
class ProgressDisplay {
 public:
  explicit ProgressDisplay(std::ostream& err)
      : terminal_(isTerminal(err)), bar_(err, fractionState(), displayOptions(err)) {}

  void onEvent(const ServerSentEvent& event) {
    const Json data = Json::parse(event.data, nullptr, /*allow_exceptions=*/false);
    if (event.type == "snapshot") {
      update(memberAt(data, "progress"));
    } else if (event.type == "progress") {
      update(data);
    } else if (event.type == "result") {
      const std::string status = stringAt(data, "status");
      if (status != "warn" && status != "fail") return;
      bar_.note(fmt::format("{} {} {}: {}", statusText(status), stringAt(data, "deviceId"),
                            stringAt(data, "test"), stringAt(data, "reason")));
    }
  }

  // Ends the display (the terminal's line gets its newline). Idempotent.
  void finish() { bar_.finish(/*onlyIfShown=*/true); }

 private:
  static constexpr std::uint64_t kFractionUnits = 1000;

  // The run's progress is a fraction: done/total in thousandths, shown as a percentage only.
  static ProgressState fractionState() {
    ProgressState state = makeProgressState("", kFractionUnits);
    state.showCount = false;
    return state;
  }

  static ProgressBar::Options displayOptions(const std::ostream& err) {
    ProgressBar::Options options = ProgressBar::optionsFor(err);
    options.ownRate = false;  // tests take very different times: no ETA from their pace
    options.plainInterval = std::chrono::hours(24);  // plain lines per step only
    return options;
  }

  void update(const Json& progress) {
    if (!progress.is_object()) return;
    fraction_ = std::clamp(numberAt(progress, "fraction").value_or(fraction_), 0.0, 1.0);
    std::string device = stringAt(progress, "deviceId");
    std::string step = stringAt(progress, "step");
    const bool changed = device != device_ || step != step_;
    device_ = std::move(device);
    step_ = std::move(step);
    std::string detail = device_;
    if (!step_.empty()) detail += (detail.empty() ? "" : " ") + step_;
    bar_.state().detail = std::move(detail);
    const auto done = static_cast<std::uint64_t>(std::lround(fraction_ * kFractionUnits));
    if (changed && !step_.empty() && !terminal_) {
      bar_.state().done = done;
      bar_.printLine();
    } else {
      bar_.update(done);
    }
  }

  const bool terminal_;
  ProgressBar bar_;
  double fraction_ = 0;
  std::string device_, step_;
};

enum class FollowEnd { kEnded, kInterrupted };

// Follows the run's events until the stream ends or Ctrl-C (followEventStream).
Result<FollowEnd> followEvents(CliSession& session, const std::string& runId,
                               ProgressDisplay& display, const InterruptCatcher& interrupt) {
  ASSIGN_OR_RETURN(const bool ended,
                   followEventStream(
                       session, runTarget(runId) + "/events",
                       fmt::format("the event stream of {} ended before the run did", runId),
                       [&display](const ServerSentEvent& event) { display.onEvent(event); },
                       [&interrupt] { return interrupt.interrupted(); }));
  return ended ? FollowEnd::kEnded : FollowEnd::kInterrupted;
}

// Submits a run (POST target with body) and, unless follow is false, follows it to its end and
// prints its results; the exit status is the run's verdict.
int submitAndFollow(CliSession& session, std::string_view target, const Json& body, bool follow) {
  auto submitted = session.sendJson("POST", target, body);
  if (!submitted) return reportError(session, submitted.error());
  const std::string runId = stringAt(*submitted, "id");
  if (!follow) {
    if (session.jsonOutput()) return session.printJson(*submitted);
    session.out() << fmt::format("{} {}\n", runId, stringAt(*submitted, "state"));
    return kExitOk;
  }
  ProgressDisplay display(session.err());
  const Result<FollowEnd> followed = [&] {
    const InterruptCatcher interrupt;  // only while following
    return followEvents(session, runId, display, interrupt);
  }();
  display.finish();
  if (!followed) return reportError(session, followed.error());
  if (*followed == FollowEnd::kInterrupted) {
    auto cancelled = session.sendJson("POST", runTarget(runId) + "/cancel", nullptr);
    if (!cancelled) {
      reportError(session, cancelled.error());
    } else {
      session.err() << fmt::format("{} {}\n", runId, stringAt(*cancelled, "state"));
    }
    return kExitInterrupted;
  }
  auto run = session.getJson(runTarget(runId));
  if (!run) return reportError(session, run.error());
  if (session.jsonOutput()) {
    session.printJson(*run);
  } else {
    session.out() << resultsText(*run);
  }
  return verdictExit(session, *run);
}

// ---- The commands ------------------------------------------------------------------------------

int runEndToEnd(CliSession& session, const EndToEndOptions& options) {
  Json body = {{"level", options.level}, {"force", options.force}};
  if (!options.devices.empty()) body["devices"] = options.devices;
  if (!options.memory.empty()) {
    auto bytes = parseByteSize(options.memory);  // checked while parsing: cannot fail here
    if (!bytes) return session.report(bytes.error());
    body["memoryBytes"] = *bytes;
  }
  if (!options.suite.empty()) body["suite"] = options.suite;
  return submitAndFollow(session, "/api/testing/end-to-end", body, options.follow);
}

int runBenchmark(CliSession& session, const BenchmarkOptions& options) {
  Json body = Json::object();
  if (!options.tests.empty()) body["tests"] = options.tests;
  if (!options.devices.empty()) body["devices"] = options.devices;
  if (options.durationOption != nullptr && options.durationOption->count() > 0) {
    body["durationSeconds"] = options.durationSeconds;
  }
  return submitAndFollow(session, "/api/testing/performance-benchmark", body, options.follow);
}

int showHealth(CliSession& session) {
  auto health = session.getJson("/api/testing/device-health");
  if (!health) return reportError(session, health.error());
  const std::string status = stringAt(*health, "status");
  if (session.jsonOutput()) {
    session.printJson(*health);
  } else {
    Table table({{"DEVICE"}, {"CHECK"}, {"STATUS"}, {"REASON", Align::kLeft, 100}});
    const Json& devices = memberAt(*health, "devices");
    for (const Json& device : devices.is_array() ? devices : Json::array()) {
      const Json& checks = memberAt(device, "checks");
      for (const Json& check : checks.is_array() ? checks : Json::array()) {
        table.addRow({stringAt(device, "deviceId"), stringAt(check, "name"),
                      statusText(stringAt(check, "status")), stringAt(check, "reason")});
      }
    }
    session.out() << (table.rowCount() > 0 ? table.render() : "no devices\n");
    const Json& backends = memberAt(*health, "backends");
    for (const Json& backend : backends.is_array() ? backends : Json::array()) {
      const std::string backendStatus = stringAt(backend, "status");
      if (memberAt(backend, "available") != false && backendStatus == "pass") continue;
      const std::string reason = stringAt(backend, "reason");
      session.out() << fmt::format(
          "backend {}: {}{}\n", stringAt(backend, "name"),
          memberAt(backend, "available") == false ? "unavailable" : statusText(backendStatus),
          reason.empty() ? "" : " (" + reason + ")");
    }
    session.out() << fmt::format("status: {} (checked in {})\n", statusText(status),
                                 durationText(numberAt(*health, "durationMs")));
  }
  return status == "fail" ? kExitRunFailed : kExitOk;
}

int listRuns(CliSession& session, const RunsOptions& options) {
  std::string query;
  const auto addParameter = [&query](std::string_view name, const std::string& value) {
    query += fmt::format("{}{}={}", query.empty() ? "?" : "&", name, percentEncode(value));
  };
  if (!options.kind.empty()) addParameter("kind", options.kind);
  if (!options.device.empty()) addParameter("deviceId", options.device);
  if (options.limit > 0) addParameter("limit", std::to_string(options.limit));
  auto result = session.getJson("/api/testing/runs" + query);
  if (!result) return reportError(session, result.error());
  if (session.jsonOutput()) return session.printJson(*result);
  const Json& runs = memberAt(*result, "runs");
  if (!runs.is_array() || runs.empty()) {
    session.out() << "no runs\n";
    return kExitOk;
  }
  Table table({{"ID"},
               {"KIND"},
               {"LEVEL"},
               {"STATE"},
               {"STATUS"},
               {"DEVICES"},
               {"PASS", Align::kRight},
               {"WARN", Align::kRight},
               {"FAIL", Align::kRight},
               {"SKIP", Align::kRight},
               {"CREATED"}});
  for (const Json& run : runs) {
    const Json& summary = memberAt(run, "summary");
    table.addRow({stringAt(run, "id"), stringAt(run, "kind"), stringAt(run, "level"),
                  stringAt(run, "state"), statusText(stringAt(run, "status")),
                  scalarText(memberAt(run, "devices")), scalarText(memberAt(summary, "pass")),
                  scalarText(memberAt(summary, "warn")), scalarText(memberAt(summary, "fail")),
                  scalarText(memberAt(summary, "skip")), stringAt(run, "createdAt")});
  }
  session.out() << table.render();
  return kExitOk;
}

int showRun(CliSession& session, const std::string& runId) {
  auto run = session.getJson(runTarget(runId));
  if (!run) return reportError(session, run.error());
  if (session.jsonOutput()) return session.printJson(*run);
  const Json& progress = memberAt(*run, "progress");
  std::string progressLine(kAbsent);
  if (const auto fraction = numberAt(progress, "fraction")) {
    progressLine = fmt::format("{} {} {}", formatRatio(fraction), stringAt(progress, "deviceId"),
                               stringAt(progress, "step"));
    while (progressLine.back() == ' ') progressLine.pop_back();
  }
  session.out() << renderKeyValues({
      {"id", stringAt(*run, "id")},
      {"kind", stringAt(*run, "kind")},
      {"level", stringAt(*run, "level")},
      {"state", stringAt(*run, "state")},
      {"status", statusText(stringAt(*run, "status"))},
      {"devices", scalarText(memberAt(*run, "devices"))},
      {"progress", progressLine},
      {"created", stringAt(*run, "createdAt")},
      {"started", stringAt(*run, "startedAt")},
      {"finished", stringAt(*run, "finishedAt")},
      {"error", stringAt(*run, "error")},
  });
  session.out() << "\n" << resultsText(*run);
  return kExitOk;
}

int cancelRun(CliSession& session, const std::string& runId) {
  auto run = session.sendJson("POST", runTarget(runId) + "/cancel", nullptr);
  if (!run) return reportError(session, run.error());
  if (session.jsonOutput()) return session.printJson(*run);
  session.out() << fmt::format("{} {}\n", stringAt(*run, "id"), stringAt(*run, "state"));
  return kExitOk;
}

// --memory: a byte size as parseByteSize reads it, checked before anything is sent.
CLI::Validator byteSizeValidator() {
  return CLI::Validator(
      [](std::string& text) {
        auto bytes = parseByteSize(text);
        return bytes ? std::string() : bytes.error().message;
      },
      "SIZE");
}

void addLevelCommand(CLI::App& test, CommandAction& action, const char* level,
                     const char* description) {
  auto options = std::make_shared<EndToEndOptions>();
  options->level = level;
  CLI::App* command = test.add_subcommand(level, description);
  command->footer(std::string(kExitStatusHelp));
  command
      ->add_option("--device", options->devices,
                   "device id; repeat or comma-separate "
                   "(default: every usable device)")
      ->delimiter(',');
  command->add_flag("--force", options->force, "run long tests on a busy device");
  command
      ->add_option("--memory", options->memory,
                   "cap on pattern-test memory per device (bytes, 512MiB, 2GB)")
      ->check(byteSizeValidator());
  command->add_option("--suite", options->suite, "model suite for the generation step");
  command->add_flag("--follow,!--no-follow", options->follow,
                    "follow progress and print the results (default), or only submit");
  command->callback([&action, options] {
    action = [options](CliSession& session) { return runEndToEnd(session, *options); };
  });
}

}  // namespace

void addTestingCommands(CLI::App& app, CommandAction& action) {
  CLI::App* test =
      app.add_subcommand("test", "self-tests: end-to-end runs by level, device health, past runs");
  test->require_subcommand(1);
  test->footer(std::string(kExitStatusHelp));
  addLevelCommand(*test, action, "quick", "deployment checks (about 10 s)");
  addLevelCommand(*test, action, "standard",
                  "quick + memory patterns, bandwidth, training (about 2 min)");
  addLevelCommand(*test, action, "long",
                  "memory patterns over most free memory and a sustained load (about 15 min)");

  test->add_subcommand("health", "non-intrusive checks of every device (seconds); exit 1 on fail")
      ->callback([&action] { action = [](CliSession& session) { return showHealth(session); }; });

  auto runsOptions = std::make_shared<RunsOptions>();
  CLI::App* runs = test->add_subcommand("runs", "past and current runs, newest first");
  runs->add_option("--kind", runsOptions->kind, "end-to-end | performance-benchmark")
      ->check(CLI::IsMember({"end-to-end", "performance-benchmark"}));
  runs->add_option("--device", runsOptions->device, "only runs on this device");
  runs->add_option("--limit", runsOptions->limit, "at most this many runs")
      ->check(CLI::PositiveNumber);
  runs->callback([&action, runsOptions] {
    action = [runsOptions](CliSession& session) { return listRuns(session, *runsOptions); };
  });

  auto runId = std::make_shared<std::string>();
  const auto withRun = [&](const char* name, const char* help) {
    CLI::App* sub = test->add_subcommand(name, help);
    sub->add_option("run", *runId, "run id")->required();
    return sub;
  };
  withRun("show", "one run: state, progress, results")->callback([&action, runId] {
    action = [runId](CliSession& session) { return showRun(session, *runId); };
  });
  withRun("cancel", "cancel a queued or running run")->callback([&action, runId] {
    action = [runId](CliSession& session) { return cancelRun(session, *runId); };
  });

  auto bench = std::make_shared<BenchmarkOptions>();
  CLI::App* command = app.add_subcommand(
      "bench", "performance benchmarks: transfers, matmul, allocation, inference");
  command->footer(std::string(kExitStatusHelp));
  command
      ->add_option("--test", bench->tests,
                   "hostToDevice | deviceToHost | deviceToDevice | matmul | allocation | "
                   "inference; repeat or comma-separate (default: all)")
      ->delimiter(',');
  command->add_option("--device", bench->devices, "device id; repeat or comma-separate")
      ->delimiter(',');
  bench->durationOption = command
                              ->add_option("--duration", bench->durationSeconds,
                                           "seconds per test per device, 1..600 (server default 5)")
                              ->check(CLI::Range(1, 600));
  command->add_flag("--follow,!--no-follow", bench->follow,
                    "follow progress and print the results (default), or only submit");
  command->callback([&action, bench] {
    action = [bench](CliSession& session) { return runBenchmark(session, *bench); };
  });
}

}  // namespace deviceops::client
