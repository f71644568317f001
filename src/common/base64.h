// Base64 (RFC 4648, standard alphabet, '=' padding), for binary data inside JSON and
// Server-Sent Events (preview images as data: URLs). Pure; thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace deviceops {

std::string base64Encode(std::string_view bytes);

}  // namespace deviceops
