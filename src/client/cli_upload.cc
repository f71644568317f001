// postWithProgress: request bodies that take a while to send (dataset and model uploads) with a
// progress bar of the bytes sent on stderr.
#include <filesystem>

#include "client/cli_commands.h"
#include "client/cli_progress.h"

namespace deviceops::client {

Result<HttpResponse> postWithProgress(CliSession& session, const std::string& target,
                                      const std::string& body, const std::string& label) {
  std::ostream& err = session.err();
  ProgressBar bar(err, makeProgressState(label, body.size(), ProgressUnit::kBytes),
                  ProgressBar::optionsFor(err));
  auto response = session.client().request(
      "POST", target, body, "application/octet-stream", {},
      [&bar](std::uint64_t sentBytes, std::uint64_t) { bar.update(sentBytes); });
  bar.finish(/*onlyIfShown=*/true);
  return response;
}

}  // namespace deviceops::client
