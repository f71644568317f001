// Fuzzes the safetensors reader (uploaded datasets, trained weights): whatever the bytes,
// parsing returns a value or an error, never crashes, reads out of bounds or allocates from a
// declared size. What it accepts must serialize back to bytes that parse to the same tensors.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "training_formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = deviceops::training::parseSafeTensors(bytes);
  if (!parsed.ok()) return 0;
  for (const auto& [name, tensor] : parsed->tensors) {
    if (tensor.data.size() != static_cast<std::size_t>(tensor.elementCount()) *
                                  deviceops::training::safeDtypeSize(tensor.dtype)) {
      __builtin_trap();
    }
  }
  const std::string again = deviceops::training::serializeSafeTensors(*parsed);
  auto reparsed = deviceops::training::parseSafeTensors(again);
  if (!reparsed.ok() || reparsed->tensors.size() != parsed->tensors.size()) __builtin_trap();
  for (const auto& [name, tensor] : parsed->tensors) {
    const auto* other = reparsed->find(name);
    if (other == nullptr || other->data != tensor.data || other->shape != tensor.shape) {
      __builtin_trap();
    }
  }
  return 0;
}
