// Custom VAE weights (SDXL.md section 5): reading a .safetensors, .pt, .ckpt or .bin file into
// float tensors named as diffusers names them, whatever convention the file used.
//
// Reading: safetensors through training::parseSafeTensors (the whole file in memory: VAE files
// are ~330 MB), torch files through training::TorchCheckpoint (mapped; only the VAE's tensors are
// gathered, so a full SD checkpoint costs its VAE, not its 7 GB). Nothing is executed; refused
// pickle globals, truncated archives and bad storages are kInvalidArgument from those readers.
//
// Keys:
// - Prefix: when any key starts with "first_stage_model." (an SD checkpoint) only those keys are
//   taken, stripped; else the same with "vae."; else the keys that already start with encoder.,
//   decoder., quant_conv. or post_quant_conv. Everything else (a checkpoint's UNet and text
//   encoders, a Lightning loss) is counted in `ignored` and never read.
// - Convention: a key with "up_blocks."/"down_blocks."/"mid_block." is diffusers; one with
//   "decoder.up."/"encoder.down."/".mid." is the original LDM's, renamed to diffusers:
//   decoder.up.{N-1-i} -> decoder.up_blocks.{i} (the decoder's up blocks run in reverse), block.j
//   -> resnets.j, upsample.conv -> upsamplers.0.conv, downsample.conv -> downsamplers.0.conv,
//   mid.block_{1,2} -> mid_block.resnets.{0,1}, mid.attn_1 -> mid_block.attentions.0, norm ->
//   group_norm, q/k/v/proj_out -> to_q/to_k/to_v/to_out.0, nin_shortcut -> conv_shortcut,
//   norm_out -> conv_norm_out. Deprecated diffusers attention names query/key/value/proj_attn
//   become to_q/to_k/to_v/to_out.0. Attention projection weights stored as 1x1 convolutions
//   [C, C, 1, 1] are squeezed to [C, C].
// - Dtypes: F32 as is; F16, BF16 widened exactly; F64 narrowed (rounded to nearest). Integer
//   tensors in the VAE's namespace are kInvalidArgument naming the key.
// Two source keys that map to one name: kInvalidArgument naming both.
//
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace deviceops::vae {

enum class FileFormat { kSafetensors, kPt, kCkpt, kBin };
std::string_view fileFormatName(FileFormat format);  // "safetensors", "pt", "ckpt", "bin"
std::optional<FileFormat> parseFileFormat(std::string_view name);
// From the extension (.safetensors, .pt, .pth, .ckpt, .bin); nullopt for others.
std::optional<FileFormat> formatFromExtension(const std::filesystem::path& file);

enum class KeyFormat { kDiffusers, kLdm };
std::string_view keyFormatName(KeyFormat format);  // "diffusers", "ldm"

struct VaeTensor {
  std::vector<std::int64_t> shape;
  std::vector<float> values;  // row-major, product(shape) elements
  std::string sourceKey;      // as the file names it
  std::string sourceDtype;    // "F32", "F16", "BF16", "F64"
};

struct VaeWeights {
  FileFormat fileFormat = FileFormat::kSafetensors;
  KeyFormat keyFormat = KeyFormat::kDiffusers;
  std::string prefix;                         // stripped: "first_stage_model.", "vae." or ""
  std::map<std::string, VaeTensor> tensors;   // by diffusers name
  std::map<std::string, std::size_t> dtypes;  // source dtype -> tensors
  std::size_t ignored = 0;                    // keys outside the VAE
  std::uint64_t parameters = 0;               // elements over all tensors
  bool hasDecoder() const;                    // any decoder.* / post_quant_conv.* tensor
  bool hasEncoder() const;                    // any encoder.* / quant_conv.* tensor
};

// The tensors of one source, before key normalisation (tests and callers with tensors in hand).
struct SourceTensor {
  std::string key;
  std::string dtype;  // "F32" | "F16" | "BF16" | "F64" | anything else is refused
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

// Which prefix a key set uses and whether a key belongs to the VAE (see above).
std::string detectPrefix(const std::vector<std::string>& keys);
// The VAE-relative key (prefix stripped) or nullopt when the key is outside the VAE.
std::optional<std::string> vaeRelativeKey(std::string_view key, std::string_view prefix);
KeyFormat detectKeyFormat(const std::vector<std::string>& relativeKeys);
// The diffusers name of a VAE-relative key. `upBlocks`: the number of decoder up blocks (LDM
// indices reverse against it). kInvalidArgument for an LDM key that cannot be mapped.
Result<std::string> diffusersName(std::string_view relativeKey, KeyFormat format, int upBlocks);

// Normalises already-read tensors (VAE-relative keys, see vaeRelativeKey) into VaeWeights.
Result<VaeWeights> normalizeVaeTensors(std::vector<SourceTensor> tensors, FileFormat fileFormat,
                                       std::string prefix, std::size_t ignored);

// Reads and normalises a weights file; `format` overrides the extension (uploads). kNotFound for
// a missing file, kInvalidArgument for an unknown extension, a malformed file, or a file without
// any VAE tensor.
Result<VaeWeights> readVaeWeights(const std::filesystem::path& file,
                                  std::optional<FileFormat> format = std::nullopt);

}  // namespace deviceops::vae
