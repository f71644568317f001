#!/usr/bin/python3
"""Converts Debian's Fashion-MNIST (package dataset-fashion-mnist, IDX files) into the training
tests' datasets. Usage: make_datasets.py OUTPUT_DIR

  fashion_train_features.npy  float32 [12000, 784]  first 12000 training images, pixels / 255
  fashion_train_labels.npy    int64   [12000]       their classes 0..9
  fashion_small.csv           header "label,p0,...,p783", the first 3000 training images as
                              integers 0..255, label first
  fashion_test_input.npy      float32 [8, 784]      the first 8 test images, pixels / 255
  fashion_module.pt           a TorchScript module 784 -> 32 -> 10 (torch.jit.script, seed 0)

A missing package writes nothing but a marker file (tests that need the data skip).
"""

import gzip
import os
import sys

import numpy as np

SOURCE = "/usr/share/datasets/fashion-mnist"


def read_idx(name):
    with gzip.open(os.path.join(SOURCE, name), "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_module(path):
    import torch
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(784, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
    torch.jit.script(module).save(path)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    write_module(os.path.join(out, "fashion_module.pt"))
    if not os.path.isdir(SOURCE):
        open(os.path.join(out, "fashion_missing"), "w").close()
        return
    images = read_idx("train-images-idx3-ubyte.gz").reshape(-1, 784)
    labels = read_idx("train-labels-idx1-ubyte.gz").astype(np.int64)
    test = read_idx("t10k-images-idx3-ubyte.gz").reshape(-1, 784)
    np.save(os.path.join(out, "fashion_train_features.npy"), images[:12000].astype(np.float32) / 255)
    np.save(os.path.join(out, "fashion_train_labels.npy"), labels[:12000])
    np.save(os.path.join(out, "fashion_test_input.npy"), test[:8].astype(np.float32) / 255)
    with open(os.path.join(out, "fashion_small.csv"), "w") as f:
        f.write("label," + ",".join("p%d" % i for i in range(784)) + "\n")
        for row in range(3000):
            f.write("%d," % labels[row] + ",".join(str(v) for v in images[row]) + "\n")


if __name__ == "__main__":
    main()
