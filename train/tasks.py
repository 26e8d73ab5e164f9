"""What each head task trains and measures: its loss and its validation metrics.

classify: cross-entropy, accuracy; lm: next-token cross-entropy (the loss excludes the last
position), perplexity; segment: per-pixel cross-entropy, mean IoU and pixel accuracy;
reconstruct / regress: mean squared error. Several heads: the weighted sum of their losses.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F

from ..dsl.tasks import TASKS

from . import checkpoint as ckpt
from .data import Data, eval_batches, outputs_by_head
from .config import RunConfig

TASK_METRICS = {name: task.metrics for name, task in TASKS.items()}


def trained_heads(info) -> list:
    return [h for h in info.heads if h.task is not None]


def head_losses(info, out: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Loss per trained head (float32, mean over the batch)."""
    outs = outputs_by_head(out, info)
    losses = {}
    for h in trained_heads(info):
        o = outs[h.name].float()
        if h.task == "classify":
            losses[h.name] = F.cross_entropy(o, batch["y"])
        elif h.task == "lm":
            x = batch["x"]
            losses[h.name] = F.cross_entropy(o[:, :-1].reshape(-1, o.shape[-1]), x[:, 1:].reshape(-1))
        elif h.task == "segment":
            losses[h.name] = F.cross_entropy(o, batch["mask"])
        elif h.task == "reconstruct":
            losses[h.name] = F.mse_loss(o, batch["x"].float())
        elif h.task == "regress":
            t = batch["target"]
            losses[h.name] = F.mse_loss(o.reshape(t.shape), t)
    return losses


def total_loss(info, losses: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(h.weight * losses[h.name] for h in trained_heads(info))


class _Meter:
    """Accumulates validation statistics for one head."""

    def __init__(self, task: str):
        self.task, self.loss_sum, self.count, self.correct = task, 0.0, 0, 0
        self.confusion: torch.Tensor | None = None

    def add(self, o: torch.Tensor, batch: dict[str, torch.Tensor]) -> None:
        o = o.float()
        if self.task == "classify":
            y = batch["y"]
            self.loss_sum += F.cross_entropy(o, y, reduction="sum").item()
            self.correct += int((o.argmax(-1) == y).sum())
            self.count += y.numel()
        elif self.task == "lm":
            x = batch["x"]
            self.loss_sum += F.cross_entropy(o[:, :-1].reshape(-1, o.shape[-1]), x[:, 1:].reshape(-1),
                                             reduction="sum").item()
            self.count += x[:, 1:].numel()
        elif self.task == "segment":
            m = batch["mask"]
            c = o.shape[1]
            self.loss_sum += F.cross_entropy(o, m, reduction="sum").item()
            self.count += m.numel()
            idx = (m * c + o.argmax(1)).flatten().cpu()
            conf = torch.bincount(idx, minlength=c * c).reshape(c, c)
            self.confusion = conf if self.confusion is None else self.confusion + conf
        else:
            t = batch["x"].float() if self.task == "reconstruct" else batch["target"]
            o = o.reshape(t.shape)
            # mean over elements per sample, summed over samples: the batch mean of F.mse_loss
            self.loss_sum += F.mse_loss(o, t, reduction="sum").item() / max(1, t[0].numel())
            self.count += t.shape[0]

    def result(self) -> dict[str, float]:
        loss = self.loss_sum / max(1, self.count)
        r = {"loss": loss}
        if self.task == "classify":
            r["accuracy"] = self.correct / max(1, self.count)
        elif self.task == "lm":
            r["perplexity"] = math.exp(min(loss, 50.0))
        elif self.task == "segment":
            conf = self.confusion.double()
            inter = conf.diag()
            union = conf.sum(0) + conf.sum(1) - inter
            present = union > 0  # classes in the targets or the predictions
            r["iou"] = float((inter[present] / union[present]).mean()) if present.any() else 0.0
            r["pixel_accuracy"] = float(inter.sum() / conf.sum().clamp(min=1))
        return r


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: Data, cfg: RunConfig | None = None, *, device=None,
             max_batches: int | None = None, batch_size: int | None = None) -> dict[str, float]:
    """Validation loss and metrics.

    Keys: `loss` (weighted total); `<head>/loss` and `<head>/<metric>` per trained
    head; and for convenience the plain metric names (`accuracy`, `perplexity`,
    `iou`, `pixel_accuracy`) taken from the first head that has them.
    """
    cfg = cfg or RunConfig()
    info = ckpt.unwrap(model).netspec
    device = device or next(iter(model.parameters())).device
    device = torch.device(device)
    bs = batch_size or cfg.batch_size
    cap = cfg.eval_batches if max_batches is None else max_batches
    meters = {h.name: _Meter(h.task) for h in trained_heads(info)}
    was = model.training
    model.eval()
    try:
        for batch in eval_batches(data.val, bs, cap, cfg.seed):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with _autocast(device, cfg.precision):
                out = outputs_by_head(model(batch["x"]), info)
            for name, m in meters.items():
                m.add(out[name], batch)
    finally:
        model.train(was)
    res: dict[str, float] = {}
    total = 0.0
    for h in trained_heads(info):
        r = meters[h.name].result()
        total += h.weight * r["loss"]
        for k, v in r.items():
            res[f"{h.name}/{k}"] = v
            if k != "loss":
                res.setdefault(k, v)
    res = {"loss": total, **res}
    return res


# --------------------------------------------------------------------------
# Optimizer, schedule, precision


def _amp_dtype(precision: str):
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def _autocast(device: torch.device, precision: str):
    dtype = _amp_dtype(precision)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
