"""The validation metrics, by the names `netspec.dsl.tasks.TASKS` gives them, and the meter
that accumulates a head's loss and metrics over a validation pass.

A metric reads a statistic summed over the validation batches (a count of hits, a
confusion matrix) and the head's mean validation loss. Metrics that read the same
statistic share it: `iou` and `pixel_accuracy` both come from one confusion matrix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .losses import LOSSES, Batch

Statistic = Callable[[torch.Tensor, Batch], torch.Tensor]  # (float32 output, batch) -> a sum over the batch


def hits(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """[correct, total]: samples whose largest class logit [B, C] is their label y [B]."""
    y = batch["y"]
    return torch.stack([(out.argmax(-1) == y).sum(), torch.tensor(y.numel(), device=y.device)]).cpu()


def confusion(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """[C, C] pixel counts, rows the mask's class, columns the predicted (largest logit) class."""
    mask, c = batch["mask"], out.shape[1]
    idx = (mask * c + out.argmax(1)).flatten().cpu()
    return torch.bincount(idx, minlength=c * c).reshape(c, c)


def mean_iou(conf: torch.Tensor, loss: float) -> float:
    """Intersection over union per class, averaged over the classes present in the masks
    or the predictions (a class absent from both says nothing about the model)."""
    conf = conf.double()
    inter = conf.diag()
    union = conf.sum(0) + conf.sum(1) - inter
    present = union > 0
    return float((inter[present] / union[present]).mean()) if present.any() else 0.0


@dataclass(frozen=True)
class Metric:
    statistic: Statistic | None  # what it sums over the batches; None: it reads the loss only
    result: Callable[[torch.Tensor | None, float], float]  # (summed statistic, mean loss) -> value
    bounded: bool  # a share in [0, 1] (plotted on one axis), else a value of its own scale
    digits: int  # decimals in progress lines
    higher: bool = True  # larger is better (the best checkpoint, early stopping); perplexity: smaller


# metric name (in a Task's `metrics`) -> how it is measured; progress lines, `eval` and
# curves.png list metrics in this order.
METRICS: dict[str, Metric] = {
    "accuracy": Metric(hits, lambda s, loss: float(s[0]) / max(1, int(s[1])), bounded=True, digits=4),
    # exp of the mean next-token loss, capped so a diverged run prints a number, not inf
    "perplexity": Metric(None, lambda s, loss: math.exp(min(loss, 50.0)), bounded=False, digits=2, higher=False),
    "iou": Metric(confusion, mean_iou, bounded=True, digits=4),
    "pixel_accuracy": Metric(confusion, lambda s, loss: float(s.diag().sum() / s.sum().clamp(min=1)),
                             bounded=True, digits=4),
}


class HeadMeter:
    """A head's validation loss (the mean of its loss terms over every batch added) and metrics."""

    def __init__(self, loss: str, metrics: tuple[str, ...]):
        self.loss, self.metrics = LOSSES[loss], {m: METRICS[m] for m in metrics}
        self.loss_sum, self.count = 0.0, 0
        self.sums: dict[Statistic, torch.Tensor] = {}

    def add(self, out: torch.Tensor, batch: Batch) -> None:
        out = out.float()
        terms = self.loss(out, batch)
        self.loss_sum += terms.sum().item()
        self.count += terms.numel()
        for stat in {m.statistic for m in self.metrics.values() if m.statistic is not None}:
            s = stat(out, batch)
            self.sums[stat] = s if stat not in self.sums else self.sums[stat] + s

    def result(self) -> dict[str, float]:
        """{"loss": mean loss, metric name: value, ...}"""
        loss = self.loss_sum / max(1, self.count)
        out = {"loss": loss}
        for name, m in self.metrics.items():
            if m.statistic is None or m.statistic in self.sums:
                out[name] = m.result(self.sums.get(m.statistic), loss)
            else:  # no batch was added
                out[name] = 0.0
        return out


def format_metrics(values: dict[str, float]) -> str:
    """'val loss 0.1234  accuracy 0.9800' from `evaluate`'s result (its plain metric names)."""
    parts = [f"val loss {values['loss']:.4f}"]
    parts += [f"{name} {values[name]:.{m.digits}f}" for name, m in METRICS.items() if name in values]
    return "  ".join(parts)
