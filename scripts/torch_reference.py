#!/usr/bin/env python3
"""PyTorch's SGD and learning-rate schedulers on a small net, step by step: the reference that
test/optim.test.ts holds src/step.ts's Sgd and src/schedule.ts's lrAt to (issue #21).

Made with PyTorch 1.13.1 (Debian bookworm's python3-torch 1.13.1+dfsg, CPU; torch.__version__ says 1.13.0a0),
and kept in test/data so that the tests need no PyTorch:

    /usr/bin/python3 scripts/torch_reference.py > test/data/sgd_reference.json

For each recipe below: the learning rate PyTorch's scheduler gives each step (read from the optimizer before the
step), the gradient of every parameter at that step, and every parameter after it. The schedulers are stepped once
a batch, constructed as src/schedule.ts's header says.
"""

import json
import math

import torch

EPOCHS = 4
BATCHES = 3  # steps an epoch
BATCH = 4
LR = 0.1

RECIPES = [
    {"name": "plain SGD", "momentum": 0.0, "nesterov": False, "weightDecay": 0.0, "schedule": "constant", "warmupEpochs": 0},
    {"name": "momentum", "momentum": 0.9, "nesterov": False, "weightDecay": 0.0, "schedule": "constant", "warmupEpochs": 0},
    {"name": "Nesterov", "momentum": 0.9, "nesterov": True, "weightDecay": 0.0, "schedule": "constant", "warmupEpochs": 0},
    {"name": "weight decay", "momentum": 0.0, "nesterov": False, "weightDecay": 0.01, "schedule": "constant", "warmupEpochs": 0},
    {"name": "momentum and weight decay", "momentum": 0.5, "nesterov": False, "weightDecay": 0.01, "schedule": "constant", "warmupEpochs": 0},
    {"name": "step", "momentum": 0.0, "nesterov": False, "weightDecay": 0.0, "schedule": "step", "warmupEpochs": 0},
    {"name": "cosine", "momentum": 0.0, "nesterov": False, "weightDecay": 0.0, "schedule": "cosine", "warmupEpochs": 0},
    {"name": "onecycle", "momentum": 0.0, "nesterov": False, "weightDecay": 0.0, "schedule": "onecycle", "warmupEpochs": 0},
    {"name": "constant, warm-up", "momentum": 0.0, "nesterov": False, "weightDecay": 0.0, "schedule": "constant", "warmupEpochs": 1},
    {"name": "step, warm-up", "momentum": 0.0, "nesterov": False, "weightDecay": 0.0, "schedule": "step", "warmupEpochs": 1},
    {"name": "cosine, warm-up", "momentum": 0.9, "nesterov": True, "weightDecay": 5e-4, "schedule": "cosine", "warmupEpochs": 1},
    {"name": "onecycle, warm-up (the tuned recipe's optimiser)", "momentum": 0.9, "nesterov": True, "weightDecay": 5e-4, "schedule": "onecycle", "warmupEpochs": 1},
]


def scheduler(opt, r):
    total = EPOCHS * BATCHES
    warm = r["warmupEpochs"] * BATCHES
    main_steps = total - warm
    lrs = torch.optim.lr_scheduler
    if r["schedule"] == "onecycle":
        return lrs.OneCycleLR(opt, max_lr=LR, total_steps=total, pct_start=warm / total if warm > 0 else 0.3,
                              anneal_strategy="cos", cycle_momentum=False, div_factor=25.0, final_div_factor=1e4)
    if r["schedule"] == "constant":
        main = None
    elif r["schedule"] == "step":
        main = lrs.MultiStepLR(opt, milestones=[math.floor(main_steps / 2), math.floor(3 * main_steps / 4)], gamma=0.1)
    else:
        main = lrs.CosineAnnealingLR(opt, T_max=main_steps, eta_min=0.0)
    if warm == 0:
        return main
    warmup = lrs.LinearLR(opt, start_factor=1.0 / warm, end_factor=1.0, total_iters=warm)
    return warmup if main is None else lrs.SequentialLR(opt, [warmup, main], milestones=[warm])


def run(r):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 6, generator=g)
    y = torch.randint(0, 3, (16,), generator=g)
    params = list(net.parameters())
    opt = torch.optim.SGD(params, lr=LR, momentum=r["momentum"], nesterov=r["nesterov"], weight_decay=r["weightDecay"])
    sched = scheduler(opt, r)
    # float32 values in 9 significant digits: enough to read back each float32 exactly (Math.fround in JS).
    flat = lambda ts: [float("%.9g" % v) for t in ts for v in t.detach().reshape(-1).tolist()]
    steps = []
    initial = flat(params)
    for s in range(EPOCHS * BATCHES):
        rows = [(BATCH * s + i) % 16 for i in range(BATCH)]
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x[rows]), y[rows])
        loss.backward()
        lr = opt.param_groups[0]["lr"]
        grads = flat(p.grad for p in params)
        opt.step()
        if sched is not None:
            sched.step()
        steps.append({"lr": lr, "grads": grads, "params": flat(params)})
    return {**r, "initial": initial, "steps": steps}


def main():
    out = {
        "torch": torch.__version__,
        "epochs": EPOCHS,
        "batches": BATCHES,
        "lr": LR,
        # PyTorch's parameters in order, with their shapes (Linear's weight is [out, in]).
        "shapes": [[5, 6], [5], [3, 5], [3]],
        "recipes": [run(r) for r in RECIPES],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
