#!/usr/bin/python3
"""Exports a VAE (AutoencoderKL) to ONNX with initializer names equal to diffusers' parameter names.

Usage:
  export_vae.py --weights FILE [--config config.json] --output DIR [--parts decoder,encoder]
                [--save-weights FILE.safetensors]
  export_vae.py --random-weights SEED [--config config.json] --output DIR
                [--parts decoder,encoder] [--save-weights FILE.safetensors]

deviceops applies custom VAE weights to an ONNX decoder by initializer name (docs: SDXL.md section
5). Third-party exports fold GroupNorm and attention weights into anonymous constants; this script
re-exports the project's own AutoencoderKL module (diffusers parameter names, SDXL's configuration
by default) with constant folding off, so every initializer is named after its state_dict key.
Needs Debian's python3 with python3-torch (1.13) and python3-onnx; no diffusers or safetensors.

--weights FILE   .safetensors (read here with numpy), or .pt/.ckpt/.bin (torch.load with
                 weights_only=True: nothing in the file is executed). A top-level "state_dict" is
                 used when present. Keys lose a "first_stage_model." or "vae." prefix; other keys
                 are kept only under encoder./decoder./quant_conv./post_quant_conv. (so a full
                 checkpoint's UNet and text encoders are ignored). Original LDM names and
                 deprecated diffusers attention names (query/key/value/proj_attn) are mapped to
                 current diffusers names; F16/BF16 tensors are widened to float32.
--random-weights SEED
                 deterministic random weights (distinct values, activations of unit scale).
--config FILE    diffusers-like AutoencoderKL config.json. Keys: block_out_channels
                 [128,256,512,512], layers_per_block 2, decoder_layers_per_block (resnets per
                 decoder up block; default layers_per_block + 1), norm_num_groups 32, norm_eps
                 1e-6, latent_channels 4, in_channels 3, out_channels 3, scaling_factor 0.13025,
                 sample_size 1024, force_upcast true (SDXL's values are the defaults). Other
                 diffusers keys are checked where they change the architecture (act_fn, block
                 types, mid_block_add_attention, use_quant_conv, use_post_quant_conv).
--parts LIST     decoder and/or encoder (default: the decoder, plus the encoder when the weights
                 hold one).
--save-weights F also write the weights used as F32 safetensors with diffusers keys.
--external-data  store the initializers beside model.onnx (automatic above 2 GB).

Writes DIR/vae_decoder/model.onnx (latent_sample [batch,L,h,w] -> sample [batch,3,fh,fw], f = 2 to
the number of blocks minus one, 8 for SDXL), DIR/vae_encoder/model.onnx (sample [batch,3,H,W] ->
latent_parameters [batch,2L,H/f,W/f], mean then log-variance) when exported, and config.json
beside each. Prints one JSON line: {"decoder", "encoder", "parameters", "keyFormat", ...}.

Exit status: 0 on success; 2 for unusable input (unreadable file, bad config, a missing,
unexpected or mis-shaped key: the message names the key and both shapes); 1 when the exported
model fails onnx.checker or an initializer is not named after a state_dict key.
"""

import argparse
import json
import math
import os
import re
import struct
import sys
import tempfile
import warnings

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

OPSET = 14
EXTERNAL_DATA_THRESHOLD_BYTES = 2_000_000_000  # protobuf's limit is 2 GiB; keep a margin

SDXL_CONFIG = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4,
    "block_out_channels": [128, 256, 512, 512], "layers_per_block": 2,
    "decoder_layers_per_block": None,  # None: layers_per_block + 1, as in diffusers
    "norm_num_groups": 32, "norm_eps": 1e-6, "scaling_factor": 0.13025, "sample_size": 1024,
    "force_upcast": True}

# Keys of a diffusers config.json that must hold these values for this module to be equivalent.
REQUIRED_VALUES = {"act_fn": "silu", "mid_block_add_attention": True, "use_quant_conv": True,
                   "use_post_quant_conv": True}
VAE_NAMESPACES = ("encoder.", "decoder.", "quant_conv.", "post_quant_conv.")
STRIPPED_PREFIXES = ("first_stage_model.", "vae.")


class ExportError(Exception):
    """A failure reported to the user with an exit status (2: bad input, 1: bad export)."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# Configuration


def load_config(path=None, overrides=None):
    """SDXL's configuration updated with the JSON file at `path` and `overrides`; validated."""
    config = dict(SDXL_CONFIG)
    supplied = {}
    if path is not None:
        try:
            with open(path) as f:
                supplied = json.load(f)
        except (OSError, ValueError) as error:
            raise ExportError("cannot read config %s: %s" % (path, error))
        if not isinstance(supplied, dict):
            raise ExportError("config %s is not a JSON object" % path)
    supplied.update(overrides or {})
    for key, value in supplied.items():
        if key in config:
            config[key] = value
        elif key in REQUIRED_VALUES and value != REQUIRED_VALUES[key]:
            raise ExportError("config: %s = %r is not supported (only %r)" %
                              (key, value, REQUIRED_VALUES[key]))
    for key, block_type in (("down_block_types", "DownEncoderBlock2D"),
                            ("up_block_types", "UpDecoderBlock2D")):
        if any(value != block_type for value in supplied.get(key, [])):
            raise ExportError("config: %s must all be %s" % (key, block_type))
    if config["decoder_layers_per_block"] is None:
        config["decoder_layers_per_block"] = config["layers_per_block"] + 1
    widths = config["block_out_channels"]
    if not isinstance(widths, list) or not widths or any(
            not isinstance(w, int) or w <= 0 for w in widths):
        raise ExportError("config: block_out_channels must be a list of positive integers")
    for key in ("in_channels", "out_channels", "latent_channels", "layers_per_block",
                "decoder_layers_per_block", "norm_num_groups"):
        if not isinstance(config[key], int) or config[key] <= 0:
            raise ExportError("config: %s must be a positive integer" % key)
    if any(w % config["norm_num_groups"] for w in widths):
        raise ExportError("config: norm_num_groups %d does not divide block_out_channels %s" %
                          (config["norm_num_groups"], widths))
    if not isinstance(config["norm_eps"], (int, float)) or config["norm_eps"] <= 0:
        raise ExportError("config: norm_eps must be a positive number")
    return config


def diffusers_config(config):
    """config.json written beside the exported models (diffusers' AutoencoderKL keys)."""
    blocks = len(config["block_out_channels"])
    out = {"_class_name": "AutoencoderKL", "act_fn": "silu",
           "down_block_types": ["DownEncoderBlock2D"] * blocks,
           "up_block_types": ["UpDecoderBlock2D"] * blocks}
    out.update(config)
    return out


# --------------------------------------------------------------------------------------------
# The module (diffusers' AutoencoderKL parameter names and arithmetic)


def single_head_attention(query, key, value):
    """query/key/value [b,n,C] -> softmax(q k^T / sqrt(C)) v, one head of the full width."""
    heads = 1  # written as multi-head code so the graph equals the tiny test suite's
    batch, width = query.shape[0], query.shape[-1] // heads
    q = query.reshape(batch, -1, heads, width).transpose(1, 2)
    k = key.reshape(batch, -1, heads, width).transpose(1, 2)
    v = value.reshape(batch, -1, heads, width).transpose(1, 2)
    scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(width))
    out = torch.matmul(torch.softmax(scores, dim=-1), v)
    return out.transpose(1, 2).reshape(batch, -1, heads * width)


class Resnet(nn.Module):
    """norm1, SiLU, conv1, norm2, SiLU, conv2, plus the input (1x1 conv_shortcut when widths
    differ)."""

    def __init__(self, channels, out_channels, config):
        super().__init__()
        groups, eps = config["norm_num_groups"], config["norm_eps"]
        self.norm1 = nn.GroupNorm(groups, channels, eps=eps)
        self.conv1 = nn.Conv2d(channels, out_channels, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, out_channels, eps=eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
        if out_channels != channels:
            self.conv_shortcut = nn.Conv2d(channels, out_channels, 1)

    def forward(self, x):
        residual = self.conv_shortcut(x) if hasattr(self, "conv_shortcut") else x
        return residual + self.conv2(F.silu(self.norm2(self.conv1(F.silu(self.norm1(x))))))


class Attention(nn.Module):
    """Self-attention over the pixels, one head of the full width, with a residual."""

    def __init__(self, channels, config):
        super().__init__()
        self.group_norm = nn.GroupNorm(config["norm_num_groups"], channels, eps=config["norm_eps"])
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        self.to_out = nn.ModuleList([nn.Linear(channels, channels)])

    def forward(self, x):
        tokens = self.group_norm(x).flatten(2).transpose(1, 2)  # [b,hw,C]
        out = single_head_attention(self.to_q(tokens), self.to_k(tokens), self.to_v(tokens))
        return x + self.to_out[0](out).transpose(1, 2).reshape(x.shape)


class MidBlock(nn.Module):
    def __init__(self, channels, config):
        super().__init__()
        self.resnets = nn.ModuleList([Resnet(channels, channels, config) for _ in range(2)])
        self.attentions = nn.ModuleList([Attention(channels, config)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class Upsampler(nn.Module):
    """Nearest x2, then a 3x3 convolution (padding 1)."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Downsampler(nn.Module):
    """Zero pad right and bottom by one, then a 3x3 convolution with stride 2 (no padding)."""

    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class ResnetBlock(nn.Module):
    """`count` resnets (the first one changes the width), then an optional sampler named
    downsamplers.0 or upsamplers.0."""

    def __init__(self, channels, out_channels, count, sampler, config):
        super().__init__()
        self.resnets = nn.ModuleList(
            [Resnet(channels if i == 0 else out_channels, out_channels, config)
             for i in range(count)])
        if sampler == "down":
            self.downsamplers = nn.ModuleList([Downsampler(out_channels)])
        elif sampler == "up":
            self.upsamplers = nn.ModuleList([Upsampler(out_channels)])

    def forward(self, x):
        for resnet in self.resnets:
            x = resnet(x)
        for sampler in getattr(self, "downsamplers", getattr(self, "upsamplers", [])):
            x = sampler(x)
        return x


class Encoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        widths = config["block_out_channels"]
        groups, eps = config["norm_num_groups"], config["norm_eps"]
        self.conv_in = nn.Conv2d(config["in_channels"], widths[0], 3, padding=1)
        inputs = [widths[0]] + widths[:-1]
        last = len(widths) - 1
        self.down_blocks = nn.ModuleList(
            [ResnetBlock(inputs[i], widths[i], config["layers_per_block"],
                         "down" if i < last else None, config) for i in range(len(widths))])
        self.mid_block = MidBlock(widths[-1], config)
        self.conv_norm_out = nn.GroupNorm(groups, widths[-1], eps=eps)
        self.conv_out = nn.Conv2d(widths[-1], 2 * config["latent_channels"], 3, padding=1)

    def forward(self, x):
        h = self.conv_in(x)
        for block in self.down_blocks:
            h = block(h)
        return self.conv_out(F.silu(self.conv_norm_out(self.mid_block(h))))


class Decoder(nn.Module):
    def __init__(self, config):
        super().__init__()
        widths = list(reversed(config["block_out_channels"]))
        groups, eps = config["norm_num_groups"], config["norm_eps"]
        self.conv_in = nn.Conv2d(config["latent_channels"], widths[0], 3, padding=1)
        self.mid_block = MidBlock(widths[0], config)
        inputs = [widths[0]] + widths[:-1]
        last = len(widths) - 1
        self.up_blocks = nn.ModuleList(
            [ResnetBlock(inputs[i], widths[i], config["decoder_layers_per_block"],
                         "up" if i < last else None, config) for i in range(len(widths))])
        self.conv_norm_out = nn.GroupNorm(groups, widths[-1], eps=eps)
        self.conv_out = nn.Conv2d(widths[-1], config["out_channels"], 3, padding=1)

    def forward(self, z):
        h = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            h = block(h)
        return self.conv_out(F.silu(self.conv_norm_out(h)))


class VaeDecoder(nn.Module):
    """latent_sample [b,L,h,w] (already divided by scaling_factor) -> sample [b,out,fh,fw]."""

    def __init__(self, post_quant_conv, decoder):
        super().__init__()
        self.post_quant_conv = post_quant_conv
        self.decoder = decoder

    def forward(self, latent_sample):
        return self.decoder(self.post_quant_conv(latent_sample))


class VaeEncoder(nn.Module):
    """sample [b,in,H,W] -> latent_parameters [b,2L,H/f,W/f] (mean, then log-variance)."""

    def __init__(self, encoder, quant_conv):
        super().__init__()
        self.encoder = encoder
        self.quant_conv = quant_conv

    def forward(self, sample):
        return self.quant_conv(self.encoder(sample))


class AutoencoderKL(nn.Module):
    """state_dict keys: encoder.*, quant_conv.*, post_quant_conv.*, decoder.* (diffusers names).
    `decoder_part` and `encoder_part` share these parameters and are what gets exported."""

    def __init__(self, config):
        super().__init__()
        latent = config["latent_channels"]
        self.config = dict(config)
        self.encoder = Encoder(config)
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1)
        self.post_quant_conv = nn.Conv2d(latent, latent, 1)
        self.decoder = Decoder(config)

    def decoder_part(self):
        return VaeDecoder(self.post_quant_conv, self.decoder)

    def encoder_part(self):
        return VaeEncoder(self.encoder, self.quant_conv)

    def encode(self, sample):
        return self.quant_conv(self.encoder(sample))

    def decode(self, latent_sample):
        return self.decoder(self.post_quant_conv(latent_sample))

    def downsampling_factor(self):
        return 2 ** (len(self.config["block_out_channels"]) - 1)


def is_decoder_key(key):
    return key.startswith("decoder.") or key.startswith("post_quant_conv.")


def is_encoder_key(key):
    return key.startswith("encoder.") or key.startswith("quant_conv.")


def randomise(module, seed):
    """Distinct random values for every parameter (the exporter never merges two), with unit-scale
    activations: norm weights 1 + 0.1 n, biases 0.05 n, other weights n / sqrt(fan-in)."""
    generator = torch.Generator().manual_seed(seed)
    norm_weights = {id(m.weight) for m in module.modules() if isinstance(m, nn.GroupNorm)}
    with torch.no_grad():
        for parameter in module.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if id(parameter) in norm_weights:
                parameter.copy_(1.0 + 0.1 * noise)
            elif parameter.dim() == 1:
                parameter.copy_(0.05 * noise)
            else:
                parameter.copy_(noise / math.sqrt(parameter[0].numel()))
    return module


# --------------------------------------------------------------------------------------------
# safetensors (8-byte little-endian header length, JSON header, then the raw little-endian data)

SAFETENSORS_DTYPES = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2")}


def bfloat16_bits_to_float32(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def read_safetensors_header(path):
    """(header dict without __metadata__, metadata dict, offset of the data section)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) != 8:
            raise ExportError("%s: not a safetensors file (shorter than 8 bytes)" % path)
        (header_length,) = struct.unpack("<Q", prefix)
        if header_length > size - 8:
            raise ExportError("%s: header length %d exceeds the file" % (path, header_length))
        try:
            header = json.loads(f.read(header_length).decode("utf-8"))
        except ValueError as error:
            raise ExportError("%s: bad safetensors header: %s" % (path, error))
    if not isinstance(header, dict):
        raise ExportError("%s: the safetensors header is not a JSON object" % path)
    metadata = header.pop("__metadata__", None) or {}
    return header, metadata, 8 + header_length


def read_safetensors(path, wanted=lambda key: True):
    """{key: float32 array} for the keys `wanted` accepts, and {key: dtype name}."""
    header, _, data_start = read_safetensors_header(path)
    data_size = os.path.getsize(path) - data_start
    tensors, dtypes = {}, {}
    with open(path, "rb") as f:
        for key, entry in header.items():
            if not wanted(key):
                continue
            dtype_name = entry.get("dtype")
            if dtype_name not in SAFETENSORS_DTYPES:
                raise ExportError("%s: tensor %s has dtype %s (only F32, F16, BF16)" %
                                  (path, key, dtype_name))
            dtype = SAFETENSORS_DTYPES[dtype_name]
            shape = [int(d) for d in entry.get("shape", [])]
            begin, end = (int(v) for v in entry.get("data_offsets", [-1, -1]))
            if not 0 <= begin <= end <= data_size or (
                    end - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize):
                raise ExportError("%s: tensor %s has bad data_offsets %s for shape %s" %
                                  (path, key, [begin, end], shape))
            f.seek(data_start + begin)
            values = np.frombuffer(f.read(end - begin), dtype=dtype).reshape(shape)
            tensors[key] = (bfloat16_bits_to_float32(values) if dtype_name == "BF16" else
                            values.astype(np.float32))
            dtypes[key] = dtype_name
    return tensors, dtypes


def write_safetensors(path, tensors, metadata=None):
    """tensors: {key: float32 or float16 numpy array}, written in the given order."""
    names = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}
    header, chunks, offset = {}, [], 0
    for key, array in tensors.items():
        array = np.ascontiguousarray(array)
        if array.dtype not in names:
            raise ValueError("%s: cannot write dtype %s" % (key, array.dtype))
        data = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": names[array.dtype], "shape": list(array.shape),
                       "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the data section starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for chunk in chunks:
            f.write(chunk)


# --------------------------------------------------------------------------------------------
# Reading weights and mapping names

TORCH_DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}


def strip_prefix(key):
    """The VAE-relative key, or None when the key is not part of a VAE (e.g. a checkpoint's
    model.diffusion_model.* or first_stage_model.loss.*)."""
    for prefix in STRIPPED_PREFIXES:
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    return key if key.startswith(VAE_NAMESPACES) else None


def read_torch_file(path):
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds (pickle, zip, RuntimeError)
        raise ExportError("cannot read %s with torch.load(weights_only=True): %s" % (path, error))
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise ExportError("%s holds a %s, not a dict of tensors" % (path, type(loaded).__name__))
    tensors, dtypes = {}, {}
    for key, value in loaded.items():
        if not isinstance(key, str) or not torch.is_tensor(value) or strip_prefix(key) is None:
            continue
        if value.dtype not in TORCH_DTYPE_NAMES:
            raise ExportError("%s: tensor %s has dtype %s (only float32, float16, bfloat16)" %
                              (path, key, value.dtype))
        tensors[key] = value.to(torch.float32).contiguous().numpy()
        dtypes[key] = TORCH_DTYPE_NAMES[value.dtype]
    return tensors, dtypes, len(loaded)


LDM_KEY = re.compile(r"^(decoder\.up\.\d+\.(block|upsample)|encoder\.down\.\d+\.(block|downsample)|"
                     r"(en|de)coder\.(mid\.|norm_out\.))")
ATTENTION_RENAMES = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v",
                     "proj_out": "to_out.0"}
DEPRECATED_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v",
                        "proj_attn": "to_out.0"}


def ldm_to_diffusers(key, blocks):
    """One original-LDM key (prefix stripped) in diffusers' naming; `blocks` is the number of
    resolution levels (decoder.up.{blocks-1-i} is up_blocks.i). Unknown keys come back unchanged."""
    match = re.match(r"^decoder\.up\.(\d+)\.(.*)$", key)
    if match and int(match.group(1)) < blocks:
        rest = re.sub(r"^block\.(\d+)\.", r"resnets.\1.", match.group(2))
        rest = re.sub(r"^upsample\.conv\.", "upsamplers.0.conv.", rest)
        key = "decoder.up_blocks.%d.%s" % (blocks - 1 - int(match.group(1)), rest)
    key = re.sub(r"^encoder\.down\.(\d+)\.block\.(\d+)\.", r"encoder.down_blocks.\1.resnets.\2.",
                 key)
    key = re.sub(r"^encoder\.down\.(\d+)\.downsample\.conv\.",
                 r"encoder.down_blocks.\1.downsamplers.0.conv.", key)
    key = re.sub(r"^(encoder|decoder)\.mid\.block_([12])\.",
                 lambda m: "%s.mid_block.resnets.%d." % (m.group(1), int(m.group(2)) - 1), key)
    key = re.sub(r"^(encoder|decoder)\.mid\.attn_1\.(norm|q|k|v|proj_out)\.",
                 lambda m: "%s.mid_block.attentions.0.%s." % (
                     m.group(1), ATTENTION_RENAMES[m.group(2)]), key)
    key = re.sub(r"\.nin_shortcut\.", ".conv_shortcut.", key)
    return re.sub(r"^(encoder|decoder)\.norm_out\.", r"\1.conv_norm_out.", key)


def rename_deprecated_attention(key):
    return re.sub(r"\.mid_block\.attentions\.0\.(query|key|value|proj_attn)\.",
                  lambda m: ".mid_block.attentions.0.%s." % DEPRECATED_ATTENTION[m.group(1)], key)


def normalise_keys(tensors, blocks):
    """{file key: array} -> ({diffusers key: array}, "ldm" | "diffusers", ignored key count).
    Attention projections stored as 1x1 convolutions [C,C,1,1] become Linear weights [C,C]."""
    stripped = {}
    for key, array in tensors.items():
        short = strip_prefix(key)
        if short is not None:
            stripped[short] = array
    ignored = len(tensors) - len(stripped)
    key_format = "ldm" if any(LDM_KEY.match(key) for key in stripped) else "diffusers"
    out = {}
    for key, array in stripped.items():
        name = ldm_to_diffusers(key, blocks) if key_format == "ldm" else key
        name = rename_deprecated_attention(name)
        if re.search(r"\.attentions\.0\.(to_q|to_k|to_v|to_out\.0)\.weight$", name) and (
                array.ndim == 4 and array.shape[2:] == (1, 1)):
            array = array[:, :, 0, 0]
        if name in out:
            raise ExportError("two keys map to %s (a file mixing naming schemes?)" % name)
        out[name] = array
    return out, key_format, ignored


def read_weights(path, blocks):
    """Reads a weights file: {diffusers key: float32 array} plus a description
    {"keyFormat", "dtypes" (sorted names), "ignoredKeys" (count), "holdsEncoder"}."""
    if not os.path.isfile(path):
        raise ExportError("no such file: %s" % path)
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    if is_zip or os.path.splitext(path)[1] in (".pt", ".pth", ".ckpt", ".bin"):
        tensors, dtypes, total = read_torch_file(path)
    else:
        tensors, dtypes = read_safetensors(path, lambda key: strip_prefix(key) is not None)
        total = len(read_safetensors_header(path)[0])
    weights, key_format, ignored = normalise_keys(tensors, blocks)
    if not weights:
        raise ExportError("%s holds no VAE tensors (keys under %s, optionally prefixed %s)" %
                          (path, ", ".join(VAE_NAMESPACES), " or ".join(STRIPPED_PREFIXES)))
    return weights, {"keyFormat": key_format, "dtypes": sorted(set(dtypes.values())),
                     "ignoredKeys": ignored + total - len(tensors),
                     "holdsEncoder": any(is_encoder_key(key) for key in weights)}


def shape_text(shape):
    return "[%s]" % ",".join(str(d) for d in shape)


def load_into(vae, weights, parts):
    """Copies `weights` ({diffusers key: array}) into `vae`. Every key of each part in `parts`
    must be present with its shape; keys of the VAE namespaces that the module lacks are errors."""
    expected = {key: tuple(value.shape) for key, value in vae.state_dict().items()}
    problems = []
    for key in sorted(weights):
        if key not in expected:
            problems.append("unexpected key %s %s (does the config match the weights?)" %
                            (key, shape_text(weights[key].shape)))
    for key, shape in expected.items():
        needed = ("decoder" in parts and is_decoder_key(key)) or (
            "encoder" in parts and is_encoder_key(key))
        if key not in weights:
            if needed:
                problems.append("missing key %s (expected shape %s)" % (key, shape_text(shape)))
        elif tuple(weights[key].shape) != shape:
            problems.append("key %s has shape %s in the weights but the config expects %s" %
                            (key, shape_text(weights[key].shape), shape_text(shape)))
    if problems:
        shown = problems[:20] + (["... %d more" % (len(problems) - 20)] if len(problems) > 20
                                 else [])
        raise ExportError("the weights do not fit the VAE (%d problems; is --config the weights' "
                          "configuration?):\n  %s" % (len(problems), "\n  ".join(shown)))
    with torch.no_grad():
        for key, parameter in vae.state_dict().items():
            if key in weights:
                parameter.copy_(torch.from_numpy(np.array(weights[key], dtype=np.float32)))


# --------------------------------------------------------------------------------------------
# ONNX export


def export_onnx(module, example, path, inputs, outputs, fold_constants=False, external_data=None):
    """Exports `module` at opset 14 with the declared signature (`inputs`, `outputs`: lists of
    (name, dims), a str dim being a dynamic axis on inputs and outputs alike) and returns the
    saved ModelProto (without external data). Without constant folding the export runs in
    training mode, where torch.onnx merges only initializers that share storage (in eval mode it
    merges equal-valued ones, which would lose names); the module has no mode-dependent layer.
    external_data None: only when the initializers exceed 2 GB."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    dynamic_axes = {name: {axis: dim for axis, dim in enumerate(dims) if isinstance(dim, str)}
                    for name, dims in inputs + outputs}
    was_training = module.training
    module.train(not fold_constants)
    try:
        with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as scratch:
            raw_path = os.path.join(scratch, "model.onnx")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tracer notes about shape arithmetic
                torch.onnx.export(
                    module, example, raw_path, opset_version=OPSET,
                    input_names=[name for name, _ in inputs],
                    output_names=[name for name, _ in outputs], dynamic_axes=dynamic_axes,
                    do_constant_folding=fold_constants,
                    training=(torch.onnx.TrainingMode.EVAL if fold_constants else
                              torch.onnx.TrainingMode.PRESERVE))
            proto = onnx.load(raw_path)  # also loads external data torch wrote for > 2 GB
    finally:
        module.train(was_training)
    declared = dict(inputs + outputs)
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.name not in declared or len(dims) != len(declared[value.name]):
            raise ExportError("%s: unexpected graph value %s" % (path, value.name), status=1)
        for dim, size in zip(dims, declared[value.name]):
            if isinstance(size, str):
                dim.dim_param = size
            else:
                dim.dim_value = size
    size = sum(len(t.raw_data) for t in proto.graph.initializer)
    if external_data is None:
        external_data = size > EXTERNAL_DATA_THRESHOLD_BYTES
    data_path = path + "_data"
    if os.path.exists(data_path):
        os.remove(data_path)
    if external_data:
        onnx.save(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=os.path.basename(data_path), size_threshold=0)
    else:
        onnx.save(proto, path)
    try:
        onnx.checker.check_model(path)  # a path, so external data is checked too
        onnx.shape_inference.infer_shapes_path(path, path + ".inferred")
    except Exception as error:  # onnx raises ValidationError / InferenceError
        raise ExportError("%s fails the ONNX checks: %s" % (path, error), status=1)
    finally:
        if os.path.exists(path + ".inferred"):
            os.remove(path + ".inferred")
    return onnx.load(path, load_external_data=False)


def verify_initializer_names(proto, module, path):
    """Every initializer must be a state_dict key of `module` with its shape, and every key an
    initializer (a merged one would lose its name)."""
    state = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    names = {t.name: tuple(t.dims) for t in proto.graph.initializer}
    stray = sorted(name for name in names if name not in state)
    lost = sorted(key for key in state if key not in names)
    mis_shaped = sorted(k for k in names if k in state and names[k] != state[k])
    if stray or lost or mis_shaped:
        raise ExportError("%s: initializers do not match the state_dict (not keys: %s; missing: "
                          "%s; other shapes: %s)" % (path, stray[:5], lost[:5], mis_shaped[:5]),
                          status=1)


def export_decoder(vae, path, external_data=None):
    latent = vae.config["latent_channels"]
    part = vae.decoder_part()
    proto = export_onnx(part, (torch.randn(1, latent, 8, 8),), path,
                        [("latent_sample", ["batch", latent, "latent_height", "latent_width"])],
                        [("sample", ["batch", vae.config["out_channels"], "height", "width"])],
                        external_data=external_data)
    verify_initializer_names(proto, part, path)
    return proto


def export_encoder(vae, path, external_data=None):
    latent, factor = vae.config["latent_channels"], vae.downsampling_factor()
    part = vae.encoder_part()
    proto = export_onnx(part, (torch.randn(1, vae.config["in_channels"], 8 * factor, 8 * factor),),
                        path, [("sample", ["batch", vae.config["in_channels"], "height", "width"])],
                        [("latent_parameters",
                          ["batch", 2 * latent, "latent_height", "latent_width"])],
                        external_data=external_data)
    verify_initializer_names(proto, part, path)
    return proto


def write_json(path, value):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


# --------------------------------------------------------------------------------------------
# Command line


def parse_parts(text):
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or any(p not in ("decoder", "encoder") for p in parts):
        raise ExportError("--parts takes decoder and/or encoder, comma-separated, not %r" % text)
    return set(parts)


def run(args):
    config = load_config(args.config)
    vae = AutoencoderKL(config)
    if args.random_weights is not None:
        randomise(vae, args.random_weights)
        described = {"keyFormat": "diffusers", "dtypes": ["F32"], "ignoredKeys": 0,
                     "holdsEncoder": True}
        source = "random seed %d" % args.random_weights
        parts = parse_parts(args.parts or "decoder,encoder")
    else:
        weights, described = read_weights(args.weights, len(config["block_out_channels"]))
        source = args.weights
        parts = parse_parts(args.parts or (
            "decoder,encoder" if described["holdsEncoder"] else "decoder"))
        if "encoder" in parts and not described["holdsEncoder"]:
            raise ExportError("--parts names the encoder but %s holds none" % args.weights)
        load_into(vae, weights, parts)
    vae.eval()

    summary = {"decoder": None, "encoder": None, "parameters": 0,
               "keyFormat": described["keyFormat"], "weights": source,
               "dtypes": described["dtypes"], "ignoredKeys": described["ignoredKeys"]}
    external = True if args.external_data else None
    for part in ("decoder", "encoder"):
        if part not in parts:
            continue
        directory = os.path.join(args.output, "vae_" + part)
        path = os.path.join(directory, "model.onnx")
        (export_decoder if part == "decoder" else export_encoder)(vae, path, external)
        write_json(os.path.join(directory, "config.json"), diffusers_config(config))
        summary[part] = path
        module = vae.decoder_part() if part == "decoder" else vae.encoder_part()
        summary["parameters"] += sum(p.numel() for p in module.parameters())
    if args.save_weights:
        state = vae.state_dict()
        write_safetensors(args.save_weights,
                          {key: value.numpy() for key, value in state.items()
                           if ("decoder" in parts and is_decoder_key(key)) or
                           ("encoder" in parts and is_encoder_key(key))},
                          {"format": "pt", "source": source})
        summary["savedWeights"] = args.save_weights
    print(json.dumps(summary, sort_keys=True))


def main(argv):
    parser = argparse.ArgumentParser(
        description="Export a VAE to ONNX with diffusers-named initializers.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help=".safetensors, .pt, .ckpt or .bin")
    source.add_argument("--random-weights", type=int, metavar="SEED")
    parser.add_argument("--config", help="AutoencoderKL config.json (default: SDXL's)")
    parser.add_argument("--output", required=True, metavar="DIR")
    parser.add_argument("--parts", help="decoder,encoder (default: what the weights hold)")
    parser.add_argument("--save-weights", metavar="FILE.safetensors")
    parser.add_argument("--external-data", action="store_true")
    args = parser.parse_args(argv[1:])
    try:
        torch.set_grad_enabled(False)
        run(args)
    except ExportError as error:
        print("export_vae.py: %s" % error, file=sys.stderr)
        return error.status
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
