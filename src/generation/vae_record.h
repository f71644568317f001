// A custom VAE registered with a suite (issue 14): where its weights came from, what they held,
// and the suite's VAE decoder/encoder with those weights written in (files the daemon owns,
// loaded through the inference registry like any suite component). The suite's own VAE is the
// pseudo-entry named "stock" (kStockVae), never stored.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "generation/suite.h"

namespace deviceops::generation {

inline constexpr std::string_view kStockVae = "stock";

struct VaeRecord {
  std::string name;
  // {"path": string|null, "uploaded": bool, "format": "safetensors"|"pt"|"ckpt"|"bin",
  //  "sha256": hex, "sizeBytes": n}
  nlohmann::json source = nlohmann::json::object();
  std::string keyFormat = "diffusers";  // "diffusers" | "ldm"
  std::string prefix;                   // stripped from the file's keys
  std::size_t tensors = 0;
  std::uint64_t parameters = 0;
  std::map<std::string, std::size_t> dtypes;  // source dtype -> tensors
  Component decoder;                          // role kVaeDecoder, the patched model
  std::optional<Component> encoder;           // when the file held encoder weights
  std::size_t decoderPatched = 0, encoderPatched = 0;
  double patchMs = 0;
  std::chrono::system_clock::time_point createdAt;
  // From the last comparison: {"psnr", "ssim", "rank", "comparedAt"}; null before one.
  nlohmann::json quality = nullptr;
};

// The store's form (everything; components with their metadata).
nlohmann::json toJson(const VaeRecord& record);
// kInternal when it does not parse (a corrupt row).
Result<VaeRecord> vaeRecordFromJson(const nlohmann::json& json);

}  // namespace deviceops::generation
