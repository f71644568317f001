#!/usr/bin/python3
"""Reference outputs for onnx_export_test.cc, computed with torch.nn (not with ONNX).

Usage: onnx_reference.py CASE_DIR [CASE_DIR ...]

Each CASE_DIR holds:
  layers.json          the layer list of buildLayers(spec) (kind, name, in, out, kernel, stride,
                       padding, spatial, activation, shape)
  weights.safetensors  F32 tensors "<name>.weight", "<name>.bias", "<name>.running_mean", ...
  input.npy            float32 [batch, inputs]
and receives output.npy: float32 [batch, outputs], the network in eval mode (batch norm uses the
running statistics, dropout is the identity), built from torch.nn modules with libtorch's defaults
(BatchNorm eps 1e-5, LeakyReLU slope 0.01, exact erf GELU).
"""
import json
import struct
import sys

import numpy as np
import torch
from torch import nn


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + header_len])
    data = blob[8 + header_len :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", name
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[begin:end], dtype="<f4").reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors


ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
}


def build(layers, tensors):
    modules = []
    for layer in layers:
        kind = layer["kind"]
        name = layer["name"]
        if kind == "reshape":
            shape = layer["shape"]
            modules.append(nn.Unflatten(1, tuple(shape)))
            continue
        if kind == "linear":
            module = nn.Linear(layer["in"], layer["out"])
        elif kind == "conv2d":
            module = nn.Conv2d(layer["in"], layer["out"], layer["kernel"], stride=layer["stride"],
                               padding=layer["padding"])
        elif kind == "batch_norm":
            module = (nn.BatchNorm2d if layer["spatial"] else nn.BatchNorm1d)(layer["in"])
        elif kind == "activation":
            module = ACTIVATIONS[layer["activation"]]()
        elif kind == "dropout":
            module = nn.Dropout(layer["dropout"])
        elif kind == "max_pool2d":
            module = nn.MaxPool2d(layer["kernel"])
        elif kind == "flatten":
            module = nn.Flatten()
        else:
            raise ValueError("unknown layer kind " + kind)
        state = {key: tensors[name + "." + key]
                 for key in ("weight", "bias", "running_mean", "running_var")
                 if name + "." + key in tensors}
        if state:
            result = module.load_state_dict(state, strict=False)
            missing = [key for key in result.missing_keys if key != "num_batches_tracked"]
            assert not missing and not result.unexpected_keys, (name, result)
        modules.append(module)
    return nn.Sequential(*modules).eval()


def main():
    torch.set_num_threads(1)
    for case in sys.argv[1:]:
        with open(case + "/layers.json") as f:
            layers = json.load(f)
        model = build(layers, read_safetensors(case + "/weights.safetensors"))
        x = torch.from_numpy(np.load(case + "/input.npy"))
        with torch.no_grad():
            y = model(x)
        np.save(case + "/output.npy", y.numpy().astype("<f4"))


if __name__ == "__main__":
    main()
