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


def sequences_right(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """[right, total]: sequences whose every predicted token (the largest logit of [B, T, V] at
    each position that predicts one; see losses.token_rows) is right. Under teacher forcing a
    causal decoder that gets every token right also decodes the whole sequence greedily, so this
    is the greedy-decoding exact match."""
    x = batch["x"]
    hit = out[:, :-1].argmax(-1) == x[:, 1:]
    if "x_valid" in batch:
        hit |= ~batch["x_valid"][:, 1:]
    return torch.stack([hit.all(1).sum(), torch.tensor(x.shape[0], device=x.device)]).cpu()


def pixel_moments(out: torch.Tensor, batch: Batch) -> torch.Tensor:
    """[sum of x, sum of x^2] per element of the reconstructed input, then the sample count: what
    the MSE of predicting the mean image is computed from."""
    x = batch["x"].float().reshape(batch["x"].shape[0], -1)
    n = torch.tensor([float(x.shape[0])], device=x.device)
    return torch.cat([x.sum(0), x.square().sum(0), n]).double().cpu()


def relative_mse(moments: torch.Tensor, loss: float) -> float:
    """The validation MSE over the MSE of predicting every sample as the mean image (the
    mean of the pixels' variances): 1 is no better than the mean, 0 is perfect."""
    n, d = float(moments[-1]), (len(moments) - 1) // 2
    mean = moments[:d] / n
    baseline = float((moments[d : 2 * d] / n - mean.square()).mean())
    return loss / baseline if baseline > 0 else float("inf")


def believed_real(scores: torch.Tensor) -> torch.Tensor:
    """[sum of sigmoid(logit), count] of a critic's logits: how real it believes the samples are."""
    p = torch.sigmoid(scores.float().reshape(-1))
    return torch.stack([p.sum(), torch.tensor(float(p.numel()), device=p.device)]).double().cpu()


def _share(s: torch.Tensor, loss: float) -> float:
    return float(s[0]) / max(1.0, float(s[1]))


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
    "accuracy": Metric(hits, _share, bounded=True, digits=4),
    "exact_match": Metric(sequences_right, _share, bounded=True, digits=4),
    # exp of the mean next-token loss, capped so a diverged run prints a number, not inf
    "perplexity": Metric(None, lambda s, loss: math.exp(min(loss, 50.0)), bounded=False, digits=2, higher=False),
    "iou": Metric(confusion, mean_iou, bounded=True, digits=4),
    "pixel_accuracy": Metric(confusion, lambda s, loss: float(s.diag().sum() / s.sum().clamp(min=1)),
                             bounded=True, digits=4),
    "mse": Metric(None, lambda s, loss: loss, bounded=False, digits=5),  # the reconstruct loss itself
    "relative_mse": Metric(pixel_moments, relative_mse, bounded=False, digits=4),
    # a generator's validation: out is its critic's logits for generated samples, batch["real_score"]
    # the critic's logits for real ones (netspec.train.adversarial)
    "d_real": Metric(lambda out, batch: believed_real(batch["real_score"]), _share, bounded=True, digits=3),
    "d_fake": Metric(lambda out, batch: believed_real(out), _share, bounded=True, digits=3),
}


class HeadMeter:
    """A head's validation loss (the mean of its loss terms over every batch added) and metrics.
    terms / scores: the head's objective (objectives.py) when it is not its task's loss on its
    output: the loss terms, and the scores its metrics read, from what the model returned."""

    def __init__(self, loss: str, metrics: tuple[str, ...], *, terms=None,
                 scores: Callable[[torch.Tensor], torch.Tensor] | None = None):
        self.loss, self.metrics = terms or LOSSES[loss], {m: METRICS[m] for m in metrics}
        self.scores = scores
        self.loss_sum, self.count = 0.0, 0
        self.sums: dict[Statistic, torch.Tensor] = {}

    def add(self, out: torch.Tensor, batch: Batch) -> None:
        out = out.float()
        terms = self.loss(out, batch)
        self.loss_sum += terms.sum().item()
        self.count += terms.numel()
        stats = {m.statistic for m in self.metrics.values() if m.statistic is not None}
        scores = self.scores(out) if self.scores is not None and stats else out
        for stat in stats:
            s = stat(scores, batch)
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
