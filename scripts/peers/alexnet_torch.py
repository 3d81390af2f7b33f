"""The reference lesson's network and recipe in PyTorch: what `alexnet` is measured against (npm run bench).

The network is the lesson's table, one layer a line, as src/model.ts builds it in TensorFlow.js:
conv 5x5 3->64 + ReLU, maxpool 3/2, conv 5x5 64->64 + ReLU, maxpool 3/2, flatten (1024),
dense 1024->384 + ReLU, 384->192 + ReLU, 192->10: 576,778 parameters.
The recipe: pixels to (x/255 - 0.5)/0.5, SGD at lr 0.1, cross-entropy, batch 64 (evaluation 128).
"""
import torch
from torch import nn

LR = 0.1
BATCH = 64
EVAL_BATCH = 128
PARAMETERS = 576_778


def network(device="cpu"):
    net = nn.Sequential(
        nn.Conv2d(3, 64, 5), nn.ReLU(True), nn.MaxPool2d(3, 2),
        nn.Conv2d(64, 64, 5), nn.ReLU(True), nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(1024, 384), nn.ReLU(True),
        nn.Linear(384, 192), nn.ReLU(True),
        nn.Linear(192, 10),
    ).to(device)
    assert sum(p.numel() for p in net.parameters()) == PARAMETERS
    return net


def normalise(uint8_nhwc):
    """CIFAR's bytes (N, 32, 32, 3) to the lesson's inputs (N, 3, 32, 32) in [-1, 1]."""
    return uint8_nhwc.permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5).contiguous()


def sgd(net):
    return torch.optim.SGD(net.parameters(), lr=LR)
