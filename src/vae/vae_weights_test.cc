// VAE key normalisation (prefixes, LDM -> diffusers, deprecated names, squeezing) and the probes.
#include "vae/vae_weights.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "vae/probes.h"

namespace deviceops::vae {
namespace {

SourceTensor tensor(std::string key, std::vector<std::int64_t> shape, std::string dtype = "F32") {
  SourceTensor out;
  out.key = std::move(key);
  out.dtype = std::move(dtype);
  out.shape = shape;
  std::int64_t count = 1;
  for (std::int64_t dim : shape) count *= dim;
  out.values.assign(static_cast<std::size_t>(count), 0.5f);
  return out;
}

TEST(VaeKeys, PrefixesSelectTheVaeOfAFullCheckpoint) {
  EXPECT_EQ(detectPrefix({"model.diffusion_model.x", "first_stage_model.decoder.conv_in.weight"}),
            "first_stage_model.");
  EXPECT_EQ(detectPrefix({"vae.decoder.conv_in.weight"}), "vae.");
  EXPECT_EQ(detectPrefix({"decoder.conv_in.weight"}), "");
  EXPECT_EQ(vaeRelativeKey("first_stage_model.decoder.conv_in.weight", "first_stage_model."),
            "decoder.conv_in.weight");
  EXPECT_FALSE(vaeRelativeKey("model.diffusion_model.input_blocks.0.weight", "first_stage_model."));
  EXPECT_FALSE(vaeRelativeKey("first_stage_model.loss.logvar", "first_stage_model."));
  EXPECT_FALSE(vaeRelativeKey("text_model.embeddings.weight", ""));
  EXPECT_EQ(vaeRelativeKey("post_quant_conv.bias", ""), "post_quant_conv.bias");
}

TEST(VaeKeys, LdmNamesMapToDiffusersWithTheDecoderReversed) {
  const std::map<std::string, std::string> expected = {
      {"decoder.up.3.block.0.conv1.weight", "decoder.up_blocks.0.resnets.0.conv1.weight"},
      {"decoder.up.0.block.2.nin_shortcut.bias",
       "decoder.up_blocks.3.resnets.2.conv_shortcut.bias"},
      {"decoder.up.1.upsample.conv.weight", "decoder.up_blocks.2.upsamplers.0.conv.weight"},
      {"encoder.down.0.block.1.norm2.weight", "encoder.down_blocks.0.resnets.1.norm2.weight"},
      {"encoder.down.2.downsample.conv.bias", "encoder.down_blocks.2.downsamplers.0.conv.bias"},
      {"decoder.mid.block_1.norm1.bias", "decoder.mid_block.resnets.0.norm1.bias"},
      {"encoder.mid.block_2.conv2.weight", "encoder.mid_block.resnets.1.conv2.weight"},
      {"decoder.mid.attn_1.norm.weight", "decoder.mid_block.attentions.0.group_norm.weight"},
      {"decoder.mid.attn_1.q.weight", "decoder.mid_block.attentions.0.to_q.weight"},
      {"encoder.mid.attn_1.proj_out.bias", "encoder.mid_block.attentions.0.to_out.0.bias"},
      {"decoder.norm_out.weight", "decoder.conv_norm_out.weight"},
      {"decoder.conv_in.weight", "decoder.conv_in.weight"},
      {"quant_conv.weight", "quant_conv.weight"},
      {"post_quant_conv.bias", "post_quant_conv.bias"},
  };
  for (const auto& [ldm, diffusers] : expected) {
    Result<std::string> mapped = diffusersName(ldm, KeyFormat::kLdm, 4);
    ASSERT_TRUE(mapped.ok()) << ldm << ": " << mapped.error().message;
    EXPECT_EQ(*mapped, diffusers) << ldm;
  }
  EXPECT_FALSE(diffusersName("decoder.up.4.block.0.conv1.weight", KeyFormat::kLdm, 4).ok());
  EXPECT_FALSE(diffusersName("decoder.sideways.0.weight", KeyFormat::kLdm, 4).ok());
  EXPECT_FALSE(diffusersName("decoder.mid.attn_1.rel_pos.weight", KeyFormat::kLdm, 4).ok());
}

TEST(VaeKeys, KeyFormatIsDetectedWhateverTheKeyOrder) {
  // "conv_norm_out" sorts before "up_blocks" and contains "norm_out": still diffusers.
  EXPECT_EQ(detectKeyFormat({"decoder.conv_norm_out.bias", "decoder.up_blocks.0.resnets.0.x"}),
            KeyFormat::kDiffusers);
  EXPECT_EQ(detectKeyFormat({"decoder.conv_norm_out.bias"}), KeyFormat::kDiffusers);
  EXPECT_EQ(detectKeyFormat({"decoder.conv_in.bias", "decoder.norm_out.weight"}), KeyFormat::kLdm);
  EXPECT_EQ(detectKeyFormat({"encoder.down.0.block.0.conv1.weight"}), KeyFormat::kLdm);
  EXPECT_EQ(detectKeyFormat({"decoder.conv_in.bias", "post_quant_conv.weight"}),
            KeyFormat::kDiffusers);
}

TEST(VaeKeys, DeprecatedDiffusersAttentionNamesAreModernised) {
  EXPECT_EQ(*diffusersName("decoder.mid_block.attentions.0.query.weight", KeyFormat::kDiffusers, 4),
            "decoder.mid_block.attentions.0.to_q.weight");
  EXPECT_EQ(
      *diffusersName("encoder.mid_block.attentions.0.proj_attn.bias", KeyFormat::kDiffusers, 4),
      "encoder.mid_block.attentions.0.to_out.0.bias");
  EXPECT_EQ(
      *diffusersName("decoder.mid_block.attentions.0.to_out.0.bias", KeyFormat::kDiffusers, 4),
      "decoder.mid_block.attentions.0.to_out.0.bias");
  EXPECT_EQ(*diffusersName("decoder.up_blocks.1.resnets.0.conv1.weight", KeyFormat::kDiffusers, 4),
            "decoder.up_blocks.1.resnets.0.conv1.weight");
}

TEST(VaeKeys, NormaliseDetectsLdmSqueezesAttentionAndCountsDtypes) {
  std::vector<SourceTensor> tensors;
  for (int i = 0; i < 4; ++i) {
    tensors.push_back(tensor("decoder.up." + std::to_string(i) + ".block.0.conv1.bias", {2}));
  }
  tensors.push_back(tensor("decoder.mid.attn_1.k.weight", {3, 3, 1, 1}, "F16"));
  tensors.push_back(tensor("decoder.mid.attn_1.k.bias", {3}, "BF16"));
  tensors.push_back(tensor("decoder.conv_in.weight", {3, 4, 3, 3}, "F16"));
  Result<VaeWeights> weights =
      normalizeVaeTensors(std::move(tensors), FileFormat::kCkpt, "first_stage_model.", 5);
  ASSERT_TRUE(weights.ok()) << weights.error().message;
  EXPECT_EQ(weights->keyFormat, KeyFormat::kLdm);
  EXPECT_EQ(weights->ignored, 5u);
  ASSERT_TRUE(weights->tensors.count("decoder.mid_block.attentions.0.to_k.weight"));
  EXPECT_EQ(weights->tensors.at("decoder.mid_block.attentions.0.to_k.weight").shape,
            (std::vector<std::int64_t>{3, 3}));
  // A 1x1 convolution outside attention keeps its rank; up.3 is up_blocks.0.
  EXPECT_EQ(weights->tensors.at("decoder.up_blocks.0.resnets.0.conv1.bias").sourceKey,
            "first_stage_model.decoder.up.3.block.0.conv1.bias");
  EXPECT_EQ(weights->dtypes.at("F16"), 2u);
  EXPECT_EQ(weights->dtypes.at("BF16"), 1u);
  EXPECT_EQ(weights->parameters, 4u * 2 + 9 + 3 + 108);
  EXPECT_TRUE(weights->hasDecoder());
  EXPECT_FALSE(weights->hasEncoder());
}

TEST(VaeKeys, RefusesIntegersCollisionsAndEmptyFiles) {
  std::vector<SourceTensor> integers = {tensor("decoder.conv_in.weight", {2}, "I64")};
  Result<VaeWeights> refused = normalizeVaeTensors(std::move(integers), FileFormat::kPt, "", 0);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("decoder.conv_in.weight"), std::string::npos);

  std::vector<SourceTensor> twice = {tensor("decoder.mid_block.attentions.0.query.weight", {2, 2}),
                                     tensor("decoder.mid_block.attentions.0.to_q.weight", {2, 2})};
  Result<VaeWeights> collision = normalizeVaeTensors(std::move(twice), FileFormat::kBin, "", 0);
  ASSERT_FALSE(collision.ok());
  EXPECT_NE(collision.error().message.find("both name"), std::string::npos);

  EXPECT_FALSE(normalizeVaeTensors({}, FileFormat::kSafetensors, "", 3).ok());
}

TEST(VaeKeys, FileFormatsAndMissingFiles) {
  EXPECT_EQ(formatFromExtension("a/vae.safetensors"), FileFormat::kSafetensors);
  EXPECT_EQ(formatFromExtension("vae.ckpt"), FileFormat::kCkpt);
  EXPECT_EQ(formatFromExtension("vae.pth"), FileFormat::kPt);
  EXPECT_EQ(formatFromExtension("diffusion_pytorch_model.bin"), FileFormat::kBin);
  EXPECT_FALSE(formatFromExtension("vae.onnx"));
  EXPECT_FALSE(formatFromExtension("vae"));
  Result<VaeWeights> unknown = readVaeWeights("/nonexistent/vae.onnx");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::kInvalidArgument);
  Result<VaeWeights> missing = readVaeWeights("/nonexistent/vae.safetensors");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
}

TEST(VaeProbes, SyntheticProbesAreDeterministicInRangeAndDistinct) {
  const std::vector<Probe> probes = syntheticProbes(32);
  ASSERT_EQ(probes.size(), 6u);
  const std::vector<Probe> again = syntheticProbes(32);
  for (std::size_t i = 0; i < probes.size(); ++i) {
    EXPECT_EQ(probes[i].image.height, 32);
    EXPECT_EQ(probes[i].image.data.size(), 3u * 32 * 32);
    EXPECT_EQ(probes[i].image.data, again[i].image.data) << probes[i].name;
    float low = 1, high = -1;
    for (float value : probes[i].image.data) {
      ASSERT_TRUE(std::isfinite(value));
      low = std::min(low, value);
      high = std::max(high, value);
    }
    EXPECT_GE(low, -1.0f) << probes[i].name;
    EXPECT_LE(high, 1.0f) << probes[i].name;
    EXPECT_GT(high - low, 0.5f) << probes[i].name << " has too little contrast to probe anything";
    for (std::size_t j = 0; j < i; ++j) EXPECT_NE(probes[i].image.data, probes[j].image.data);
  }
}

TEST(VaeProbes, UserImagesMustBePngs) {
  Result<Probe> bad = probeFromPng("x.png", "not a png", 64);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("x.png"), std::string::npos);
}

}  // namespace
}  // namespace deviceops::vae
