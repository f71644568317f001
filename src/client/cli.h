// The deviceops command-line client, as a function so tests can run it in-process.
#pragma once

#include <iosfwd>
#include <string_view>

namespace deviceops::client {

// Exit statuses of runCli.
inline constexpr int kExitOk = 0;
inline constexpr int kExitServerError = 1;  // the server answered with an error (or nonsense)
inline constexpr int kExitUsage = 2;        // bad command line, including a malformed --url
inline constexpr int kExitUnreachable = 3;  // no answer: cannot connect, connection lost, timeout

inline constexpr std::string_view kDefaultUrl = "http://127.0.0.1:5000";

// Parses argv (argv[0] is the program name), runs the chosen command against the server and
// returns its exit status. Normal output goes to `out`, errors to `err` ("error: ..." lines and
// CLI11's usage messages). The environment supplies DEVICEOPS_URL and DEVICEOPS_TOKEN when
// --url and --token are not given. cliVersion is what `deviceops version` reports for the
// client itself.
//
// Not thread-safe: it reads the environment. Precondition: argv holds argc valid C strings.
int runCli(int argc, char** argv, std::ostream& out, std::ostream& err,
           std::string_view cliVersion = "unknown");

}  // namespace deviceops::client
