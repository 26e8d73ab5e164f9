"""A built model's heads as training sees them: which are trained, for which task, and
the model's output split by head.

A head's task is a row of `netspec.dsl.tasks.TASKS`, looked up by the name the spec
wrote (`head logits: classify`); a head without a task is an output, never trained.
"""
from __future__ import annotations

from typing import Any

import torch

from ..dsl.tasks import TASKS, Task


def task_of(head) -> Task:
    """The TASKS row of a trained head (`head.task` is checked by `netspec check`)."""
    return TASKS[head.task]


def trained_heads(info) -> list:
    """The heads of a ModelInfo that have a task, in declaration order."""
    return [h for h in info.heads if h.task is not None]


def unknown_task(info) -> str | None:
    """A message naming the first head whose task TASKS does not know (a ModelInfo written
    by hand, or a run from another version), else None."""
    for h in trained_heads(info):
        if h.task not in TASKS:
            return (f"head '{h.name}' of {info.name} has unknown task '{h.task}' "
                    f"(known: {', '.join(TASKS)})")
    return None


def outputs_by_head(out: Any, info) -> dict[str, torch.Tensor]:
    """forward()'s result as a dict head -> tensor, whatever the number of heads."""
    if isinstance(out, dict):
        return out
    if isinstance(out, (tuple, list)) and len(out) == len(info.heads):
        return {h.name: o for h, o in zip(info.heads, out)}
    return {info.heads[0].name: out}
