"""Training for each head task: the loss and metrics a row of `netspec.dsl.tasks.TASKS`
names, looked up in `losses.LOSSES`, `metrics.METRICS` and `data.OUTPUTS`.

Adding a task that reuses a loss, metrics and an output rule is one row in
dsl/tasks.py; a new loss is one function and one entry in LOSSES, likewise metrics
and output rules. `unimplemented()` lists what a row names that these tables lack.
Several heads train on the weighted sum of their losses.
"""
from __future__ import annotations

from typing import Any

import torch

from ..dsl.tasks import TASKS
from .data.outputs import NEEDS, OUTPUTS
from .heads import outputs_by_head, task_of, trained_heads
from .losses import LOSSES
from .metrics import METRICS, HeadMeter
from .vocabpad import limit_logits


def unimplemented() -> list[str]:
    """What the rows of TASKS name that training does not implement (empty when complete)."""
    missing = []
    for t in TASKS.values():
        missing += [f"task '{t.name}': loss '{t.loss}'"] if t.loss not in LOSSES else []
        missing += [f"task '{t.name}': metric '{m}'" for m in t.metrics if m not in METRICS]
        missing += [f"task '{t.name}': output '{t.output}'"] if t.output not in OUTPUTS else []
        missing += [f"task '{t.name}': batch field '{f}'" for f in t.needs if f not in NEEDS]
    return missing


def head_losses(info, out: Any, batch: dict[str, torch.Tensor], *,
                vocab_limit: int | None = None) -> dict[str, torch.Tensor]:
    """Loss per trained head (float32, the mean of its terms over the batch); lm logits past
    vocab_limit (a padded vocabulary) are cut off first."""
    outs = limit_logits(outputs_by_head(out, info), info, vocab_limit)
    return {h.name: LOSSES[task_of(h).loss](outs[h.name].float(), batch).mean() for h in trained_heads(info)}


def total_loss(info, losses: dict[str, torch.Tensor]) -> torch.Tensor:
    """The weighted sum of the heads' losses (each head's `weight`, 1 by default)."""
    return sum(h.weight * losses[h.name] for h in trained_heads(info))


def head_meters(info) -> dict[str, HeadMeter]:
    """A fresh validation meter per trained head."""
    return {h.name: HeadMeter(task_of(h).loss, task_of(h).metrics) for h in trained_heads(info)}

