// Test helper: runs the CLI in-process (runCli) with captured stdout/stderr, the way every CLI
// unit test drives it.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "client/cli.h"

namespace deviceops::client::fakes {

struct CliRun {
  int exitCode = -1;
  std::string out;
  std::string err;
};

// `deviceops <args...>` with `version` as the CLI's version.
inline CliRun runCliInProcess(std::vector<std::string> args, const std::string& version = "test") {
  args.insert(args.begin(), "deviceops");
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::ostringstream out, err;
  CliRun run;
  run.exitCode = runCli(static_cast<int>(args.size()), argv.data(), out, err, version);
  run.out = out.str();
  run.err = err.str();
  return run;
}

// `deviceops --url <url> <args...>`.
inline CliRun runCliAgainst(const std::string& url, std::vector<std::string> args) {
  args.insert(args.begin(), {"--url", url});
  return runCliInProcess(std::move(args));
}

}  // namespace deviceops::client::fakes
