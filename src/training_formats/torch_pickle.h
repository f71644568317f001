// A restricted unpickler for the data.pkl of a torch.save archive: it builds the object graph
// the pickle describes without importing or calling anything, and returns the state dict's
// tensors as layout records (storage key, dtype, offset, shape, strides), not data.
//
// Accepted opcodes (SDXL.md section 6): PROTO, FRAME, STOP, MARK, POP, POP_MARK, DUP, NONE,
// NEWTRUE, NEWFALSE, BININT, BININT1, BININT2, LONG1, BINFLOAT, BINUNICODE, SHORT_BINUNICODE,
// SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES, EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, TUPLE,
// TUPLE1-3, APPEND, APPENDS, SETITEM, SETITEMS, BINPUT, LONG_BINPUT, BINGET, LONG_BINGET,
// MEMOIZE, GLOBAL, STACK_GLOBAL, REDUCE, BUILD, NEWOBJ, BINPERSID. Any other opcode is an error.
//
// Globals are names, never resolved. Only these have a meaning:
//   collections.OrderedDict            REDUCE gives an empty dict
//   torch._utils._rebuild_tensor_v2    (storage, offset, size, stride, requires_grad, hooks
//                                      [, metadata]) gives a tensor record
//   torch._utils._rebuild_tensor       (storage, offset, size, stride)
//   torch._utils._rebuild_parameter    (tensor, requires_grad, hooks) gives the tensor
//   torch.<Type>Storage                storage type tags in persistent ids
// Globals of modules that reach the system or the interpreter (os, posix, nt, sys, subprocess,
// builtins other than set/frozenset/bytearray/complex/slice/range, importlib, ...) are refused
// with kInvalidArgument naming the global (details.global). Any other global (Lightning
// callbacks, numpy scalars) gives an opaque value when called, which is fine anywhere outside
// the state dict's tensors. BUILD discards its state.
//
// Persistent ids must be ('storage', <StorageType>, key, location, numel).
//
// Limits: the object graph is bounded by the pickle's length (each opcode adds at most one
// object); nothing is allocated from a declared size. Every error is kInvalidArgument.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace deviceops::training {

enum class TorchDtype { kF32, kF16, kBF16, kF64, kI64, kI32, kI8, kU8, kBool };
std::string_view torchDtypeName(TorchDtype dtype);  // "F32", "F16", "BF16", ...
std::size_t torchDtypeSize(TorchDtype dtype);       // bytes per element

// The dtype of a storage type tag such as "torch.HalfStorage"; nullopt for others.
std::optional<TorchDtype> torchStorageDtype(std::string_view storageType);

// One tensor of the state dict as the pickle describes it. Strides and offset count elements.
struct PickledTensor {
  std::string name;         // the state dict key
  std::string storageKey;   // the archive holds its bytes at <stem>/data/<storageKey>
  std::string storageType;  // e.g. "torch.FloatStorage"
  TorchDtype dtype = TorchDtype::kF32;
  std::uint64_t storageNumel = 0;    // elements, as declared by the persistent id
  std::int64_t storageOffset = 0;    // >= 0
  std::vector<std::int64_t> shape;   // each >= 0
  std::vector<std::int64_t> stride;  // each >= 0, same rank as shape
};

struct PickledStateDict {
  std::vector<PickledTensor> tensors;  // in pickle order
  // Keys of the dict whose values are not tensors (nested dicts, numbers, opaque objects).
  std::vector<std::string> skipped;
  bool nested = false;  // true when taken from the top level's "state_dict" (Lightning .ckpt)
};

// Unpickles `pickle` and picks the state dict: the top level's "state_dict" when it is a dict,
// else the top-level dict itself. kInvalidArgument when the pickle is malformed, uses a refused
// opcode or global, its top level is not a dict, or a tensor of the state dict has a storage
// type without a supported dtype or a malformed layout.
Result<PickledStateDict> unpickleStateDict(std::string_view pickle);

}  // namespace deviceops::training
