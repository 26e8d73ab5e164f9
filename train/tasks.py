"""Training for each head task: the loss and metrics a row of `netspec.dsl.tasks.TASKS`
names, looked up in `losses.LOSSES`, `metrics.METRICS`, `data.OUTPUTS` and `figures.FIGURES`.

Adding a task that reuses a loss, metrics and an output rule is one row in
dsl/tasks.py; a new loss is one function and one entry in LOSSES, likewise metrics,
output rules and figures. `unimplemented()` lists what a row names that these tables lack.
Several heads train on the weighted sum of their losses; a head's `Objective`
(objectives.py) is its task's loss unless it chose another output loss (`loss=`).
"""
from __future__ import annotations

from typing import Any

import torch

from ..dsl.tasks import OUTPUT_LOSSES, TASKS
from .data.outputs import NEEDS, OUTPUTS
from .grids import FIGURES
from .heads import outputs_by_head, task_of, trained_heads
from .losses import CLASS_ROWS, LOSSES
from .metrics import METRICS, HeadMeter
from .objectives import Objective
from .sampled import OutputLoss
from .vocabpad import limit_logits


def unimplemented() -> list[str]:
    """What the rows of TASKS name that training does not implement (empty when complete)."""
    missing = []
    for t in TASKS.values():
        missing += [f"task '{t.name}': loss '{t.loss}'"] if t.loss not in LOSSES else []
        missing += [f"task '{t.name}': metric '{m}'" for m in t.metrics if m not in METRICS]
        missing += [f"task '{t.name}': output '{t.output}'"] if t.output not in OUTPUTS else []
        missing += [f"task '{t.name}': batch field '{f}'" for f in t.needs if f not in NEEDS]
        missing += [f"task '{t.name}': figure '{t.figure}'"] if t.figure and t.figure not in FIGURES else []
        if t.arg("loss") is not None and t.loss not in CLASS_ROWS:
            missing.append(f"task '{t.name}': loss= on '{t.loss}', which is no softmax over classes")
    missing += [f"output loss '{n}'" for n in OUTPUT_LOSSES if n != "softmax" and n not in OutputLoss.NAMES]
    return missing


def _plain(info) -> dict[str, Objective]:
    """Each head's task's own loss on its full output (what a model's forward() returns)."""
    return {h.name: Objective(LOSSES[task_of(h).loss], lambda out: out) for h in trained_heads(info)}


def head_losses(info, out: Any, batch: dict[str, torch.Tensor], objs: dict[str, Objective] | None = None, *,
                vocab_limit: int | None = None) -> dict[str, torch.Tensor]:
    """Loss per trained head (float32, the mean of its terms over the batch). objs: the heads'
    objectives (default: each task's own loss); lm logits past vocab_limit (a padded
    vocabulary) are cut off first."""
    objs = objs if objs is not None else _plain(info)
    outs = limit_logits(outputs_by_head(out, info), info, vocab_limit, objs)
    return {h.name: objs[h.name].terms(outs[h.name].float(), batch).mean() for h in trained_heads(info)}


def total_loss(info, losses: dict[str, torch.Tensor]) -> torch.Tensor:
    """The weighted sum of the heads' losses (each head's `weight`, 1 by default)."""
    return sum(h.weight * losses[h.name] for h in trained_heads(info))


def head_meters(info, objs: dict[str, Objective] | None = None) -> dict[str, HeadMeter]:
    """A fresh validation meter per trained head."""
    objs = objs if objs is not None else _plain(info)
    return {h.name: HeadMeter(task_of(h).loss, task_of(h).metrics, terms=objs[h.name].terms,
                              scores=objs[h.name].scores) for h in trained_heads(info)}
