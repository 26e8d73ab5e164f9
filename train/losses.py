"""The training losses, by the names `netspec.dsl.tasks.TASKS` gives them.

A loss is a function (head output, batch) -> its terms: a 1-D float tensor with one
term per unit the loss averages over (a label, a predicted token, a pixel, a sample).
Training minimises their mean; validation sums them over the whole split and divides
by their count, so both measure the same quantity. The output comes in float32;
batch fields are those of `netspec.train.data` (`x` the input, `y` labels [B],
`mask` [B, H, W], `target` [B, K]).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Batch = dict[str, torch.Tensor]
Loss = Callable[[torch.Tensor, Batch], torch.Tensor]


def cross_entropy(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Class logits [B, C] against labels y [B]: one term per sample."""
    return F.cross_entropy(out, batch["y"], reduction="none")


def next_token(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Token logits [B, T, V] against the input shifted by one: position t predicts token
    t + 1, so the last position predicts nothing. One term per predicted token, B * (T - 1)."""
    x = batch["x"]
    return F.cross_entropy(out[:, :-1].reshape(-1, out.shape[-1]), x[:, 1:].reshape(-1), reduction="none")


def pixel_cross_entropy(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Pixel logits [B, C, H, W] against the mask [B, H, W]: one term per pixel."""
    return F.cross_entropy(out, batch["mask"], reduction="none").reshape(-1)


def _sample_mse(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    # Mean over each sample's elements: all samples have the same size, so the mean of
    # these terms is F.mse_loss over the batch.
    return (out.reshape(target.shape) - target).square().reshape(target.shape[0], -1).mean(1)


def mse_input(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """The output against the input it reconstructs: one term per sample."""
    return _sample_mse(out, batch["x"].float())


def mse(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Real values [B, K] (or [B]) against the data's targets [B, K]: one term per sample."""
    return _sample_mse(out, batch["target"])


# loss name (a Task's `loss`) -> its terms
LOSSES: dict[str, Loss] = {
    "cross_entropy": cross_entropy,
    "next_token": next_token,
    "pixel_cross_entropy": pixel_cross_entropy,
    "mse_input": mse_input,
    "mse": mse,
}
