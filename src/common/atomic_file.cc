#include "common/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace deviceops {
namespace {

Error ioError(std::string_view what, const std::filesystem::path& path, int error) {
  return makeError(ErrorCode::kUnavailable,
                   fmt::format("cannot {} {}: {}", what, path.string(), std::strerror(error)));
}

Status writeAll(int fd, std::string_view bytes, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ioError("write", path, n < 0 ? errno : EIO);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return Status::success();
}

}  // namespace

Status writeFileAtomically(const std::filesystem::path& file,
                           std::span<const std::string_view> pieces) {
  static std::atomic<std::uint64_t> counter{0};
  const std::filesystem::path directory =
      file.has_parent_path() ? file.parent_path() : std::filesystem::path(".");
  const std::filesystem::path temporary =
      directory / fmt::format(".{}.tmp-{}-{}", file.filename().string(), ::getpid(), counter++);
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ioError("create a temporary file next to", file, errno);
  Status status;
  for (std::string_view piece : pieces) {
    if (status = writeAll(fd, piece, temporary); !status.ok()) break;
  }
  if (status.ok() && ::fsync(fd) != 0) status = ioError("fsync", temporary, errno);
  if (::close(fd) != 0 && status.ok()) status = ioError("close", temporary, errno);
  if (status.ok() && ::rename(temporary.c_str(), file.c_str()) != 0) {
    status = ioError("rename a temporary file to", file, errno);
  }
  if (!status.ok()) {
    ::unlink(temporary.c_str());
    return status;
  }
  const int directoryFd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directoryFd < 0) return ioError("open the directory", directory, errno);
  const int synced = ::fsync(directoryFd);
  const int syncError = errno;
  ::close(directoryFd);
  if (synced != 0) return ioError("fsync the directory", directory, syncError);
  return Status::success();
}

}  // namespace deviceops
