"""The training losses, by the names `netspec.dsl.tasks.TASKS` gives them.

A loss is a function (head output, batch) -> its terms: a 1-D float tensor with one
term per unit the loss averages over (a label, a predicted token, a pixel, a sample).
Training minimises their mean; validation sums them over the whole split and divides
by their count, so both measure the same quantity. The output comes in float32;
batch fields are those of `netspec.train.data` (`x` the input, `y` labels [B],
`mask` [B, H, W], `target` [B, K], `x_valid` [B, T] the real tokens of a padded `x`).

The losses that are a softmax over classes say, in CLASS_ROWS, how an output becomes
rows of class scores and their targets; a head's `loss=` argument (hierarchical
softmax, NCE, negative sampling: `sampled.py`) trains the same rows another way.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Batch = dict[str, torch.Tensor]
Loss = Callable[[torch.Tensor, Batch], torch.Tensor]
Rows = Callable[[torch.Tensor, Batch], tuple[torch.Tensor, torch.Tensor]]


def label_rows(out: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Class scores [B, C] and their labels y [B], as they are."""
    return out, batch["y"]


def token_rows(out: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores [B, T, C] at the positions that predict a token, [N, C], and those tokens [N]:
    position t predicts token t + 1 of x, so the last position predicts nothing, nor does a
    position whose next token is padding (x_valid false there)."""
    x = batch["x"]
    rows, targets = out[:, :-1], x[:, 1:]
    if "x_valid" in batch:
        keep = batch["x_valid"][:, 1:]
        return rows[keep], targets[keep]
    return rows.reshape(-1, out.shape[-1]), targets.reshape(-1)


def cross_entropy(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Class logits [B, C] against labels y [B]: one term per sample."""
    return F.cross_entropy(*label_rows(out, batch), reduction="none")


def next_token(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """Token logits [B, T, V] against the input shifted by one: position t predicts token
    t + 1, so the last position predicts nothing. One term per predicted token: B * (T - 1),
    or the real tokens after the first when the batch marks padding (x_valid)."""
    return F.cross_entropy(*token_rows(out, batch), reduction="none")


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


def nonsaturating(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """A generator's loss: `out` is its critic's logits [B, 1] (or [B]) for generated samples;
    -log sigmoid(logit), the non-saturating loss of Goodfellow et al. 2014 (strong gradients
    while the critic still wins). One term per sample."""
    return F.softplus(-out.reshape(out.shape[0], -1).mean(1))


def critic_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """A critic's loss: binary cross-entropy of its logits [B, 1] (or [B]) for real samples
    (labelled 1) plus that for as many generated ones (labelled 0): -log sigmoid(real) -
    log(1 - sigmoid(fake)). One term per pair; the mean is the sum of the two BCE means."""
    return F.softplus(-real.reshape(real.shape[0], -1).mean(1)) + F.softplus(fake.reshape(fake.shape[0], -1).mean(1))


# loss name (a Task's `loss`) -> its terms
LOSSES: dict[str, Loss] = {
    "cross_entropy": cross_entropy,
    "next_token": next_token,
    "pixel_cross_entropy": pixel_cross_entropy,
    "mse_input": mse_input,
    "mse": mse,
    "nonsaturating": nonsaturating,
}

# the losses that are a softmax over classes -> how the output becomes class-score rows and
# their targets; a head of such a task may choose another output loss (`loss=`)
CLASS_ROWS: dict[str, Rows] = {"cross_entropy": label_rows, "next_token": token_rows}
