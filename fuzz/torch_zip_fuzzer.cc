// Fuzzes the torch checkpoint reader from the zip up (custom VAE weights are uploaded .pt, .ckpt
// and .bin files): whatever the bytes, parsing returns a value or an error, never crashes,
// reads out of bounds or allocates from a declared size. Every entry it accepts lies inside the
// archive, and every tensor it accepts gathers to exactly product(shape) * dtype size bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "training_formats/torch_checkpoint.h"
#include "training_formats/torch_zip.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace deviceops::training;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto zip = parseStoredZip(bytes);
  if (zip.ok()) {
    for (const StoredZipEntry& entry : zip->entries()) {
      if (entry.dataOffset > size || entry.size > size - entry.dataOffset ||
          zip->find(entry.name) != &entry || zip->data(entry).size() != entry.size) {
        __builtin_trap();
      }
    }
  }
  auto checkpoint = TorchCheckpoint::fromBytes(bytes);
  if (!checkpoint.ok()) return 0;
  for (const PickledTensor& layout : checkpoint->tensors()) {
    const NamedTensor tensor = checkpoint->read(layout);
    if (tensor.data.size() !=
        static_cast<std::size_t>(tensor.elementCount()) * torchDtypeSize(tensor.dtype)) {
      __builtin_trap();
    }
    auto floats = widenToFloat(tensor);
    if (floats.ok() && floats->size() != static_cast<std::size_t>(tensor.elementCount())) {
      __builtin_trap();
    }
  }
  return 0;
}
