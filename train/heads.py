"""A built model's heads as training sees them: which are trained, for which task, with
which arguments, and the model's output split by head.

A head's task is a row of `netspec.dsl.tasks.TASKS`, looked up by the name the spec
wrote (`head logits: classify`); a head without a task is an output, never trained.
"""
from __future__ import annotations

from typing import Any

import torch

from ..dsl.tasks import TASKS, Task, arg_problems


def task_of(head) -> Task:
    """The TASKS row of a trained head (`head.task` is checked by `netspec check`)."""
    return TASKS[head.task]


def trained_heads(info) -> list:
    """The heads of a ModelInfo that have a task, in declaration order."""
    return [h for h in info.heads if h.task is not None]


def head_arg(head, name: str):
    """A task argument of a head as the spec gave it, else the task's default."""
    args = getattr(head, "args", None) or {}
    if name in args:
        return args[name]
    a = task_of(head).arg(name)
    return a.default if a is not None else None


def unknown_task(info) -> str | None:
    """A message naming the first head whose task TASKS does not know (a ModelInfo written
    by hand, or a run from another version), or whose task arguments are wrong; else None."""
    for h in trained_heads(info):
        if h.task not in TASKS:
            return (f"head '{h.name}' of {info.name} has unknown task '{h.task}' "
                    f"(known: {', '.join(TASKS)})")
        # Checked here as well as by `netspec check`: a ModelInfo may be written by hand.
        problems = arg_problems(TASKS[h.task], dict(getattr(h, "args", None) or {}))
        if problems:
            return f"head '{h.name}' of {info.name}: {problems[0]}"
    return None


# task -> the position of the input its head reads when the head names no `target=`
# (0, the first, for the others): a seq2seq decoder's input comes after the encoder's
TARGET_DEFAULT = {"seq2seq": -1}


def target_index(head, info) -> int:
    """Position among the model's inputs of the input a head reads (its `target=`, else its
    task's default): the sequence an lm / seq2seq head predicts, the image reconstruct redraws."""
    default = TARGET_DEFAULT.get(head.task, 0) % len(info.inputs)
    name = getattr(head, "target", None)
    return next((i for i, inp in enumerate(info.inputs) if inp.name == name), default)


def outputs_by_head(out: Any, info) -> dict[str, torch.Tensor]:
    """forward()'s result as a dict head -> tensor, whatever the number of heads."""
    if isinstance(out, dict):
        return out
    if isinstance(out, (tuple, list)) and len(out) == len(info.heads):
        return {h.name: o for h, o in zip(info.heads, out)}
    return {info.heads[0].name: out}
