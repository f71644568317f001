#include "client/cli_completion.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "client/cli.h"

namespace deviceops::client {
namespace {

// `deviceops completion <shell>` run in-process; returns what it printed (exit status checked).
std::string generated(std::string shell) {
  std::vector<std::string> args = {"deviceops", "completion", std::move(shell)};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::ostringstream out, err;
  EXPECT_EQ(runCli(static_cast<int>(args.size()), argv.data(), out, err, "test"), kExitOk)
      << err.str();
  return out.str();
}

std::string committed(const std::string& name) {
  std::ifstream file(std::string(DEVICEOPS_SOURCE_DIR) + "/scripts/completion/" + name);
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

// The first case line of a function: the root's words.
std::string rootLine(const std::string& script, const std::string& function) {
  const std::size_t start = script.find(function + "() {");
  const std::size_t root = script.find("    '')", start);
  return script.substr(root, script.find('\n', root) - root);
}

const std::vector<std::string> kCommands = {
    "version",    "devices",     "device",    "health", "mem",    "models", "infer",
    "stats",      "events",      "available", "train",  "suites", "suite",  "generate",
    "generation", "generations", "vae",       "vaes",   "test",   "bench",  "top"};

TEST(CompletionTest, CommittedScriptsMatchTheCli) {
  EXPECT_EQ(committed("deviceops.bash"), generated("bash"))
      << "regenerate: deviceops completion bash > scripts/completion/deviceops.bash";
  EXPECT_EQ(committed("_deviceops"), generated("zsh"))
      << "regenerate: deviceops completion zsh > scripts/completion/_deviceops";
}

TEST(CompletionTest, BashListsEverySubcommandAndOptions) {
  const std::string script = generated("bash");
  std::string expected = "    '') echo '";
  for (std::size_t i = 0; i < kCommands.size(); ++i) expected += (i ? " " : "") + kCommands[i];
  EXPECT_EQ(rootLine(script, "_deviceops_commands"), expected + "' ;;");
  EXPECT_EQ(rootLine(script, "_deviceops_options"),
            "    '') echo '--help -h --url --token --json --timeout' ;;");
  EXPECT_NE(script.find("    'train data') echo 'upload list delete' ;;\n"), std::string::npos);
  EXPECT_NE(script.find("    'suites'|'suite') echo 'import list show load unload delete' ;;\n"),
            std::string::npos)
      << "an alias completes like its command";
  EXPECT_NE(script.find("    'top') echo '--help -h --once --poll' ;;\n"), std::string::npos);
  EXPECT_EQ(script.find("completion"), script.find("completion for deviceops"))
      << "the hidden completion command is not offered";
  EXPECT_NE(script.find("complete -o default -F _deviceops deviceops\n"), std::string::npos);
}

TEST(CompletionTest, ZshDescribesSubcommands) {
  const std::string script = generated("zsh");
  EXPECT_EQ(script.rfind("#compdef deviceops\n", 0), 0u);
  EXPECT_NE(script.find("'top:live view of devices, memory, jobs and events (q quits)'"),
            std::string::npos);
  for (const std::string& command : kCommands) {
    EXPECT_NE(script.find("'" + command + ":"), std::string::npos) << command;
  }
  EXPECT_NE(script.find("    'top') reply=(--help -h --once --poll) ;;\n"), std::string::npos);
}

TEST(CompletionTest, UnknownShellIsAUsageError) {
  std::vector<std::string> args = {"deviceops", "completion", "fish"};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::ostringstream out, err;
  EXPECT_EQ(runCli(static_cast<int>(args.size()), argv.data(), out, err, "test"), kExitUsage);
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace deviceops::client
