#!/usr/bin/python3
"""The training benchmark's PyTorch baseline (bench/training_bench.cc runs it; docs/BENCHMARKS.md
section 6). Run with Debian's /usr/bin/python3 (python3-torch: the same libtorch 1.13 as the C++
side).

  training_bench.py --features F.npy --labels L.npy --epochs 5 --threads 1 [--batch 128]
                    [--seed 0] [--lr 1e-3]

The same work as the bare libtorch loop and deviceops-trainer: MLP 784-256-128-10 (ReLU)
initialised after torch.manual_seed(seed), Adam, cross entropy, the samples first permuted by a
generator seeded with `seed` (the trainer's validation-split permutation; split 0 keeps them all),
then every epoch e (1-based) visits them in the order of randperm(N, generator seeded seed + e)
in batches of `batch` (the last one smaller). Only the epochs are timed.

Prints JSON lines on stdout: {"type": "started"} as the first epoch starts, then
{"type": "done", "epochs": [{"seconds", "loss"}], "samples": per epoch, "threads"}.
"""

import argparse
import json
import time

import numpy as np
import torch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", required=True)
    parser.add_argument("--labels", required=True)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    features = torch.from_numpy(np.load(args.features)).float().reshape(-1, 784)
    labels = torch.from_numpy(np.load(args.labels)).long().reshape(-1)
    n = features.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed))
    features = features.index_select(0, order).contiguous()
    labels = labels.index_select(0, order).contiguous()

    torch.manual_seed(args.seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)

    print(json.dumps({"type": "started"}), flush=True)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(args.seed + epoch))
        loss_sum = torch.zeros((), dtype=torch.float64)
        for begin in range(0, n, args.batch):
            index = perm[begin:begin + args.batch]
            x = features.index_select(0, index)
            y = labels.index_select(0, index)
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            loss_sum.add_(loss.detach(), alpha=x.shape[0])
        seconds = time.perf_counter() - start
        epochs.append({"seconds": seconds, "loss": loss_sum.item() / n})
    print(json.dumps({"type": "done", "epochs": epochs, "samples": n,
                      "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
