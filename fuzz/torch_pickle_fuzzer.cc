// Fuzzes the restricted unpickler of torch checkpoints (data.pkl): whatever the bytes, it
// returns a state dict or an error, never crashes, loops or grows beyond what the input holds,
// and every tensor layout it returns is well formed (non-negative sizes and strides, one stride
// per dimension, a supported dtype).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "training_formats/torch_pickle.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace deviceops::training;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = unpickleStateDict(bytes);
  if (!parsed.ok()) return 0;
  for (const PickledTensor& tensor : parsed->tensors) {
    if (tensor.shape.size() != tensor.stride.size() || tensor.storageOffset < 0 ||
        torchStorageDtype(tensor.storageType) != tensor.dtype) {
      __builtin_trap();
    }
    for (std::size_t i = 0; i < tensor.shape.size(); ++i) {
      if (tensor.shape[i] < 0 || tensor.stride[i] < 0) __builtin_trap();
    }
  }
  return 0;
}
