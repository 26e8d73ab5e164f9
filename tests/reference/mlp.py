"""MLP reference model with batch norm and dropout (`MLP`).

Layout for hidden=(h1, h2) (the default pattern; any number of hidden
layers repeats it):

    bn0    BatchNorm1d(in_features)   normalises the raw input
    drop0  Dropout(dropout)
    fc1    Linear(in_features, h1)
    act1   activation
    bn1    BatchNorm1d(h1)
    drop1  Dropout(dropout)
    fc2    Linear(h1, h2)
    act2   activation
    bn2    BatchNorm1d(h2)
    fc3    Linear(h2, out_features)   no dropout right before the output layer

state_dict keys: bn{i}.{weight,bias,running_mean,running_var,num_batches_tracked}
and fc{i}.{weight,bias}.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

_ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU}


class MLP(nn.Module):
    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (256, 128),
        out_features: int = 10,
        dropout: float = 0.5,
        activation: str = "relu",
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        sizes = [in_features, *hidden]
        self.depth = len(hidden)
        for i in range(1, len(sizes)):
            self.add_module(f"bn{i - 1}", nn.BatchNorm1d(sizes[i - 1]))
            self.add_module(f"drop{i - 1}", nn.Dropout(dropout))
            self.add_module(f"fc{i}", nn.Linear(sizes[i - 1], sizes[i]))
            self.add_module(f"act{i}", _ACTIVATIONS[activation]())
        self.add_module(f"bn{len(hidden)}", nn.BatchNorm1d(sizes[-1]))
        self.add_module(f"fc{len(hidden) + 1}", nn.Linear(sizes[-1], out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.depth + 1):
            x = getattr(self, f"bn{i - 1}")(x)
            x = getattr(self, f"drop{i - 1}")(x)
            x = getattr(self, f"act{i}")(getattr(self, f"fc{i}")(x))
        x = getattr(self, f"bn{self.depth}")(x)
        return getattr(self, f"fc{self.depth + 1}")(x)
