// Shell completion for deviceops, generated from the CLI11 definition of the commands so it never
// drifts from them: `deviceops completion bash|zsh` prints the script (a hidden command).
// scripts/completion/deviceops.bash and _deviceops are its output, installed by
// cmake/install.cmake; a unit test fails when they differ from what the CLI generates.
#pragma once

#include <string>

namespace CLI {
class App;
}

namespace deviceops::client {

// A bash script (`complete -F _deviceops deviceops`) completing subcommands at every level and
// the options of the command typed so far (plus the global ones). Hidden subcommands (an empty
// group) are left out.
std::string bashCompletion(const CLI::App& app);

// The same for zsh (#compdef deviceops), with each subcommand's description.
std::string zshCompletion(const CLI::App& app);

}  // namespace deviceops::client
