// Feeds arbitrary bytes as a request body to parseJsonBody (src/http/errors.cc) and, as a size
// field would be, to parseByteSize (src/common/byte_size.cc), without the HTTP framing of
// http_request_fuzzer.cc in the way. The first byte picks the Content-Type header.
//
// Contracts checked: parseJsonBody returns a value (an object when one is required) or
// INVALID_ARGUMENT / UNSUPPORTED_MEDIA_TYPE, and never throws; parseByteSize returns at most
// kMaxByteSize, and a size it accepts in bytes it also accepts with a "B" unit, to the same value.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/byte_size.h"
#include "common/result.h"
#include "http/errors.h"
#include "http/message.h"

namespace {

using deviceops::ErrorCode;

void checkByteSize(std::string_view text) {
  const auto size = deviceops::parseByteSize(text);
  if (!size.ok()) {
    if (size.error().code != ErrorCode::kInvalidArgument) __builtin_trap();
    return;
  }
  if (*size > deviceops::kMaxByteSize) __builtin_trap();
  constexpr std::string_view kSpace = " \t\n\v\f\r";
  text.remove_prefix(std::min(text.size(), text.find_first_not_of(kSpace)));
  text.remove_suffix(text.size() - std::min(text.size(), text.find_last_not_of(kSpace) + 1));
  if (text.find_first_not_of("0123456789.") != std::string_view::npos) return;  // has a unit
  const auto withUnit = deviceops::parseByteSize(std::string(text) + "B");
  if (!withUnit.ok() || *withUnit != *size) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  constexpr const char* kContentTypes[] = {"", "application/json",
                                           "application/json; charset=utf-8", "text/plain"};
  deviceops::http::Request request;
  if (const char* contentType = kContentTypes[data[0] % 4]; *contentType != '\0') {
    request.headers["content-type"] = contentType;
  }
  request.body.assign(reinterpret_cast<const char*>(data) + 1, size - 1);

  for (const bool requireObject : {true, false}) {
    const auto parsed = deviceops::http::parseJsonBody(request, requireObject);
    if (parsed.ok()) {
      if (requireObject && !parsed->is_object()) __builtin_trap();
      if (parsed->is_object()) {
        for (const auto& [key, value] : parsed->items()) {
          if (value.is_string()) checkByteSize(value.get<std::string>());
        }
      }
    } else if (parsed.error().code != ErrorCode::kInvalidArgument &&
               parsed.error().code != ErrorCode::kUnsupportedMediaType) {
      __builtin_trap();
    }
  }
  checkByteSize(request.body);
  return 0;
}
