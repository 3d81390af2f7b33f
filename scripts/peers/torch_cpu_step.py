#!/usr/bin/env python3
"""The PyTorch peer on the CPU: the lesson's training step (scripts/peers/alexnet_torch.py), timed.

`npm run bench` runs it beside our backends and divides. Random CIFAR-shaped bytes, normalised as the lesson does:
only the speed is measured. One JSON line per thread count:
  {"peer": "pytorch-cpu", "torch": ..., "threads": N, "batch": B, "steps": S, "stepMsMedian": ...}

Needs PyTorch (Debian: apt-get install -y python3-torch).
Usage: python3 scripts/peers/torch_cpu_step.py [--threads 2[,1,4...]] [--batch 64] [--steps 20] [--warmup 5]
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
from torch import nn  # noqa: E402
from alexnet_torch import BATCH, network, normalise, sgd  # noqa: E402


def step_ms(threads, batch, steps, warmup):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net, loss_fn = network(), nn.CrossEntropyLoss()
    opt = sgd(net)
    x = normalise(torch.randint(0, 256, (batch, 32, 32, 3), dtype=torch.uint8))
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        loss.item()  # the step is done when its loss is read, as our runners' are
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", default="2", help="thread counts, comma-separated")
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    a = p.parse_args()
    for threads in [int(t) for t in a.threads.split(",")]:
        ms = step_ms(threads, a.batch, a.steps, a.warmup)
        print(json.dumps({"peer": "pytorch-cpu", "torch": torch.__version__, "threads": torch.get_num_threads(),
                          "batch": a.batch, "steps": a.steps, "stepMsMedian": round(ms, 2)}), flush=True)


if __name__ == "__main__":
    main()
