#!/usr/bin/env python3
"""PyTorch's CrossEntropyLoss(label_smoothing=e), its value and its gradient with respect to the logits: the
reference that test/step.test.ts holds src/step.ts's crossEntropy (and so every backend's loss) to (issue #36).

Made with PyTorch 1.13.1 (Debian bookworm's python3-torch, CPU) and kept in test/data so that the tests need no
PyTorch:

    /usr/bin/python3 scripts/torch_label_smoothing.py > test/data/label_smoothing_reference.json
"""

import json

import torch

CASES = [(6, 10, 0.1, 1), (6, 10, 0.2, 2), (5, 3, 0.35, 3), (4, 100, 0.1, 4), (6, 10, 0.0, 5)]


def case(n, classes, e, seed):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, classes, generator=g) * 3).requires_grad_(True)
    labels = torch.randint(0, classes, (n,), generator=g)
    loss = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=e)
    loss.backward()
    return {"smoothing": e, "classes": classes, "logits": logits.detach().flatten().tolist(), "labels": labels.tolist(), "loss": loss.item(), "grad": logits.grad.flatten().tolist()}


print(json.dumps({"torch": torch.__version__, "cases": [case(*c) for c in CASES]}))
