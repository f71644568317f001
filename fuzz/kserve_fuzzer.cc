// Fuzzes the KServe v2 infer request decoder (JSON + binary tensor data extension): whatever the
// bytes, decoding returns a value or an error, never crashes, hangs or allocates from a declared
// size. The first two bytes choose the Inference-Header-Content-Length: 0xffff means no header,
// anything else is a length into the rest (which may point past its end).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tensor/kserve_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const unsigned selector = static_cast<unsigned>(data[0]) << 8 | data[1];
  const std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  std::optional<std::string> header;
  if (selector != 0xffff) header = std::to_string(selector);
  auto decoded = deviceops::inference::decodeV2InferRequest(
      body, header ? std::optional<std::string_view>(*header) : std::nullopt);
  if (decoded.ok()) {
    // What was accepted must encode again (as a response would) without trouble.
    deviceops::inference::V2InferResponse response{"m", "1", decoded->id, decoded->inputs};
    auto encoded = deviceops::inference::encodeV2InferResponse(response, *decoded);
    (void)encoded;
    for (const auto& tensor : decoded->inputs) {
      if (!tensor.validate().ok()) __builtin_trap();
    }
  }
  return 0;
}
