// deviceops top: an nvtop-like live view of devices, the memory ledger, jobs and events.
//
// Snapshots come over REST at start (and after a `reset` or a reconnect); GET /api/stream keeps
// them live. On a terminal the frame is redrawn on the alternate screen with stdin in raw mode;
// `q` or Ctrl-C quits and the terminal is restored on every way out (TerminalScreen's
// destructor). `--once`, or stdout that is not a terminal, prints one frame and exits.
#include <fmt/format.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

#include "client/cli.h"
#include "client/cli_commands.h"
#include "client/cli_progress.h"
#include "client/top_view.h"

namespace deviceops::client {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kMinRedrawInterval = std::chrono::milliseconds(200);
constexpr auto kReconnectDelay = std::chrono::seconds(1);
constexpr auto kStreamIdleTimeout = std::chrono::seconds(60);  // keep-alives come every 15 s

// Rows of the terminal behind out (TIOCGWINSZ); 0 (no limit) when unknown.
std::size_t terminalRows(const std::ostream& out) {
  const int descriptor = &out == &std::cout ? STDOUT_FILENO : STDERR_FILENO;
  winsize size{};
  if (::ioctl(descriptor, TIOCGWINSZ, &size) == 0 && size.ws_row > 0) return size.ws_row;
  return 0;
}

std::atomic<bool> gQuit{false};
std::atomic<bool> gResized{false};

extern "C" void onQuitSignal(int) { gQuit.store(true); }
extern "C" void onResizeSignal(int) { gResized.store(true); }

// Raw stdin (no echo, no line buffering; Ctrl-C still signals) and the alternate screen for as
// long as it lives; SIGINT/SIGTERM set gQuit, SIGWINCH gResized. Restores everything it changed.
class TerminalScreen {
 public:
  explicit TerminalScreen(std::ostream& out) : out_(out) {
    struct sigaction action {};
    sigemptyset(&action.sa_mask);
    action.sa_handler = onQuitSignal;
    ::sigaction(SIGINT, &action, &previousInt_);
    ::sigaction(SIGTERM, &action, &previousTerm_);
    action.sa_handler = onResizeSignal;
    ::sigaction(SIGWINCH, &action, &previousWinch_);
    if (::isatty(STDIN_FILENO) == 1 && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      rawMode_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    out_ << "\x1b[?1049h\x1b[?25l" << std::flush;  // alternate screen, hide the cursor
  }
  ~TerminalScreen() {
    out_ << "\x1b[?25h\x1b[?1049l" << std::flush;
    if (rawMode_) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    ::sigaction(SIGINT, &previousInt_, nullptr);
    ::sigaction(SIGTERM, &previousTerm_, nullptr);
    ::sigaction(SIGWINCH, &previousWinch_, nullptr);
  }
  TerminalScreen(const TerminalScreen&) = delete;
  TerminalScreen& operator=(const TerminalScreen&) = delete;

  // True when `q`, `Q` or Ctrl-D was typed since the last call (without waiting).
  bool quitTyped() {
    pollfd input{STDIN_FILENO, POLLIN, 0};
    while (::poll(&input, 1, 0) > 0 && (input.revents & POLLIN) != 0) {
      char key = 0;
      if (::read(STDIN_FILENO, &key, 1) != 1) return false;
      if (key == 'q' || key == 'Q' || key == 4) return true;
    }
    return false;
  }

  void draw(const std::string& frame) {
    // Home, the frame with each line's rest cleared, then the rest of the screen cleared.
    std::string text = "\x1b[H";
    std::size_t start = 0;
    while (start < frame.size()) {
      const std::size_t end = frame.find('\n', start);
      text += frame.substr(start, end - start) + "\x1b[K";
      if (end == std::string::npos) break;
      start = end + 1;
      if (start < frame.size()) text += "\n";
    }
    out_ << text << "\x1b[J" << std::flush;
  }

 private:
  std::ostream& out_;
  termios saved_{};
  bool rawMode_ = false;
  struct sigaction previousInt_ {};
  struct sigaction previousTerm_ {};
  struct sigaction previousWinch_ {};
};

// Loads every snapshot over REST. Devices are required; the rest is shown when it answers.
Status loadSnapshots(CliSession& session, TopModel& model) {
  ASSIGN_OR_RETURN(const Json list, session.getJson("/api/device"));
  Json samples;
  if (auto health = session.getJson("/api/integration/health")) {
    samples = memberAt(*health, "devices");
    if (const std::string node = stringAt(*health, "node"); !node.empty()) model.node = node;
  }
  model.setDevices(memberAt(list, "devices"), samples);
  for (const TopDevice& device : std::vector<TopDevice>(model.devices)) {
    if (auto status = session.getJson("/api/memory/" + percentEncode(device.id) + "/status")) {
      model.setLedger(device.id, *status);
    }
  }
  if (auto training = session.getJson("/api/training/sessions")) {
    model.trainingJobs = memberAt(*training, "sessions");
  }
  if (auto generation = session.getJson("/api/generation")) {
    model.generationJobs = memberAt(*generation, "jobs");
  }
  if (model.events.empty()) {
    if (auto events = session.getJson("/api/events?limit=20")) {
      const Json& items = memberAt(*events, "events");
      if (items.is_array()) {
        for (const Json& event : items) model.events.push_back(event);
      }
    }
  }
  return Status::success();
}

// True when a listed training or generation job has not ended: its progress is worth polling.
bool hasRunningJobs(const TopModel& model) {
  const auto running = [](const Json& jobs) {
    if (!jobs.is_array()) return false;
    return std::any_of(jobs.begin(), jobs.end(), [](const Json& job) {
      const std::string state = stringAt(job, "state");
      return state == "running" || state == "starting" || state == "queued" ||
             state == "stopping" || state == "waiting";
    });
  };
  return running(model.trainingJobs) || running(model.generationJobs);
}

void reloadJobs(CliSession& session, TopModel& model) {
  if (auto training = session.getJson("/api/training/sessions")) {
    model.trainingJobs = memberAt(*training, "sessions");
  }
  if (auto generation = session.getJson("/api/generation")) {
    model.generationJobs = memberAt(*generation, "jobs");
  }
}

int printOnce(CliSession& session) {
  TopModel model;
  if (Status loaded = loadSnapshots(session, model); !loaded.ok()) {
    return session.report(loaded.error());
  }
  session.out() << renderTopFrame(model, terminalColumns(session.out()));
  return kExitOk;
}

// The live view: follows /api/stream (reconnecting with Last-Event-ID) until q or Ctrl-C.
int runLive(CliSession& session, double pollSeconds) {
  TopModel model;
  if (Status loaded = loadSnapshots(session, model); !loaded.ok()) {
    return session.report(loaded.error());
  }
  gQuit.store(false);
  TerminalScreen screen(session.out());
  bool dirty = true;
  auto lastDraw = Clock::now() - std::chrono::hours(1);
  auto lastPoll = Clock::now();
  const auto pollInterval = std::chrono::milliseconds(std::llround(pollSeconds * 1000));
  // Asked while waiting and after every piece: keys, signals, polling without telemetry, redraw.
  const auto tick = [&]() -> bool {
    if (screen.quitTyped()) gQuit.store(true);
    if (gQuit.load()) return false;
    const auto now = Clock::now();
    if (now - lastPoll >= pollInterval) {
      // Samples and events come pushed; job progress (steps, loss) is not an event, and
      // without telemetry nothing but events comes.
      if (!model.telemetry || model.status != "live") {
        lastPoll = now;
        if (loadSnapshots(session, model).ok()) dirty = true;
      } else if (hasRunningJobs(model)) {
        lastPoll = now;
        reloadJobs(session, model);
        dirty = true;
      }
    }
    if (gResized.exchange(false)) dirty = true;
    if (dirty && now - lastDraw >= kMinRedrawInterval) {
      screen.draw(
          renderTopFrame(model, terminalColumns(session.out()), terminalRows(session.out())));
      lastDraw = now;
      dirty = false;
    }
    return true;
  };

  std::string lastId;
  while (!gQuit.load()) {
    EventStreamParser parser;
    std::vector<std::pair<std::string, std::string>> headers;
    if (!lastId.empty()) headers.emplace_back("Last-Event-ID", lastId);
    auto response = session.client().stream(
        "/api/stream",
        [&](std::string_view piece) {
          if (model.status != "live") {
            model.status = "live";
            dirty = true;
          }
          for (const ServerSentEvent& event : parser.feed(piece)) {
            if (!event.id.empty()) lastId = event.id;
            switch (model.apply(event)) {
              case TopChange::kNone:
                break;
              case TopChange::kRedraw:
                dirty = true;
                break;
              case TopChange::kReloadJobs:
                reloadJobs(session, model);
                dirty = true;
                break;
              case TopChange::kReloadAll:
                (void)loadSnapshots(session, model);
                dirty = true;
                break;
            }
          }
          return tick();
        },
        headers, kStreamIdleTimeout, tick);
    if (gQuit.load()) break;
    // An error answer (an older daemon without /api/stream: 404) means polling REST from now
    // on; a broken stream means reconnecting after a pause.
    const bool noStream = response && (response->status < 200 || response->status >= 300);
    model.status = noStream ? "polling" : "reconnecting";
    dirty = true;
    const auto pauseEnd =
        Clock::now() + (noStream ? std::chrono::hours(24 * 365) : kReconnectDelay);
    while (Clock::now() < pauseEnd && tick()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return kExitOk;
}

}  // namespace

void addTopCommand(CLI::App& app, CommandAction& action) {
  auto once = std::make_shared<bool>(false);
  auto poll = std::make_shared<double>(2.0);
  CLI::App* command =
      app.add_subcommand("top", "live view of devices, memory, jobs and events (q quits)");
  command->add_flag("--once", *once, "print one frame and exit (also when stdout is not a tty)");
  command
      ->add_option("--poll", *poll,
                   "seconds between REST refreshes when the daemon streams no samples")
      ->check(CLI::Range(0.2, 3600.0))
      ->capture_default_str();
  command->callback([&action, once, poll] {
    action = [once, poll](CliSession& session) {
      if (*once || session.jsonOutput() || !isTerminal(session.out())) return printOnce(session);
      return runLive(session, *poll);
    };
  });
}

}  // namespace deviceops::client
