#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "api/routes.h"

namespace deviceops::api {

Status readSmallBody(http::Request& request, std::string_view what) {
  if (request.bodyFile.empty()) return Status::success();
  constexpr std::uintmax_t kLimit = 1 << 20;
  std::error_code error;
  const std::uintmax_t size = std::filesystem::file_size(request.bodyFile, error);
  if (error || size > kLimit) {
    return makeError(ErrorCode::kPayloadTooLarge,
                     fmt::format("a JSON request may be at most {} bytes; send {} as "
                                 "Content-Type: application/octet-stream",
                                 kLimit, what));
  }
  std::ifstream in(request.bodyFile, std::ios::binary);
  request.body.assign(std::istreambuf_iterator<char>(in), {});
  return Status::success();
}

}  // namespace deviceops::api
