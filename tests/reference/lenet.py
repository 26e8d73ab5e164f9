"""LeNet-5 reference model (LeCun et al. 1998), as a plain `nn.Module`.

Layer names (the netspec stdlib spec uses the same names, so state_dict keys
agree one to one):

    conv1   Conv2d(in_channels, 6, 5)        C1
    act1    Tanh | ReLU
    pool1   AvgPool2d(2) | MaxPool2d(2)      S2
    conv2   Conv2d(6, 16, 5)                 C3 (fully connected to S2, not the paper's sparse table)
    act2
    pool2                                    S4
    flatten Flatten()                        16 x 5 x 5 = 400 at a 32 x 32 input
    fc1     Linear(400, 120)                 C5
    act3
    fc2     Linear(120, 84)                  F6
    act4
    fc3     Linear(84, num_classes)          output (a Linear, not the paper's RBF units)

state_dict keys: conv1.{weight,bias}, conv2.*, fc1.*, fc2.*, fc3.*.
On 1x32x32 with 10 classes: 61,706 parameters.

The activations and pools are modules, not functional calls, so the module
tree mirrors a graph in which every layer is a node.
"""
from __future__ import annotations

import torch
from torch import nn

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
_POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 1,
        activation: str = "tanh",
        pool: str = "avg",
        input_size: int = 32,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        if pool not in _POOLS:
            raise ValueError(f"pool must be one of {sorted(_POOLS)}, got {pool!r}")
        act, pool_cls = _ACTIVATIONS[activation], _POOLS[pool]
        # Two valid 5x5 convs, each followed by a 2x2 pool.
        side = ((input_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"input_size {input_size} is too small for LeNet-5 (needs >= 16)")
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5)
        self.act1 = act()
        self.pool1 = pool_cls(kernel_size=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.act2 = act()
        self.pool2 = pool_cls(kernel_size=2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * side * side, 120)
        self.act3 = act()
        self.fc2 = nn.Linear(120, 84)
        self.act4 = act()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = self.flatten(x)
        x = self.act3(self.fc1(x))
        x = self.act4(self.fc2(x))
        return self.fc3(x)
