#include "trainer/progress.h"

#include <errno.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace deviceops::trainer {

void ProgressWriter::emit(const nlohmann::json& event) {
  if (fd_ < 0 || broken_) return;
  std::string line = event.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::size_t written = 0;
  while (written < line.size()) {
    ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::fprintf(stderr, "progress fd %d: write failed (%s); progress events stop\n", fd_,
                   std::strerror(errno));
      broken_ = true;
      return;
    }
    written += static_cast<std::size_t>(n);
  }
}

}  // namespace deviceops::trainer
