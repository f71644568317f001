// The CLI of issue 16 against the real daemon: `top --once` shows every device, `train --follow`
// into a pipe prints plain progress lines, and the shell completion scripts are valid and list
// every subcommand.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "test_daemon.h"

namespace deviceops::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string url(const TestDaemon& daemon) {
  return "http://127.0.0.1:" + std::to_string(daemon.port());
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) out.push_back(line);
  return out;
}

TEST(CliProgressTest, TopOnceShowsEveryDeviceOfApiDevice) {
  TestDaemon daemon;
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const json devices = daemon.get("/api/device").json()["devices"];
  ASSERT_FALSE(devices.empty());
  auto [code, frame] =
      runProgram({DEVICEOPS_CLI_PATH, "--url", url(daemon), "top", "--once"}, {{"COLUMNS", "200"}});
  ASSERT_EQ(code, 0) << frame;
  EXPECT_EQ(frame.rfind("deviceops top", 0), 0u) << frame;
  EXPECT_NE(frame.find("DEVICES (" + std::to_string(devices.size()) + ")\n"), std::string::npos)
      << frame;
  for (const json& device : devices) {
    const std::string title =
        device["id"].get<std::string>() + "  " + device["name"].get<std::string>();
    EXPECT_NE(frame.find("\n" + title), std::string::npos) << title << "\n" << frame;
  }
  EXPECT_NE(frame.find("\nJOBS\n"), std::string::npos) << frame;
  EXPECT_NE(frame.find("\nEVENTS\n"), std::string::npos) << frame;
  EXPECT_EQ(frame.find('\x1b'), std::string::npos) << "one plain frame, no escapes";
  // Without --once but into a pipe: the same single frame.
  auto [pipedCode, piped] = runProgram({DEVICEOPS_CLI_PATH, "--url", url(daemon), "top"});
  EXPECT_EQ(pipedCode, 0) << piped;
  EXPECT_EQ(piped.find('\x1b'), std::string::npos) << piped;
  // No daemon: the connection error, exit 3.
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
  auto [downCode, down] = runProgram({DEVICEOPS_CLI_PATH, "--url", url(daemon), "top", "--once"});
  EXPECT_EQ(downCode, 3) << down;
  EXPECT_NE(down.find("error: cannot connect"), std::string::npos) << down;
}

// Reads what the child writes to the pty's `master` until `needle` has appeared (true) or
// `timeout` passed (false).
bool readUntil(int master, std::string& output, const std::string& needle,
               std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (output.find(needle) == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd input{master, POLLIN, 0};
    if (::poll(&input, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[4096];
    const ssize_t got = ::read(master, buffer, sizeof buffer);
    if (got <= 0) return false;  // the child closed the terminal
    output.append(buffer, static_cast<std::size_t>(got));
  }
  return true;
}

// `top` on a terminal (a pty): the alternate screen with live frames; each of `q` and Ctrl-C
// quits with status 0 and the screen and the terminal's modes restored.
TEST(CliProgressTest, TopOnATerminalQuitsOnQAndCtrlCAndRestoresTheTerminal) {
  TestDaemon daemon;
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const std::string address = url(daemon);
  for (const char key : {'q', '\x03'}) {
    SCOPED_TRACE(key == 'q' ? "q" : "Ctrl-C");
    int master = -1;
    winsize size{};
    size.ws_row = 40;
    size.ws_col = 120;
    const pid_t child = ::forkpty(&master, nullptr, nullptr, &size);
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::execl(DEVICEOPS_CLI_PATH, DEVICEOPS_CLI_PATH, "--url", address.c_str(), "top",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::string output;
    // The first frame (drawn from the REST snapshots, before any stream event).
    EXPECT_TRUE(readUntil(master, output, "EVENTS", std::chrono::seconds(15))) << output;
    EXPECT_NE(output.find("\x1b[?1049h"), std::string::npos) << "the alternate screen";
    termios modes{};
    ASSERT_EQ(::tcgetattr(master, &modes), 0);
    EXPECT_EQ(modes.c_lflag & (ICANON | ECHO), 0u) << "raw mode while it runs";
    ASSERT_EQ(::write(master, &key, 1), 1);
    EXPECT_TRUE(readUntil(master, output, "\x1b[?1049l", std::chrono::seconds(10))) << output;
    int status = -1;
    for (int i = 0; i < 100 && ::waitpid(child, &status, WNOHANG) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (!WIFEXITED(status)) {
      ::kill(child, SIGKILL);
      ::waitpid(child, &status, 0);
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << output;
    ASSERT_EQ(::tcgetattr(master, &modes), 0);
    EXPECT_EQ(modes.c_lflag & (ICANON | ECHO), ICANON | ECHO) << "the terminal's modes back";
    ::close(master);
  }
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

TEST(CliProgressTest, TrainFollowIntoAPipePrintsPlainStepLines) {
  TestDaemon daemon;
  ASSERT_TRUE(daemon.started()) << daemon.log();
  const fs::path csv = daemon.directory() / "tiny.csv";
  {
    std::ofstream file(csv);
    file << "a,b,c,d,label\n";
    for (int i = 0; i < 400; ++i) {
      const double x = (i * 37 % 101) / 50.0 - 1.0, y = (i * 53 % 97) / 48.0 - 1.0;
      file << x << "," << y << "," << x * y << "," << i % 7 << "," << (x + y > 0 ? 1 : 0) << "\n";
    }
  }
  auto [uploadCode, uploaded] = runProgram({DEVICEOPS_CLI_PATH, "--url", url(daemon), "train",
                                            "data", "upload", csv.string(), "--name", "tiny"});
  ASSERT_EQ(uploadCode, 0) << uploaded;
  EXPECT_EQ(uploaded.find('\x1b'), std::string::npos) << "a quick upload draws nothing";
  // runProgram's stdout is a pipe, as in `deviceops train start ... --follow | cat`.
  auto [code, output] = runProgram({DEVICEOPS_CLI_PATH,
                                    "--url",
                                    url(daemon),
                                    "train",
                                    "start",
                                    "--dataset",
                                    "tiny",
                                    "--model",
                                    "mlp",
                                    "--hidden",
                                    "8",
                                    "--epochs",
                                    "3",
                                    "--batch-size",
                                    "16",
                                    "--seed",
                                    "1",
                                    "--validation-split",
                                    "0",
                                    "--follow"});
  ASSERT_EQ(code, 0) << output;
  EXPECT_EQ(output.find('\r'), std::string::npos) << output;
  EXPECT_EQ(output.find('\x1b'), std::string::npos) << output;
  // "<job> 33% 23/69 22.3 step/s ETA 0:02 running epoch 1/3 loss 0.6920 ..." : one kept line per
  // epoch at least, step counts rising to the total.
  const std::regex progress(R"(^(job-\S+) (\d+)% (\d+)/(\d+) .*epoch (\d)/3.*$)");
  std::vector<std::pair<int, int>> steps;
  for (const std::string& line : lines(output)) {
    std::smatch match;
    if (std::regex_match(line, match, progress)) {
      steps.emplace_back(std::stoi(match[3]), std::stoi(match[4]));
    }
  }
  ASSERT_GE(steps.size(), 3u) << output;
  const int total = steps.back().second;
  EXPECT_EQ(total, 75) << "400 rows / batches of 16 = 25 steps per epoch, 3 epochs";
  EXPECT_EQ(steps.back().first, total) << output;
  for (std::size_t i = 1; i < steps.size(); ++i) {
    EXPECT_LE(steps[i - 1].first, steps[i].first) << output;
  }
  EXPECT_NE(output.find(" completed: finished all epochs\n"), std::string::npos) << output;
  EXPECT_EQ(daemon.stop(), 0) << daemon.log();
}

TEST(CliProgressTest, CompletionScriptsAreValidAndListEverySubcommand) {
  auto [helpCode, help] = runProgram({DEVICEOPS_CLI_PATH, "--help"});
  ASSERT_EQ(helpCode, 0) << help;
  // "  suites, suite    model suites ..." under "Subcommands:".
  std::vector<std::string> commands;
  bool inSubcommands = false;
  for (const std::string& line : lines(help)) {
    if (line == "Subcommands:") {
      inSubcommands = true;
      continue;
    }
    if (!inSubcommands || line.size() < 3 || line[2] == ' ') continue;
    std::istringstream words(line);
    for (std::string word; words >> word;) {
      const bool more = word.back() == ',';
      if (more) word.pop_back();
      commands.push_back(word);
      if (!more) break;
    }
  }
  ASSERT_GE(commands.size(), 20u) << help;
  EXPECT_NE(std::find(commands.begin(), commands.end(), "top"), commands.end());

  const fs::path dir =
      fs::temp_directory_path() / ("deviceops-completion-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const std::string shell : {"bash", "zsh"}) {
    SCOPED_TRACE(shell);
    auto [code, script] = runProgram({DEVICEOPS_CLI_PATH, "completion", shell});
    ASSERT_EQ(code, 0) << script;
    const std::string committed = shell == "bash" ? "deviceops.bash" : "_deviceops";
    std::ifstream file(fs::path(DEVICEOPS_SOURCE_DIR) / "scripts/completion" / committed);
    std::ostringstream content;
    content << file.rdbuf();
    EXPECT_EQ(content.str(), script) << "the committed script is what the CLI generates";
    const std::string marker = shell == "bash" ? "    '') echo '" : "    '') reply=(";
    const std::size_t root = script.find(marker);
    ASSERT_NE(root, std::string::npos) << script;
    const std::string rootLine = script.substr(root, script.find('\n', root) - root);
    // bash: "    '') echo 'version devices ...' ;;"; zsh: "    '') reply=('version:Show ...' ...".
    std::string words = rootLine.substr(marker.size());
    if (shell == "bash") words = words.substr(0, words.find('\''));
    words = " " + words + " ";
    for (const std::string& command : commands) {
      const std::string word = shell == "bash" ? " " + command + " " : "'" + command + ":";
      EXPECT_NE(words.find(word), std::string::npos) << command << " in " << rootLine;
    }
    const fs::path path = dir / committed;
    std::ofstream(path) << script;
    if (shell == "bash") {
      auto [syntaxCode, syntax] = runProgram({"/bin/bash", "-n", path.string()});
      EXPECT_EQ(syntaxCode, 0) << syntax;
      // Sourcing it and completing "deviceops tr" offers "train".
      auto [completeCode, completed] =
          runProgram({"/bin/bash", "-c",
                      "source '" + path.string() +
                          "' && COMP_WORDS=(deviceops tr) && COMP_CWORD=1 && _deviceops && "
                          "echo \"${COMPREPLY[*]}\""});
      EXPECT_EQ(completeCode, 0) << completed;
      EXPECT_EQ(completed, "train\n");
    } else if (fs::exists("/usr/bin/zsh") || fs::exists("/bin/zsh")) {
      auto [syntaxCode, syntax] = runProgram({"zsh", "-n", path.string()});
      EXPECT_EQ(syntaxCode, 0) << syntax;
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace deviceops::testing
