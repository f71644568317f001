// NumPy .npy files (format versions 1.0, 2.0 and 3.0) <-> Tensor, for the CLI's
// `deviceops infer --input name=file.npy` and its output files. Pure code, no ONNX Runtime.
//
// Supported: C order, little-endian (or byte-order-free) dtypes
//   <f2 <f4 <f8 |b1 |i1 <i2 <i4 <i8 |u1 <u2 <u4 <u8   (FP16 ... UINT64, BOOL)
//   |S<n> (bytes) and <U<n> (UTF-32 text) -> BYTES, one element per item, trailing NULs removed
// Not supported (kInvalidArgument saying so): big-endian, Fortran order, object arrays (pickles),
// structured dtypes. NumPy has no bfloat16: writeNpy stores BF16 as <f4 (exact widening).
// Bad magic, a malformed header or a data section that does not match the shape are
// kInvalidArgument naming the problem; a missing file is kNotFound.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/result.h"
#include "tensor/tensor.h"

namespace deviceops::inference {

// Parses a whole .npy file held in memory; the tensor is named `name`.
Result<Tensor> readNpy(std::string_view bytes, std::string name = "");
Result<Tensor> readNpyFile(const std::filesystem::path& file, std::string name = "");

// The .npy bytes of a valid tensor (version 1.0 when the header fits, else 2.0). BYTES
// elements are written as |S<longest> (NUL-padded).
std::string writeNpy(const Tensor& tensor);
Status writeNpyFile(const std::filesystem::path& file, const Tensor& tensor);

}  // namespace deviceops::inference
