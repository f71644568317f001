#include "devices/allocator.h"

#include <fmt/format.h>

namespace deviceops::devices {

Status checkTransferRange(std::uint64_t blockBytes, std::uint64_t offset, std::uint64_t bytes) {
  // Written without offset + bytes, which may wrap around 2^64.
  if (offset > blockBytes || bytes > blockBytes - offset) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("a transfer of {} bytes at offset {} does not fit in a block of "
                                 "{} bytes",
                                 bytes, offset, blockBytes),
                     {{"offset", offset}, {"bytes", bytes}, {"blockBytes", blockBytes}});
  }
  return Status::success();
}

}  // namespace deviceops::devices
