#!/usr/bin/env python3
"""The PyTorch peer on a CUDA GPU: whole epochs of the lesson (scripts/peers/alexnet_torch.py), timed.

Random CIFAR-shaped bytes (50,000 training and 10,000 test images): only the speed is measured. Two loops:
  seed      the lesson's own: a Dataset that normalises each image in numpy, DataLoader(batch, shuffle=True),
            .cuda() per batch, loss.item() and accuracy per batch, then the test split at batch 128;
  resident  the data kept on the GPU, each batch gathered there, the numbers read once an epoch.
One JSON line per epoch (the first includes the warm-up; compare the later ones):
  {"peer": "pytorch-cuda", "loop": ..., "batch": B, "epoch": E, "seconds": ..., "device": ..., "torch": ...}

Usage: python3 scripts/peers/torch_gpu_epoch.py [--batch 64] [--epochs 3] [--loops seed,resident]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from alexnet_torch import BATCH, EVAL_BATCH, network, normalise, sgd  # noqa: E402

DEVICE = "cuda"


class Images(torch.utils.data.Dataset):
    """The lesson's dataset: one image at a time, normalised in numpy, as its transform does."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = (np.asarray(self.x[i], dtype=np.float32) / 255 - 0.5) / 0.5
        return torch.from_numpy(x.transpose(2, 0, 1)), int(self.y[i])


def seed_loop(a, data, report):
    (xtr, ytr), (xte, yte) = data
    train = torch.utils.data.DataLoader(Images(xtr, ytr), batch_size=a.batch, shuffle=True)
    test = torch.utils.data.DataLoader(Images(xte, yte), batch_size=EVAL_BATCH, shuffle=False)
    net, loss_fn = network(DEVICE), nn.CrossEntropyLoss()
    opt = sgd(net)
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        train_loss = train_acc = 0.0
        net.train()
        for x, y in train:
            x, y = x.to(DEVICE), y.to(DEVICE)
            out = net(x)
            loss = loss_fn(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            train_loss += loss.item()
            train_acc += (out.argmax(1) == y).float().mean().item()
        net.eval()
        with torch.no_grad():
            valid_loss = sum(loss_fn(net(x.to(DEVICE)), y.to(DEVICE)).item() for x, y in test)
        report("seed", epoch, time.perf_counter() - t0)


def resident_loop(a, data, report):
    (xtr, ytr), (xte, yte) = data
    x = normalise(torch.from_numpy(xtr).to(DEVICE))
    y = torch.from_numpy(ytr).to(DEVICE)
    xt = normalise(torch.from_numpy(xte).to(DEVICE))
    yt = torch.from_numpy(yte).to(DEVICE)
    net, loss_fn = network(DEVICE), nn.CrossEntropyLoss()
    opt = sgd(net)
    n = len(x)
    for epoch in range(a.epochs):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        order = torch.randperm(n, device=DEVICE)
        total = torch.zeros((), device=DEVICE)
        for i in range(0, n, a.batch):
            idx = order[i:i + a.batch]
            loss = loss_fn(net(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach()
        with torch.no_grad():
            valid = sum(loss_fn(net(xt[i:i + EVAL_BATCH]), yt[i:i + EVAL_BATCH]) for i in range(0, len(xt), EVAL_BATCH))
        float(total), float(valid)
        torch.cuda.synchronize()
        report("resident", epoch, time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--loops", default="seed,resident")
    a = p.parse_args()
    torch.backends.cudnn.benchmark = True
    rng = np.random.default_rng(0)
    data = ((rng.integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 50000)),
            (rng.integers(0, 256, (10000, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 10000)))

    def report(loop, epoch, seconds):
        print(json.dumps({"peer": "pytorch-cuda", "loop": loop, "batch": a.batch, "epoch": epoch,
                          "seconds": round(seconds, 3), "device": torch.cuda.get_device_name(0),
                          "torch": torch.__version__}), flush=True)

    loops = {"seed": seed_loop, "resident": resident_loop}
    for name in a.loops.split(","):
        loops[name](a, data, report)


if __name__ == "__main__":
    main()
