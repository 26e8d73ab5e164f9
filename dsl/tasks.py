"""The head tasks the language knows: one table, the single source of truth.

`head logits: classify` names a row of TASKS. Each row says what the head trains
for, which batch fields the data must provide, which loss and validation metrics
the trainer uses (by name: `netspec.train` maps them to functions, as the compiler
maps the layer registry's targets), what the head's output must look like, and the
keyword arguments a head may give. `netspec check` validates heads against it
without torch; adding a task that reuses a loss is one row here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskArg:
    name: str
    default: object  # None: no default (the head may leave it out)
    doc: str
    kind: str = "weight"  # what it takes: "weight" (a number >= 0) | "input" (the name of a model input)


# Every task takes `weight`: the head's share of the total loss.
WEIGHT = TaskArg("weight", 1.0, "weight of this head's loss in the total (several heads: a weighted sum)")
# lm and reconstruct read an input: by default the first
TARGET = TaskArg("target", None, "the model input it predicts or reproduces (default: the first input)", "input")


@dataclass(frozen=True)
class Task:
    name: str
    doc: str  # one line, for `netspec layers` and the docs
    needs: tuple[str, ...]  # batch fields the data provides: "y" labels, "mask", "target"; the inputs always
    loss: str  # name of the training loss (netspec.train's LOSSES table)
    metrics: tuple[str, ...]  # validation metrics besides the loss (netspec.train's METRICS table)
    output: str  # what the head outputs, checked against the data: see OUTPUTS
    args: tuple[TaskArg, ...] = (WEIGHT,)

    def arg(self, name: str) -> TaskArg | None:
        return next((a for a in self.args if a.name == name), None)


# output rule -> what it means (the trainer checks it against the data's shapes)
OUTPUTS = {
    "class_logits": "[B, C]: one logit per class",
    "token_logits": "[B, T, V]: next-token logits at every position",
    "pixel_logits": "[B, C, H, W]: one logit per class and pixel",
    "like_target": "the shape of the input it reconstructs",
    "values": "[B, K] (or [B]): K real values per sample",
}

TASKS: dict[str, Task] = {t.name: t for t in (
    Task("classify", "class logits; cross-entropy against labels y, accuracy", ("y",), "cross_entropy",
         ("accuracy",), "class_logits"),
    Task("lm", "language model: next-token cross-entropy over the sequence, perplexity", (), "next_token",
         ("perplexity",), "token_logits", (WEIGHT, TARGET)),
    Task("segment", "per-pixel class logits; cross-entropy against a mask, mean IoU, pixel accuracy", ("mask",),
         "pixel_cross_entropy", ("iou", "pixel_accuracy"), "pixel_logits"),
    Task("reconstruct", "reproduce an input; mean squared error", (), "mse_input", (), "like_target",
         (WEIGHT, TARGET)),
    Task("regress", "real-valued targets; mean squared error", ("target",), "mse", (), "values"),
)}
