#!/usr/bin/python3
"""Writes the torch checkpoint fixtures of src/training_formats/torch_checkpoint_test.cc.

    /usr/bin/python3 make_torch_files.py OUT_DIR

Good files, written by torch.save (torch 1.13), each with a JSON of what the reader must return
(every tensor's dtype, shape, contiguous little-endian bytes as hex and, for F32/F16/BF16, its
values widened to float32 by torch, also as hex bytes):
  state.pt                      F32, F16, BF16 (special values), transposed and strided views,
                                an offset view, a Parameter, a 0-dim and an empty tensor, ints
  model.ckpt                    Lightning-like: {"state_dict": {...}, "global_step": 7,
                                "epoch": 1, optimizer state, hyper-parameters, opaque objects}
  diffusion_pytorch_model.bin   a module's fp16 state_dict() (with its _metadata), diffusers keys

Hostile files, written byte by byte (nothing here is ever unpickled by Python):
  evil_os_system.pt, evil_eval.pt, evil_stack_global.pt   pickles naming os.system,
      builtins.eval and (protocol 4) posix.system; had they run, they would create
      OUT_DIR/pwned-* marker files
  legacy.pt                     torch.save(..., _use_new_zipfile_serialization=False)
  short_storage.pt              a storage shorter than its declared numel
  out_of_bounds.pt              offset + strides reach past the storage
  huge_shape.pt, expanded.pt    shape [2^40, 2^40]; shape [2^44] with stride 0 on 4 elements
  missing_storage.pt            the pickle names data/7, which is absent
  truncated.pt                  state.pt cut in half
  cd_past_end.pt                the central directory offset points past the end
  zip64_lie.pt                  the ZIP64 end record claims a 1 TiB central directory
  compressed.pt                 state.pt re-zipped with deflate
"""
import json
import os
import struct
import sys
import zipfile

import numpy as np
import torch

DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


def raw_bytes(t):
    return t.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes().hex()


def describe(tensors, skipped, nested):
    out = []
    for name, t in tensors.items():
        entry = {"name": name, "dtype": DTYPES[t.dtype], "shape": list(t.shape),
                 "hex": raw_bytes(t)}
        if t.dtype in (torch.float32, torch.float16, torch.bfloat16):
            entry["float_hex"] = raw_bytes(t.detach().float())
        out.append(entry)
    return {"tensors": out, "skipped": skipped, "nested": nested}


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)


class Opaque:
    """Pickled as __main__.Opaque: the reader must treat it as opaque, not import it."""

    def __init__(self):
        self.value = 3


def good_files(out):
    g = torch.Generator().manual_seed(7)
    base = torch.arange(20, dtype=torch.float64) / 8
    state = {
        "f32": torch.randn(3, 4, generator=g),
        "f16": torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.103515625e-05, 5.960464477539063e-08,
                             1e-06, float("inf"), float("-inf"), float("nan")],
                            dtype=torch.float16),
        "bf16": torch.tensor([0.0, -1.5, 3.0e38, 1e-40, 9.1835e-41, float("inf"), float("nan"),
                              0.1], dtype=torch.bfloat16),
        "transposed": torch.arange(12, dtype=torch.float32).reshape(3, 4).t(),
        "bf16_transposed": torch.randn(4, 2, generator=g).bfloat16().t(),
        "offset_view": base[5:11].view(2, 3),
        "strided": torch.arange(24, dtype=torch.int64).reshape(4, 6)[::2, 1::2],
        "i32": torch.tensor([-2147483648, 2147483647, 0, -1], dtype=torch.int32),
        "i8": torch.tensor([-128, 127, 3], dtype=torch.int8),
        "u8": torch.tensor([0, 255, 17], dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "param": torch.nn.Parameter(torch.full((2, 2), 0.5)),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
    }
    assert not state["transposed"].is_contiguous() and state["transposed"].stride() == (1, 4)
    torch.save({**state, "note": "not a tensor"}, os.path.join(out, "state.pt"))
    write_json(os.path.join(out, "state.json"), describe(state, ["note"], False))

    inner = {
        "model.diffusion_model.input_blocks.0.0.weight": torch.randn(4, 3, 3, 3, generator=g),
        "first_stage_model.decoder.conv_out.bias": torch.randn(3, generator=g).half(),
        "first_stage_model.scale": torch.tensor(0.18215),
    }
    ckpt = {
        "state_dict": inner,
        "global_step": 7,
        "epoch": 1,
        "optimizer_states": [{"state": {0: {"exp_avg": torch.randn(2, generator=g)}},
                              "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.99)}]}],
        "hyper_parameters": {"name": "vae", "big": 2**70, "ratio": 0.25, "tags": {"a", "b"}},
        "callbacks": {"opaque": Opaque(), "np_scalar": np.float32(1.5)},
    }
    torch.save(ckpt, os.path.join(out, "model.ckpt"))
    write_json(os.path.join(out, "model.json"), describe(inner, [], True))

    module = torch.nn.ModuleDict({
        "conv_in": torch.nn.Conv2d(2, 3, 3),
        "norm": torch.nn.BatchNorm2d(3),
    }).half()
    with torch.no_grad():
        module["norm"].running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        module["norm"].num_batches_tracked.fill_(12)
    sd = module.state_dict()
    assert hasattr(sd, "_metadata")
    torch.save(sd, os.path.join(out, "diffusion_pytorch_model.bin"))
    write_json(os.path.join(out, "diffusion_pytorch_model.json"), describe(dict(sd), [], False))


# ---- hand-written pickles ----

def text(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def long1(v):
    b = v.to_bytes((v.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(b)]) + b


def tuple_of(values):
    return b"(" + b"".join(long1(v) for v in values) + b"t"


def tensor_pickle(name, storage_type, key, numel, offset, size, stride):
    p = b"\x80\x02}(" + text(name) + b"ctorch._utils\n_rebuild_tensor_v2\n("
    p += b"(" + text("storage") + b"ctorch\n" + storage_type.encode() + b"\n" + text(key)
    p += text("cpu") + long1(numel) + b"tQ"
    p += long1(offset) + tuple_of(size) + tuple_of(stride) + b"\x89"
    p += b"ccollections\nOrderedDict\n)R" + b"tR" + b"u."
    return p


def write_zip(path, entries, compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)


def archive(pickle_bytes, storages):
    entries = {"archive/data.pkl": pickle_bytes}
    for key, data in storages.items():
        entries["archive/data/" + key] = data
    entries["archive/version"] = b"3\n"
    return entries


def hostile_files(out):
    marker = os.path.join(out, "pwned-os")
    evil = b"\x80\x02}(" + text("weight") + b"cos\nsystem\n" + text("touch " + marker)
    evil += b"\x85R" + b"u."
    write_zip(os.path.join(out, "evil_os_system.pt"), archive(evil, {}))

    marker = os.path.join(out, "pwned-eval")
    evil = b"\x80\x02}(" + text("weight") + b"cbuiltins\neval\n"
    evil += text(f"open({marker!r}, 'w')") + b"\x85R" + b"u."
    write_zip(os.path.join(out, "evil_eval.pt"), archive(evil, {}))

    marker = os.path.join(out, "pwned-stack")
    evil = b"\x80\x04}(" + text("weight") + b"\x8c\x05posix\x8c\x06system\x93"
    evil += text("touch " + marker) + b"\x85R" + b"u."
    write_zip(os.path.join(out, "evil_stack_global.pt"), archive(evil, {}))

    torch.save({"a": torch.zeros(2)}, os.path.join(out, "legacy.pt"),
               _use_new_zipfile_serialization=False)

    floats = struct.pack("<4f", 1, 2, 3, 4)
    cases = {
        "short_storage.pt": (tensor_pickle("w", "FloatStorage", "0", 6, 0, [2, 3], [3, 1]),
                             {"0": floats[:8]}),
        "out_of_bounds.pt": (tensor_pickle("w", "FloatStorage", "0", 4, 1, [2, 2], [2, 1]),
                             {"0": floats}),
        "huge_shape.pt": (tensor_pickle("w", "FloatStorage", "0", 4, 0, [2**40, 2**40],
                                        [2**40, 1]), {"0": floats}),
        "expanded.pt": (tensor_pickle("w", "FloatStorage", "0", 4, 0, [2**44], [0]),
                        {"0": floats}),
        "missing_storage.pt": (tensor_pickle("w", "FloatStorage", "7", 4, 0, [4], [1]),
                               {"0": floats}),
    }
    for name, (pickle_bytes, storages) in cases.items():
        write_zip(os.path.join(out, name), archive(pickle_bytes, storages))

    with open(os.path.join(out, "state.pt"), "rb") as f:
        state = f.read()
    with open(os.path.join(out, "truncated.pt"), "wb") as f:
        f.write(state[: len(state) // 2])

    with zipfile.ZipFile(os.path.join(out, "state.pt")) as z:
        entries = {info.filename: z.read(info) for info in z.infolist()}
    write_zip(os.path.join(out, "compressed.pt"), entries, zipfile.ZIP_DEFLATED)

    plain = os.path.join(out, "cd_past_end.pt")
    write_zip(plain, entries)  # Python's zipfile: no ZIP64 records for a small file
    with open(plain, "rb") as f:
        data = bytearray(f.read())
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<I", data, eocd + 16, len(data) + 100)
    with open(plain, "wb") as f:
        f.write(data)

    data = bytearray(state)  # torch's writer always adds the ZIP64 end records
    record = data.rfind(b"PK\x06\x06")
    struct.pack_into("<Q", data, record + 40, 2**40)
    with open(os.path.join(out, "zip64_lie.pt"), "wb") as f:
        f.write(data)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    good_files(out)
    hostile_files(out)


if __name__ == "__main__":
    main()
