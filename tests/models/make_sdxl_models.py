#!/usr/bin/python3
"""Generates tiny SDXL suites (Optimum ONNX layout, real SDXL I/O signatures) for deviceops' tests.

Usage: make_sdxl_models.py [--bench] OUTPUT_DIR

Deterministic (fixed seeds). Run with Debian's python3 (python3-torch 1.13, python3-onnx 1.12,
python3-numpy). The models are a few hundred kilobytes each but have the exact input/output names,
types, ranks and widths of an Optimum export of SDXL (design notes: SDXL.md sections 2 and 4).
Every parameter is randomised, so no two initializers are merged by the exporter, and the
initializer names equal the torch state_dict keys (diffusers names in the VAE). Writes:

  OUTPUT_DIR/base/                StableDiffusionXLPipeline
    model_index.json, scheduler/scheduler_config.json (EulerDiscreteScheduler, leading spacing)
    tokenizer/, tokenizer_2/      toy CLIP tokenizers (clip_reference_tokenizer.py)
    text_encoder/model.onnx       input_ids int64 [batch,77] -> last_hidden_state [b,77,768],
                                  pooler_output [b,768], hidden_states.0 .. hidden_states.12
    text_encoder_2/model.onnx     input_ids int64 [b,77] -> text_embeds [b,1280],
                                  last_hidden_state [b,77,1280], hidden_states.0 .. .32
    unet/model.onnx (+ model.onnx_data, external data)
                                  sample [b,4,h,w], timestep f32 rank 0,
                                  encoder_hidden_states [b,77,2048], text_embeds [b,1280],
                                  time_ids [b,6] -> out_sample [b,4,h,w]  (h, w even)
    vae_decoder/model.onnx        latent_sample [b,4,h,w] -> sample [b,3,8h,8w]
    vae_encoder/model.onnx        sample [b,3,H,W] -> latent_parameters [b,8,H/8,W/8]
    */config.json                 the SDXL values of the real configs
  OUTPUT_DIR/refiner/             StableDiffusionXLImg2ImgPipeline (requires_aesthetics_score):
                                  tokenizer_2/, text_encoder_2/, vae_decoder/, vae_encoder/ and
                                  scheduler/ byte-identical to base's; unet with
                                  encoder_hidden_states [b,77,1280] and time_ids [b,5]
  OUTPUT_DIR/refiner_other_family/ the refiner layout (te2 and VAE copied from base) whose unet
                                  takes encoder_hidden_states [b,77,1024] and text_embeds
                                  [b,1024]: incompatible with text_encoder_2's 1280
  OUTPUT_DIR/vae_flat/model.onnx  a GroupNorm- and attention-free decoder (convolutions, SiLU and
                                  nearest upsampling), same I/O names as vae_decoder, and
                                  receptive_field.json {"latentRadius": R}: output pixel (y, x)
                                  does not depend on latent (i, j) when |i - y//8| > R or
                                  |j - x//8| > R (measured with autograd)
  OUTPUT_DIR/reference.json, reference_init_latents.npy, reference_final_latents.npy,
  reference_image.npy             the base pipeline run with the torch modules (same weights as
                                  the ONNX files), following diffusers' StableDiffusionXLPipeline:
                                  see reference.json's "recipe".

With --bench it writes only OUTPUT_DIR/sdxl-bench/base/ (for bench/generation_bench.cc, not the
tests): the base layout and I/O above, the same tokenizers, text encoders, scheduler and VAE
encoder, but a UNet with wider channels (BENCH_UNET: one call on a [2,4,32,32] latent costs tens
of milliseconds on two cores) and a VAE decoder with SDXL's shape of widths, scaled down
(BENCH_VAE_WIDTHS; one 256x256 decode costs about as much as one or two such UNet calls, as in
SDXL), and OUTPUT_DIR/sdxl-bench/bench.json with their parameter counts.
"""

import io
import json
import math
import os
import shutil
import sys
import time
import warnings

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_reference_tokenizer  # noqa: E402  (written beside this script)

OPSET = 14
CONTEXT_LENGTH = 77
TOY_VOCAB_SIZE = 1024  # the text encoders embed input_ids % 1024
TINY_WIDTH = 16  # transformer width inside the text encoders
VAE_SCALING_FACTOR = 0.13025
ADDITION_TIME_EMBED_DIM = 256  # the real SDXL value, used in the unet configs

# --------------------------------------------------------------------------------------------
# Parameter randomisation: every parameter gets distinct random values, so torch.onnx never
# deduplicates two equal initializers, and activations keep roughly unit scale through depth.


def randomise(module, seed):
    generator = torch.Generator().manual_seed(seed)
    norm_weights = {id(m.weight) for m in module.modules()
                    if isinstance(m, (nn.LayerNorm, nn.GroupNorm))}
    with torch.no_grad():
        for parameter in module.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if id(parameter) in norm_weights:
                parameter.copy_(1.0 + 0.1 * noise)
            elif parameter.dim() == 1:  # biases
                parameter.copy_(0.05 * noise)
            else:  # fan-in scaling: Linear [out,in], Conv [out,in,k,k], embeddings [n,width]
                parameter.copy_(noise / math.sqrt(parameter[0].numel()))
    module.eval()
    return module


# --------------------------------------------------------------------------------------------
# Shared building blocks


def multi_head_attention(query, key, value, heads, additive_mask=None):
    """query [b,Lq,W], key/value [b,Lk,W] -> [b,Lq,W]; batch and lengths stay dynamic."""
    batch = query.shape[0]
    head_width = query.shape[-1] // heads
    q = query.reshape(batch, -1, heads, head_width).transpose(1, 2)
    k = key.reshape(batch, -1, heads, head_width).transpose(1, 2)
    v = value.reshape(batch, -1, heads, head_width).transpose(1, 2)
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(head_width))
    if additive_mask is not None:
        scores = scores + additive_mask
    out = torch.matmul(torch.softmax(scores, dim=-1), v)
    return out.transpose(1, 2).reshape(batch, -1, heads * head_width)


def sinusoidal_embedding(values, width):
    """values [...] -> [..., width]: cat(sin, cos) of values * 10000^(-i/(width/2))."""
    half = width // 2
    exponents = torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / half)
    arguments = values.unsqueeze(-1) * torch.exp(exponents)
    return torch.cat([torch.sin(arguments), torch.cos(arguments)], dim=-1)


# --------------------------------------------------------------------------------------------
# Text encoders (CLIPTextModel / CLIPTextModelWithProjection signatures)


class TinyClipAttention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x, causal_mask):
        out = multi_head_attention(self.q_proj(x), self.k_proj(x), self.v_proj(x), self.heads,
                                   causal_mask)
        return self.out_proj(out)


class TinyClipLayer(nn.Module):
    """Pre-norm transformer layer as in CLIP (quick GELU MLP)."""

    def __init__(self, width, heads, mlp_width):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(width)
        self.self_attn = TinyClipAttention(width, heads)
        self.layer_norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, mlp_width)
        self.fc2 = nn.Linear(mlp_width, width)

    def forward(self, x, causal_mask):
        x = x + self.self_attn(self.layer_norm1(x), causal_mask)
        h = self.fc1(self.layer_norm2(x))
        return x + self.fc2(h * torch.sigmoid(1.702 * h))


class TinyClipTextEncoder(nn.Module):
    """input_ids [b,77] -> hidden states of width `hidden_size` (a shared Linear lifts the tiny
    16-wide states to the real width). Pooling takes the first position of argmax(input_ids), the
    EOS token, as CLIP does. With `projection_dim`, outputs (text_embeds, last_hidden_state,
    hidden_states...) like CLIPTextModelWithProjection, else (last_hidden_state, pooler_output,
    hidden_states...) like CLIPTextModel."""

    def __init__(self, layers, hidden_size, projection_dim=None):
        super().__init__()
        self.token_embedding = nn.Embedding(TOY_VOCAB_SIZE, TINY_WIDTH)
        self.position_embedding = nn.Parameter(torch.zeros(CONTEXT_LENGTH, TINY_WIDTH))
        self.layers = nn.ModuleList(
            [TinyClipLayer(TINY_WIDTH, 2, 2 * TINY_WIDTH) for _ in range(layers)])
        self.hidden_projection = nn.Linear(TINY_WIDTH, hidden_size)
        self.final_layer_norm = nn.LayerNorm(hidden_size)
        self.projection_dim = projection_dim
        if projection_dim is not None:
            self.pooled_layer_norm = nn.LayerNorm(TINY_WIDTH)
            self.text_projection = nn.Linear(TINY_WIDTH, projection_dim, bias=False)
        mask = torch.triu(torch.full((CONTEXT_LENGTH, CONTEXT_LENGTH), -1e9), diagonal=1)
        self.register_buffer("causal_mask", mask)

    def forward(self, input_ids):
        h = self.token_embedding(torch.fmod(input_ids, TOY_VOCAB_SIZE)) + self.position_embedding
        states = [h]
        for layer in self.layers:
            h = layer(h, self.causal_mask)
            states.append(h)
        hidden_states = [self.hidden_projection(state) for state in states]
        last_hidden_state = self.final_layer_norm(hidden_states[-1])
        # ArgMax on int32 as in transformers' CLIP export (no int64 ArgMax kernel in ORT).
        eos_position = input_ids.to(torch.int32).argmax(dim=-1)
        select = (torch.arange(CONTEXT_LENGTH).unsqueeze(0) == eos_position.unsqueeze(1))
        select = select.to(torch.float32).unsqueeze(-1)  # [b,77,1]
        if self.projection_dim is not None:
            pooled = (self.pooled_layer_norm(h) * select).sum(dim=1)
            return (self.text_projection(pooled), last_hidden_state, *hidden_states)
        pooler_output = (last_hidden_state * select).sum(dim=1)
        return (last_hidden_state, pooler_output, *hidden_states)


# --------------------------------------------------------------------------------------------
# UNet (UNet2DConditionModel signature with SDXL's text_time addition embedding)


class TinyResnet(nn.Module):
    def __init__(self, in_channels, out_channels, time_width, groups=8):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.time_emb_proj = nn.Linear(time_width, out_channels)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        self.conv_shortcut = (nn.Conv2d(in_channels, out_channels, 1)
                              if in_channels != out_channels else None)

    def forward(self, x, time_embedding):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(time_embedding)).unsqueeze(-1).unsqueeze(-1)
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.conv_shortcut is None else self.conv_shortcut(x)) + h


class TinyCrossAttention(nn.Module):
    def __init__(self, channels, context_width, inner_width=16, heads=2, groups=8):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.to_q = nn.Linear(channels, inner_width)
        self.to_k = nn.Linear(context_width, inner_width)
        self.to_v = nn.Linear(context_width, inner_width)
        self.to_out = nn.Linear(inner_width, channels)
        self.heads = heads

    def forward(self, x, context):
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # [b,hw,c]
        out = multi_head_attention(self.to_q(tokens), self.to_k(context), self.to_v(context),
                                   self.heads)
        return x + self.to_out(out).transpose(1, 2).reshape(x.shape)


class TinyUnet(nn.Module):
    """(sample [b,4,h,w], timestep [], encoder_hidden_states [b,77,C], text_embeds [b,E],
    time_ids [b,T]) -> out_sample [b,4,h,w]; h and w must be even."""

    def __init__(self, context_width, text_embeds_width, time_ids_count, channels=32,
                 time_width=64, attention_width=16, attention_heads=2):
        super().__init__()
        self.time_ids_count = time_ids_count
        self.time_embedding = nn.Sequential(nn.Linear(32, time_width), nn.SiLU(),
                                            nn.Linear(time_width, time_width))
        self.add_embedding = nn.Sequential(
            nn.Linear(text_embeds_width + 8 * time_ids_count, time_width), nn.SiLU(),
            nn.Linear(time_width, time_width))
        self.conv_in = nn.Conv2d(4, channels, 3, padding=1)
        self.down_resnet = TinyResnet(channels, channels, time_width)
        self.down_attention = TinyCrossAttention(channels, context_width, attention_width,
                                                 attention_heads)
        self.downsample = nn.Conv2d(channels, channels, 3, stride=2, padding=1)
        self.mid_resnet = TinyResnet(channels, channels, time_width)
        self.mid_attention = TinyCrossAttention(channels, context_width, attention_width,
                                                attention_heads)
        self.up_resnet = TinyResnet(2 * channels, channels, time_width)
        self.conv_norm_out = nn.GroupNorm(8, channels)
        self.conv_out = nn.Conv2d(channels, 4, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states, text_embeds, time_ids):
        time_embedding = self.time_embedding(sinusoidal_embedding(timestep, 32))  # [64]
        time_features = sinusoidal_embedding(time_ids, 8).flatten(1)  # [b,8T]
        added = self.add_embedding(torch.cat([text_embeds, time_features], dim=1))  # [b,64]
        embedding = time_embedding.unsqueeze(0) + added
        h = self.conv_in(sample)
        skip = self.down_attention(self.down_resnet(h, embedding), encoder_hidden_states)
        h = self.downsample(skip)
        h = self.mid_attention(self.mid_resnet(h, embedding), encoder_hidden_states)
        h = F.interpolate(h, scale_factor=2.0, mode="nearest")
        h = self.up_resnet(torch.cat([h, skip], dim=1), embedding)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


# --------------------------------------------------------------------------------------------
# VAE (AutoencoderKL layout with diffusers parameter names, tiny widths)

VAE_WIDTH = 16
VAE_GROUPS = 4


class VaeResnet(nn.Module):
    def __init__(self, channels, out_channels=None):
        super().__init__()
        out_channels = out_channels or channels
        self.norm1 = nn.GroupNorm(VAE_GROUPS, channels)
        self.conv1 = nn.Conv2d(channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(VAE_GROUPS, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if out_channels != channels:  # diffusers' name for the 1x1 projection of the residual
            self.conv_shortcut = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x):
        residual = self.conv_shortcut(x) if hasattr(self, "conv_shortcut") else x
        return residual + self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))


class VaeAttention(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.group_norm = nn.GroupNorm(VAE_GROUPS, channels)
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x):
        tokens = self.group_norm(x).flatten(2).transpose(1, 2)
        out = multi_head_attention(self.to_q(tokens), self.to_k(tokens), self.to_v(tokens), 1)
        return x + self.to_out[0](out).transpose(1, 2).reshape(x.shape)


class VaeMidBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.resnets = nn.ModuleList([VaeResnet(channels), VaeResnet(channels)])
        self.attentions = nn.ModuleList([VaeAttention(channels)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class VaeSampler(nn.Module):
    """Holds `conv` so that the parameter is named ...samplers.0.conv as in diffusers."""

    def __init__(self, channels, stride):
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(channels, channels, 3, stride=stride, padding=1 if stride == 1 else 0)

    def forward(self, x):
        if self.stride == 1:  # upsampler: nearest x2, then conv
            return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return self.conv(F.pad(x, (0, 1, 0, 1)))  # downsampler: diffusers' asymmetric pad


class VaeBlock(nn.Module):
    def __init__(self, channels, sampler_stride=None, resnet=True, out_channels=None):
        super().__init__()
        out_channels = out_channels or channels
        self.resnets = nn.ModuleList([VaeResnet(channels, out_channels)] if resnet else [])
        samplers = [] if sampler_stride is None else [VaeSampler(out_channels, sampler_stride)]
        if sampler_stride == 2:
            self.downsamplers = nn.ModuleList(samplers)
        else:
            self.upsamplers = nn.ModuleList(samplers)

    def forward(self, x):
        for resnet in self.resnets:
            x = resnet(x)
        for sampler in getattr(self, "downsamplers", getattr(self, "upsamplers", [])):
            x = sampler(x)
        return x


class VaeDecoderBody(nn.Module):
    """widths: the channels of the four up blocks (SDXL: 512, 512, 256, 128); the mid block runs
    at widths[0]; each of the first three blocks ends in a nearest x2 upsampler."""

    def __init__(self, widths=(VAE_WIDTH,) * 4):
        super().__init__()
        self.conv_in = nn.Conv2d(4, widths[0], 3, padding=1)
        self.mid_block = VaeMidBlock(widths[0])
        inputs = [widths[0]] + list(widths[:-1])
        self.up_blocks = nn.ModuleList(
            [VaeBlock(inputs[i], 1, out_channels=widths[i]) for i in range(3)] +
            [VaeBlock(inputs[3], out_channels=widths[3])])
        self.conv_norm_out = nn.GroupNorm(VAE_GROUPS, widths[3])
        self.conv_out = nn.Conv2d(widths[3], 3, 3, padding=1)

    def forward(self, z):
        h = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            h = block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class TinyVaeDecoder(nn.Module):
    """latent_sample [b,4,h,w] (already divided by the scaling factor) -> sample [b,3,8h,8w]."""

    def __init__(self, widths=(VAE_WIDTH,) * 4):
        super().__init__()
        self.post_quant_conv = nn.Conv2d(4, 4, 1)
        self.decoder = VaeDecoderBody(widths)

    def forward(self, latent_sample):
        return self.decoder(self.post_quant_conv(latent_sample))


class VaeEncoderBody(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_in = nn.Conv2d(3, VAE_WIDTH, 3, padding=1)
        self.down_blocks = nn.ModuleList(
            [VaeBlock(VAE_WIDTH, 2) for _ in range(3)] + [VaeBlock(VAE_WIDTH)])
        self.mid_block = VaeMidBlock(VAE_WIDTH)
        self.conv_norm_out = nn.GroupNorm(VAE_GROUPS, VAE_WIDTH)
        self.conv_out = nn.Conv2d(VAE_WIDTH, 8, 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for block in self.down_blocks:
            h = block(h)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(h))))


class TinyVaeEncoder(nn.Module):
    """sample [b,3,H,W] (H, W multiples of 8) -> latent_parameters [b,8,H/8,W/8] (mean, logvar)."""

    def __init__(self):
        super().__init__()
        self.encoder = VaeEncoderBody()
        self.quant_conv = nn.Conv2d(8, 8, 1)

    def forward(self, sample):
        return self.quant_conv(self.encoder(sample))


class FlatDecoderBody(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_in = nn.Conv2d(4, VAE_WIDTH, 3, padding=1)
        self.up_blocks = nn.ModuleList([VaeBlock(VAE_WIDTH, 1, resnet=False) for _ in range(3)])
        self.conv_out = nn.Conv2d(VAE_WIDTH, 3, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(z)
        for block in self.up_blocks:
            h = F.silu(block(h))
        return self.conv_out(h)


class FlatVaeDecoder(nn.Module):
    """GroupNorm- and attention-free decoder: its output has a finite latent receptive field."""

    def __init__(self):
        super().__init__()
        self.post_quant_conv = nn.Conv2d(4, 4, 1)
        self.decoder = FlatDecoderBody()

    def forward(self, latent_sample):
        return self.decoder(self.post_quant_conv(latent_sample))


# --------------------------------------------------------------------------------------------
# Export and files


def export_onnx(model, args, path, inputs, outputs, external_data=False):
    """Exports `model` with the declared signature: `inputs` and `outputs` are lists of
    (name, dims), a str dim being a dynamic axis of that name and an int a fixed size. The
    declared dims replace what the exporter inferred (it loses the 77 behind dynamic reshapes)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    dynamic_axes = {name: {axis: dim for axis, dim in enumerate(dims) if isinstance(dim, str)}
                    for name, dims in inputs + outputs}
    buffer = io.BytesIO()
    torch.onnx.export(model, args, buffer, opset_version=OPSET,
                      input_names=[name for name, _ in inputs],
                      output_names=[name for name, _ in outputs], dynamic_axes=dynamic_axes,
                      do_constant_folding=False)
    proto = onnx.load_from_string(buffer.getvalue())
    declared = dict(inputs + outputs)
    for value in list(proto.graph.input) + list(proto.graph.output):
        shape = value.type.tensor_type.shape
        if len(shape.dim) != len(declared[value.name]):
            raise RuntimeError("%s: %s has rank %d" % (path, value.name, len(shape.dim)))
        for dim, size in zip(shape.dim, declared[value.name]):
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size
    onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
    if external_data:
        data_path = path + "_data"
        if os.path.exists(data_path):
            os.remove(data_path)
        onnx.save(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=os.path.basename(data_path))
    else:
        onnx.save(proto, path)
    onnx.checker.check_model(path)  # a path, so external data is checked too


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def copy_component(source_dir, target_dir):
    """Byte-identical copy of a component folder (the suite code shares identical files)."""
    if os.path.exists(target_dir):
        shutil.rmtree(target_dir)
    shutil.copytree(source_dir, target_dir)


def export_text_encoder(model, directory, output_names, hidden_size, config):
    widths = {"pooler_output": [hidden_size], "text_embeds": [config.get("projection_dim")]}
    outputs = [(name, ["batch"] + widths.get(name, [CONTEXT_LENGTH, hidden_size]))
               for name in output_names]
    export_onnx(model, (torch.zeros(2, CONTEXT_LENGTH, dtype=torch.int64),),
                os.path.join(directory, "model.onnx"), [("input_ids", ["batch", CONTEXT_LENGTH])],
                outputs)
    write_json(os.path.join(directory, "config.json"), config)


def make_text_encoders(base_dir):
    te1 = randomise(TinyClipTextEncoder(12, 768), seed=11)
    te1_outputs = ["last_hidden_state", "pooler_output"] + [
        "hidden_states.%d" % i for i in range(13)]
    export_text_encoder(te1, os.path.join(base_dir, "text_encoder"), te1_outputs, 768, {
        "architectures": ["CLIPTextModel"], "model_type": "clip_text_model",
        "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
        "intermediate_size": 3072, "max_position_embeddings": 77, "vocab_size": 49408,
        "projection_dim": 768, "hidden_act": "quick_gelu", "bos_token_id": 0,
        "eos_token_id": 2, "pad_token_id": 1, "torch_dtype": "float32"})

    te2 = randomise(TinyClipTextEncoder(32, 1280, projection_dim=1280), seed=12)
    te2_outputs = ["text_embeds", "last_hidden_state"] + [
        "hidden_states.%d" % i for i in range(33)]
    export_text_encoder(te2, os.path.join(base_dir, "text_encoder_2"), te2_outputs, 1280, {
        "architectures": ["CLIPTextModelWithProjection"], "model_type": "clip_text_model",
        "hidden_size": 1280, "num_hidden_layers": 32, "num_attention_heads": 20,
        "intermediate_size": 5120, "max_position_embeddings": 77, "vocab_size": 49408,
        "projection_dim": 1280, "hidden_act": "gelu", "bos_token_id": 0, "eos_token_id": 2,
        "pad_token_id": 1, "torch_dtype": "float32"})
    return te1, te2


def make_unet(directory, context_width, text_embeds_width, time_ids_count, seed, **sizes):
    """sizes: TinyUnet's channels, time_width, attention_width, attention_heads."""
    unet = randomise(TinyUnet(context_width, text_embeds_width, time_ids_count, **sizes), seed=seed)
    example = (torch.randn(2, 4, 8, 8), torch.tensor(500.0),
               torch.randn(2, CONTEXT_LENGTH, context_width), torch.randn(2, text_embeds_width),
               torch.randn(2, time_ids_count))
    spatial = ["batch", 4, "height", "width"]
    export_onnx(unet, example, os.path.join(directory, "model.onnx"),
                [("sample", spatial), ("timestep", []),
                 ("encoder_hidden_states", ["batch", CONTEXT_LENGTH, context_width]),
                 ("text_embeds", ["batch", text_embeds_width]),
                 ("time_ids", ["batch", time_ids_count])], [("out_sample", spatial)],
                external_data=True)
    write_json(os.path.join(directory, "config.json"), {
        "_class_name": "UNet2DConditionModel", "in_channels": 4, "out_channels": 4,
        "sample_size": 128, "cross_attention_dim": context_width,
        "addition_embed_type": "text_time", "addition_time_embed_dim": ADDITION_TIME_EMBED_DIM,
        "projection_class_embeddings_input_dim":
            text_embeds_width + ADDITION_TIME_EMBED_DIM * time_ids_count})
    return unet


def vae_config():
    return {"_class_name": "AutoencoderKL", "in_channels": 3, "out_channels": 3,
            "latent_channels": 4, "sample_size": 1024, "scaling_factor": VAE_SCALING_FACTOR,
            "force_upcast": True, "block_out_channels": [128, 256, 512, 512],
            "layers_per_block": 2, "norm_num_groups": 32}


LATENT_DIMS = ["batch", 4, "latent_height", "latent_width"]
IMAGE_DIMS = ["batch", 3, "height", "width"]


def export_vae_decoder(decoder, path):
    export_onnx(decoder, (torch.randn(1, 4, 8, 8),), path, [("latent_sample", LATENT_DIMS)],
                [("sample", IMAGE_DIMS)])


def make_vae(base_dir, decoder_widths=(VAE_WIDTH,) * 4, decoder_seed=21):
    decoder = randomise(TinyVaeDecoder(decoder_widths), seed=decoder_seed)
    export_vae_decoder(decoder, os.path.join(base_dir, "vae_decoder", "model.onnx"))
    write_json(os.path.join(base_dir, "vae_decoder", "config.json"), vae_config())
    encoder = randomise(TinyVaeEncoder(), seed=22)
    export_onnx(encoder, (torch.randn(1, 3, 64, 64),),
                os.path.join(base_dir, "vae_encoder", "model.onnx"), [("sample", IMAGE_DIMS)],
                [("latent_parameters", ["batch", 8, "latent_height", "latent_width"])])
    write_json(os.path.join(base_dir, "vae_encoder", "config.json"), vae_config())
    return decoder


def latent_receptive_radius(decoder, size=17):
    """Largest |i - y//8| (and the same for columns) over latent pixels (i, j) that output pixels
    (y, x) depend on; measured with autograd around the centre latent cell."""
    centre = size // 2
    latent = torch.randn(1, 4, size, size, requires_grad=True)
    out = decoder(latent)
    weights = torch.rand(out.shape[0], out.shape[1], 8, 8) + 0.5
    cell = out[:, :, 8 * centre:8 * centre + 8, 8 * centre:8 * centre + 8]
    (cell * weights).sum().backward()
    reached = latent.grad.abs().sum(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(reached, as_tuple=True)
    radius = int(max((rows - centre).abs().max(), (cols - centre).abs().max()))
    if radius >= centre:
        raise RuntimeError("receptive field does not fit the probe latent")
    return radius


def make_vae_flat(out_dir):
    decoder = randomise(FlatVaeDecoder(), seed=23)
    directory = os.path.join(out_dir, "vae_flat")
    export_vae_decoder(decoder, os.path.join(directory, "model.onnx"))
    write_json(os.path.join(directory, "config.json"), vae_config())
    write_json(os.path.join(directory, "receptive_field.json"),
               {"latentRadius": latent_receptive_radius(decoder)})


SCHEDULER_CONFIG = {
    "_class_name": "EulerDiscreteScheduler", "beta_start": 0.00085, "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "num_train_timesteps": 1000, "timestep_spacing": "leading",
    "steps_offset": 1, "prediction_type": "epsilon", "interpolation_type": "linear",
    "use_karras_sigmas": False, "clip_sample": False, "set_alpha_to_one": False,
    "skip_prk_steps": True, "sample_max_value": 1.0, "trained_betas": None}


def model_index(class_name, with_first_encoder, **flags):
    transformers_pair = (lambda cls: ["transformers", cls]) if with_first_encoder else (
        lambda cls: [None, None])
    index = {
        "_class_name": class_name, "_diffusers_version": "0.21.0",
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": transformers_pair("CLIPTextModel"),
        "tokenizer": transformers_pair("CLIPTokenizer"),
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"]}
    index.update(flags)
    return index


def make_refiner(out_dir, base_dir, name, context_width, seed):
    directory = os.path.join(out_dir, name)
    for component in ["tokenizer_2", "text_encoder_2", "vae_decoder", "vae_encoder", "scheduler"]:
        copy_component(os.path.join(base_dir, component), os.path.join(directory, component))
    make_unet(os.path.join(directory, "unet"), context_width, context_width, 5, seed)
    write_json(os.path.join(directory, "model_index.json"),
               model_index("StableDiffusionXLImg2ImgPipeline", False,
                           requires_aesthetics_score=True, force_zeros_for_empty_prompt=False))


# --------------------------------------------------------------------------------------------
# Reference generation (diffusers StableDiffusionXLPipeline with EulerDiscreteScheduler)

REFERENCE = {"prompt": "a photo of a cat", "negativePrompt": "", "width": 64, "height": 64,
             "steps": 4, "guidanceScale": 5.0, "scheduler": "euler", "timestepSpacing": "leading"}


def euler_leading_schedule(steps):
    """Timesteps, sigmas (with the final 0) and init_noise_sigma, float32 as in diffusers."""
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    training_sigmas = (((1 - alphas_cumprod) / alphas_cumprod) ** 0.5).numpy()
    step_ratio = 1000 // steps
    timesteps = (np.arange(0, steps) * step_ratio).round()[::-1].copy().astype(np.float32) + 1
    sigmas = np.interp(timesteps, np.arange(0, 1000), training_sigmas)
    sigmas = np.concatenate([sigmas, [0.0]]).astype(np.float32)
    init_noise_sigma = float((np.float32(sigmas.max()) ** 2 + 1) ** 0.5)
    return timesteps, sigmas, init_noise_sigma


def encode_prompt_ids(tokenizer_dir, text):
    ids = clip_reference_tokenizer.encode(tokenizer_dir, text)
    return torch.tensor([list(ids)], dtype=torch.int64)


def make_reference(out_dir, base_dir, te1, te2, unet, decoder):
    ids1 = encode_prompt_ids(os.path.join(base_dir, "tokenizer"), REFERENCE["prompt"])
    ids2 = encode_prompt_ids(os.path.join(base_dir, "tokenizer_2"), REFERENCE["prompt"])
    if ids1.shape != (1, CONTEXT_LENGTH) or ids2.shape != (1, CONTEXT_LENGTH):
        raise RuntimeError("the reference tokenizer must give 77 ids")
    with torch.no_grad():
        te1_out = te1(ids1)
        te2_out = te2(ids2)
        # hidden_states.11 is output 2 + 11 of te1; hidden_states.31 is output 2 + 31 of te2.
        prompt_embeds = torch.cat([te1_out[2 + 11], te2_out[2 + 31]], dim=-1)  # [1,77,2048]
        pooled = te2_out[0]  # [1,1280]
        # force_zeros_for_empty_prompt: an empty negative prompt gives zero embeddings.
        context = torch.cat([torch.zeros_like(prompt_embeds), prompt_embeds])
        text_embeds = torch.cat([torch.zeros_like(pooled), pooled])
        size = float(REFERENCE["height"]), float(REFERENCE["width"])
        time_ids = torch.tensor([[size[0], size[1], 0.0, 0.0, size[0], size[1]]] * 2)

        timesteps, sigmas, init_noise_sigma = euler_leading_schedule(REFERENCE["steps"])
        init_latents = np.random.RandomState(0).normal(
            size=(1, 4, REFERENCE["height"] // 8, REFERENCE["width"] // 8)).astype(np.float32)
        latents = torch.from_numpy(init_latents) * init_noise_sigma
        guidance = REFERENCE["guidanceScale"]
        for k, t in enumerate(timesteps):
            sigma = torch.tensor(sigmas[k])
            model_input = torch.cat([latents] * 2) / ((sigma**2 + 1) ** 0.5)
            noise = unet(model_input, torch.tensor(t), context, text_embeds, time_ids)
            uncond, cond = noise.chunk(2)
            noise = uncond + guidance * (cond - uncond)
            denoised = latents - sigma * noise
            derivative = (latents - denoised) / sigma
            latents = latents + derivative * (torch.tensor(sigmas[k + 1]) - sigma)
        decoded = decoder(latents / VAE_SCALING_FACTOR)
        image = torch.clamp(decoded / 2 + 0.5, 0.0, 1.0)

    np.save(os.path.join(out_dir, "reference_init_latents.npy"), init_latents)
    np.save(os.path.join(out_dir, "reference_final_latents.npy"), latents.numpy())
    np.save(os.path.join(out_dir, "reference_image.npy"), image.numpy())
    reference = dict(REFERENCE)
    reference.update({
        "suite": "base", "inputIds": ids1[0].tolist(), "inputIds2": ids2[0].tolist(),
        "timesteps": [float(t) for t in timesteps], "sigmas": [float(s) for s in sigmas],
        "initNoiseSigma": init_noise_sigma, "timeIds": time_ids[0].tolist(),
        "initLatents": "reference_init_latents.npy",
        "finalLatents": "reference_final_latents.npy", "image": "reference_image.npy",
        "recipe": [
            "context = concat(text_encoder hidden_states.11, text_encoder_2 hidden_states.31)"
            " [1,77,2048]; pooled = text_encoder_2 text_embeds",
            "empty negative prompt with force_zeros_for_empty_prompt: zero context and pooled",
            "latents = initLatents * initNoiseSigma",
            "per step k: input = cat([latents]*2) / sqrt(sigma_k^2+1); eps = unet(input,"
            " timestep=t_k (f32, rank 0), [uncond; cond] context, text_embeds, timeIds x2);"
            " eps = eps_u + guidanceScale*(eps_c - eps_u);"
            " latents += eps * (sigma_{k+1} - sigma_k)",
            "finalLatents = latents; image = clamp(vae_decoder(latents / 0.13025)/2 + 0.5, 0, 1)",
        ]})
    write_json(os.path.join(out_dir, "reference.json"), reference)


# --------------------------------------------------------------------------------------------
# Bench-size base suite (--bench)

# One UNet call on a [2,4,32,32] latent (a 256x256 image with guidance): ~20-60 ms on 2 cores.
BENCH_UNET = {"channels": 160, "time_width": 256, "attention_width": 160, "attention_heads": 2}
# SDXL's decoder widths are 512, 512, 256, 128 (mid block at 512); these keep the ratios.
BENCH_VAE_WIDTHS = (64, 64, 32, 16)


def parameter_count(module):
    return sum(parameter.numel() for parameter in module.parameters())


def make_bench_suite(out_dir):
    bench_dir = os.path.join(out_dir, "sdxl-bench")
    base_dir = os.path.join(bench_dir, "base")
    os.makedirs(base_dir, exist_ok=True)
    clip_reference_tokenizer.write_toy_tokenizer(os.path.join(base_dir, "tokenizer"),
                                                 "<|endoftext|>")
    clip_reference_tokenizer.write_toy_tokenizer(os.path.join(base_dir, "tokenizer_2"), "!")
    write_json(os.path.join(base_dir, "scheduler", "scheduler_config.json"), SCHEDULER_CONFIG)
    write_json(os.path.join(base_dir, "model_index.json"),
               model_index("StableDiffusionXLPipeline", True, force_zeros_for_empty_prompt=True))
    te1, te2 = make_text_encoders(base_dir)
    unet = make_unet(os.path.join(base_dir, "unet"), 2048, 1280, 6, seed=41, **BENCH_UNET)
    decoder = make_vae(base_dir, BENCH_VAE_WIDTHS, decoder_seed=42)
    write_json(os.path.join(bench_dir, "bench.json"), {
        "unet": dict(BENCH_UNET, parameters=parameter_count(unet)),
        "vaeDecoder": {"widths": list(BENCH_VAE_WIDTHS), "parameters": parameter_count(decoder)},
        "textEncoderParameters": [parameter_count(te1), parameter_count(te2)]})
    return bench_dir


# --------------------------------------------------------------------------------------------


def describe(path):
    model = onnx.load(path, load_external_data=False)

    def signature(values):
        parts = []
        for value in values:
            tensor = value.type.tensor_type
            dims = [d.dim_param or str(d.dim_value) for d in tensor.shape.dim]
            parts.append("%s %s[%s]" % (value.name, onnx.TensorProto.DataType.Name(
                tensor.elem_type).lower(), ",".join(dims)))
        return parts

    outputs = signature(model.graph.output)
    if len(outputs) > 4:
        outputs = outputs[:3] + ["... %d outputs ..." % (len(outputs) - 4), outputs[-1]]
    return "%s\n    in:  %s\n    out: %s" % (path, "; ".join(signature(model.graph.input)),
                                            "; ".join(outputs))


def main(argv):
    bench = len(argv) == 3 and argv[1] == "--bench"
    if len(argv) != 2 and not bench:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    started = time.monotonic()
    # The exporter's tracer and shape-inference notes are expected here; keep the build log short.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.")
    torch.manual_seed(0)
    out_dir = argv[-1]
    if bench:
        out_dir = make_bench_suite(out_dir)
        return report_sizes(out_dir, "SDXL bench models", started)
    base_dir = os.path.join(out_dir, "base")
    os.makedirs(base_dir, exist_ok=True)

    clip_reference_tokenizer.write_toy_tokenizer(os.path.join(base_dir, "tokenizer"),
                                                 "<|endoftext|>")
    clip_reference_tokenizer.write_toy_tokenizer(os.path.join(base_dir, "tokenizer_2"), "!")
    write_json(os.path.join(base_dir, "scheduler", "scheduler_config.json"), SCHEDULER_CONFIG)
    write_json(os.path.join(base_dir, "model_index.json"),
               model_index("StableDiffusionXLPipeline", True, force_zeros_for_empty_prompt=True))
    te1, te2 = make_text_encoders(base_dir)
    unet = make_unet(os.path.join(base_dir, "unet"), 2048, 1280, 6, seed=31)
    decoder = make_vae(base_dir)
    make_refiner(out_dir, base_dir, "refiner", 1280, seed=32)
    make_refiner(out_dir, base_dir, "refiner_other_family", 1024, seed=33)
    make_vae_flat(out_dir)
    make_reference(out_dir, base_dir, te1, te2, unet, decoder)
    return report_sizes(out_dir, "SDXL test models", started)


def report_sizes(out_dir, title, started):
    total = 0
    for root, directories, files in os.walk(out_dir):
        directories.sort()
        for name in sorted(files):
            total += os.path.getsize(os.path.join(root, name))
            if name == "model.onnx":
                print(describe(os.path.join(root, name)))
    print("%s: %.1f MB in %s, %.1f s" % (title, total / 1e6, out_dir, time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
