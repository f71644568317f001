#include "vae/vae_weights.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <set>

#include "training_formats/safetensors.h"
#include "training_formats/torch_checkpoint.h"

namespace deviceops::vae {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kVaeRoots[] = {"encoder.", "decoder.", "quant_conv.",
                                          "post_quant_conv."};

bool hasVaeRoot(std::string_view key) {
  return std::any_of(std::begin(kVaeRoots), std::end(kVaeRoots),
                     [&](std::string_view root) { return key.starts_with(root); });
}

std::vector<std::string> split(std::string_view key) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = key.find('.', start);
    parts.emplace_back(key.substr(start, dot == std::string_view::npos ? key.npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts, std::size_t from) {
  std::string out;
  for (std::size_t i = from; i < parts.size(); ++i) {
    if (!out.empty()) out += '.';
    out += parts[i];
  }
  return out;
}

std::optional<int> parseIndex(const std::string& text) {
  int value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

// Inside a resnet: nin_shortcut -> conv_shortcut; norm1/conv1/norm2/conv2 unchanged.
std::string resnetRest(const std::vector<std::string>& parts, std::size_t from) {
  std::string rest = join(parts, from);
  if (rest.starts_with("nin_shortcut.")) rest = "conv_shortcut." + rest.substr(13);
  return rest;
}

// Inside an attention block, LDM and deprecated diffusers names to today's diffusers names.
std::optional<std::string> attentionRest(const std::string& name, const std::string& rest) {
  static const std::map<std::string, std::string> kRenames = {{"norm", "group_norm"},
                                                              {"q", "to_q"},
                                                              {"k", "to_k"},
                                                              {"v", "to_v"},
                                                              {"proj_out", "to_out.0"},
                                                              {"query", "to_q"},
                                                              {"key", "to_k"},
                                                              {"value", "to_v"},
                                                              {"proj_attn", "to_out.0"},
                                                              {"group_norm", "group_norm"},
                                                              {"to_q", "to_q"},
                                                              {"to_k", "to_k"},
                                                              {"to_v", "to_v"}};
  if (name == "to_out") return "to_out." + rest;  // to_out.0.weight stays
  const auto it = kRenames.find(name);
  if (it == kRenames.end()) return std::nullopt;
  return it->second + "." + rest;
}

Result<std::string> ldmName(std::string_view key, int upBlocks) {
  const std::vector<std::string> p = split(key);
  const auto invalid = [&] {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("VAE key {} is not a known original-LDM name", key),
                     {{"key", std::string(key)}});
  };
  if (p.size() < 2) return invalid();
  if (p[0] == "quant_conv" || p[0] == "post_quant_conv") return std::string(key);
  if (p[0] != "encoder" && p[0] != "decoder") return invalid();
  const std::string& side = p[0];
  if (p[1] == "conv_in" || p[1] == "conv_out") return std::string(key);
  if (p[1] == "norm_out") return side + ".conv_norm_out." + join(p, 2);
  if (p[1] == "mid" && p.size() >= 4) {
    if (p[2] == "block_1" || p[2] == "block_2") {
      return fmt::format("{}.mid_block.resnets.{}.{}", side, p[2] == "block_1" ? 0 : 1,
                         resnetRest(p, 3));
    }
    if (p[2] == "attn_1") {
      const std::optional<std::string> rest = attentionRest(p[3], join(p, 4));
      if (!rest) return invalid();
      return side + ".mid_block.attentions.0." + *rest;
    }
    return invalid();
  }
  const bool up = side == "decoder" && p[1] == "up";
  const bool down = side == "encoder" && p[1] == "down";
  if ((up || down) && p.size() >= 5) {
    const std::optional<int> index = parseIndex(p[2]);
    if (!index || (up && *index >= upBlocks)) return invalid();
    const int block = up ? upBlocks - 1 - *index : *index;
    const std::string blocks = up ? "up_blocks" : "down_blocks";
    if (p[3] == "block") {
      const std::optional<int> resnet = parseIndex(p[4]);
      if (!resnet || p.size() < 6) return invalid();
      return fmt::format("{}.{}.{}.resnets.{}.{}", side, blocks, block, *resnet, resnetRest(p, 5));
    }
    if ((up && p[3] == "upsample") || (down && p[3] == "downsample")) {
      return fmt::format("{}.{}.{}.{}.0.{}", side, blocks, block,
                         up ? "upsamplers" : "downsamplers", join(p, 4));
    }
  }
  return invalid();
}

// Deprecated diffusers attention names inside "...attentions.<n>.".
std::string modernDiffusersName(std::string_view key) {
  const std::vector<std::string> p = split(key);
  for (std::size_t i = 0; i + 3 < p.size(); ++i) {
    if (p[i] != "attentions") continue;
    if (const std::optional<std::string> rest = attentionRest(p[i + 2], join(p, i + 3))) {
      return join(std::vector<std::string>(p.begin(), p.begin() + static_cast<long>(i) + 2), 0) +
             "." + *rest;
    }
  }
  return std::string(key);
}

bool isAttentionProjection(const std::string& name) {
  return name.find(".attentions.") != std::string::npos &&
         (name.ends_with(".to_q.weight") || name.ends_with(".to_k.weight") ||
          name.ends_with(".to_v.weight") || name.ends_with(".to_out.0.weight"));
}

Result<SourceTensor> fromSafeTensor(const std::string& key, const training::SafeTensor& tensor) {
  SourceTensor out;
  out.key = key;
  out.dtype = std::string(training::safeDtypeName(tensor.dtype));
  out.shape = tensor.shape;
  switch (tensor.dtype) {
    case training::SafeDtype::kF32:
    case training::SafeDtype::kF16:
    case training::SafeDtype::kBF16:
    case training::SafeDtype::kF64:
      out.values = tensor.toFloat();
      return out;
    default:
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("VAE tensor {} has dtype {}; a VAE's weights are floating point",
                                   key, out.dtype),
                       {{"key", key}});
  }
}

Result<SourceTensor> fromTorchTensor(const training::NamedTensor& tensor) {
  SourceTensor out;
  out.key = tensor.name;
  out.dtype = std::string(training::torchDtypeName(tensor.dtype));
  out.shape = tensor.shape;
  if (tensor.dtype == training::TorchDtype::kF64) {
    out.values.resize(tensor.data.size() / sizeof(double));
    for (std::size_t i = 0; i < out.values.size(); ++i) {
      double value = 0;
      std::memcpy(&value, tensor.data.data() + i * sizeof(double), sizeof(double));
      out.values[i] = static_cast<float>(value);
    }
    return out;
  }
  Result<std::vector<float>> widened = training::widenToFloat(tensor);
  if (!widened.ok()) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("VAE tensor {} has dtype {}; a VAE's weights are floating point",
                                 tensor.name, out.dtype),
                     {{"key", tensor.name}});
  }
  out.values = std::move(widened.value());
  return out;
}

Result<VaeWeights> readSafetensors(const fs::path& file) {
  ASSIGN_OR_RETURN(training::SafeTensorFile contents, training::readSafeTensorsFile(file));
  std::vector<std::string> keys;
  for (const auto& [key, tensor] : contents.tensors) keys.push_back(key);
  const std::string prefix = detectPrefix(keys);
  std::vector<SourceTensor> tensors;
  std::size_t ignored = 0;
  for (auto& [key, tensor] : contents.tensors) {
    const std::optional<std::string> relative = vaeRelativeKey(key, prefix);
    if (!relative) {
      ++ignored;
      continue;
    }
    ASSIGN_OR_RETURN(SourceTensor source, fromSafeTensor(*relative, tensor));
    tensor.data.clear();
    tensor.data.shrink_to_fit();
    tensors.push_back(std::move(source));
  }
  return normalizeVaeTensors(std::move(tensors), FileFormat::kSafetensors, prefix, ignored);
}

Result<VaeWeights> readTorch(const fs::path& file, FileFormat format) {
  ASSIGN_OR_RETURN(training::TorchCheckpoint checkpoint, training::TorchCheckpoint::open(file));
  std::vector<std::string> keys;
  for (const auto& layout : checkpoint.tensors()) keys.push_back(layout.name);
  const std::string prefix = detectPrefix(keys);
  std::vector<SourceTensor> tensors;
  std::size_t ignored = checkpoint.skipped().size();
  for (const auto& layout : checkpoint.tensors()) {
    const std::optional<std::string> relative = vaeRelativeKey(layout.name, prefix);
    if (!relative) {
      ++ignored;
      continue;
    }
    training::NamedTensor tensor = checkpoint.read(layout);
    tensor.name = *relative;
    ASSIGN_OR_RETURN(SourceTensor source, fromTorchTensor(tensor));
    tensors.push_back(std::move(source));
  }
  return normalizeVaeTensors(std::move(tensors), format, prefix, ignored);
}

}  // namespace

std::string_view fileFormatName(FileFormat format) {
  switch (format) {
    case FileFormat::kSafetensors:
      return "safetensors";
    case FileFormat::kPt:
      return "pt";
    case FileFormat::kCkpt:
      return "ckpt";
    case FileFormat::kBin:
      return "bin";
  }
  return "safetensors";
}

std::optional<FileFormat> parseFileFormat(std::string_view name) {
  if (name == "safetensors") return FileFormat::kSafetensors;
  if (name == "pt" || name == "pth") return FileFormat::kPt;
  if (name == "ckpt") return FileFormat::kCkpt;
  if (name == "bin") return FileFormat::kBin;
  return std::nullopt;
}

std::optional<FileFormat> formatFromExtension(const fs::path& file) {
  const std::string extension = file.extension().string();
  if (extension.size() < 2) return std::nullopt;
  return parseFileFormat(std::string_view(extension).substr(1));
}

std::string_view keyFormatName(KeyFormat format) {
  return format == KeyFormat::kLdm ? "ldm" : "diffusers";
}

bool VaeWeights::hasDecoder() const {
  return std::any_of(tensors.begin(), tensors.end(), [](const auto& item) {
    return item.first.starts_with("decoder.") || item.first.starts_with("post_quant_conv.");
  });
}

bool VaeWeights::hasEncoder() const {
  return std::any_of(tensors.begin(), tensors.end(), [](const auto& item) {
    return item.first.starts_with("encoder.") || item.first.starts_with("quant_conv.");
  });
}

std::string detectPrefix(const std::vector<std::string>& keys) {
  for (std::string_view prefix : {"first_stage_model.", "vae."}) {
    if (std::any_of(keys.begin(), keys.end(),
                    [&](const std::string& key) { return key.starts_with(prefix); })) {
      return std::string(prefix);
    }
  }
  return "";
}

std::optional<std::string> vaeRelativeKey(std::string_view key, std::string_view prefix) {
  if (!key.starts_with(prefix)) return std::nullopt;
  const std::string_view relative = key.substr(prefix.size());
  if (!hasVaeRoot(relative)) return std::nullopt;
  return std::string(relative);
}

KeyFormat detectKeyFormat(const std::vector<std::string>& relativeKeys) {
  const auto any = [&](auto predicate) {
    return std::any_of(relativeKeys.begin(), relativeKeys.end(), predicate);
  };
  if (any([](const std::string& key) {
        return key.find("up_blocks.") != std::string::npos ||
               key.find("down_blocks.") != std::string::npos ||
               key.find("mid_block.") != std::string::npos ||
               key.find("conv_norm_out.") != std::string::npos;
      })) {
    return KeyFormat::kDiffusers;
  }
  if (any([](const std::string& key) {
        return key.starts_with("decoder.up.") || key.starts_with("encoder.down.") ||
               key.find(".mid.") != std::string::npos || key.starts_with("decoder.norm_out.") ||
               key.starts_with("encoder.norm_out.");
      })) {
    return KeyFormat::kLdm;
  }
  return KeyFormat::kDiffusers;
}

Result<std::string> diffusersName(std::string_view relativeKey, KeyFormat format, int upBlocks) {
  if (format == KeyFormat::kLdm) return ldmName(relativeKey, upBlocks);
  return modernDiffusersName(relativeKey);
}

Result<VaeWeights> normalizeVaeTensors(std::vector<SourceTensor> tensors, FileFormat fileFormat,
                                       std::string prefix, std::size_t ignored) {
  if (tensors.empty()) {
    return makeError(
        ErrorCode::kInvalidArgument,
        "the file holds no VAE tensor (keys starting with encoder., decoder., quant_conv. or "
        "post_quant_conv., optionally under first_stage_model. or vae.)");
  }
  std::vector<std::string> keys;
  for (const SourceTensor& tensor : tensors) keys.push_back(tensor.key);
  VaeWeights weights;
  weights.fileFormat = fileFormat;
  weights.keyFormat = detectKeyFormat(keys);
  weights.prefix = std::move(prefix);
  weights.ignored = ignored;
  int upBlocks = 0;
  for (const std::string& key : keys) {
    const std::vector<std::string> parts = split(key);
    if (parts.size() > 2 && parts[0] == "decoder" && parts[1] == "up") {
      if (const std::optional<int> index = parseIndex(parts[2])) {
        upBlocks = std::max(upBlocks, *index + 1);
      }
    }
  }
  for (SourceTensor& tensor : tensors) {
    if (tensor.dtype != "F32" && tensor.dtype != "F16" && tensor.dtype != "BF16" &&
        tensor.dtype != "F64") {
      return makeError(ErrorCode::kInvalidArgument,
                       fmt::format("VAE tensor {} has dtype {}; a VAE's weights are floating point",
                                   tensor.key, tensor.dtype),
                       {{"key", tensor.key}});
    }
    ASSIGN_OR_RETURN(std::string name, diffusersName(tensor.key, weights.keyFormat, upBlocks));
    if (isAttentionProjection(name) && tensor.shape.size() == 4 && tensor.shape[2] == 1 &&
        tensor.shape[3] == 1) {
      tensor.shape.resize(2);
    }
    if (const auto it = weights.tensors.find(name); it != weights.tensors.end()) {
      return makeError(
          ErrorCode::kInvalidArgument,
          fmt::format("VAE keys {} and {} both name {}", it->second.sourceKey, tensor.key, name),
          {{"key", tensor.key}});
    }
    ++weights.dtypes[tensor.dtype];
    weights.parameters += tensor.values.size();
    VaeTensor out;
    out.shape = std::move(tensor.shape);
    out.values = std::move(tensor.values);
    out.sourceKey = weights.prefix + tensor.key;
    out.sourceDtype = std::move(tensor.dtype);
    weights.tensors.emplace(std::move(name), std::move(out));
  }
  return weights;
}

Result<VaeWeights> readVaeWeights(const fs::path& file, std::optional<FileFormat> format) {
  if (!format) format = formatFromExtension(file);
  if (!format) {
    return makeError(ErrorCode::kInvalidArgument,
                     fmt::format("{}: unknown VAE file type; expected .safetensors, .pt, .pth, "
                                 ".ckpt or .bin",
                                 file.filename().string()));
  }
  std::error_code error;
  if (!fs::is_regular_file(file, error)) {
    return makeError(ErrorCode::kNotFound, fmt::format("no VAE file at {}", file.string()));
  }
  if (*format == FileFormat::kSafetensors) return readSafetensors(file);
  return readTorch(file, *format);
}

}  // namespace deviceops::vae
