"""The head tasks the language knows: one table, the single source of truth.

`head logits: classify` names a row of TASKS. Each row says what the head trains
for, which batch fields the data must provide, which loss and validation metrics
the trainer uses (by name: `netspec.train` maps them to functions, as the compiler
maps the layer registry's targets), what the head's output must look like, and the
keyword arguments a head may give, with the values each accepts (`arg_problems`).
`netspec check` validates heads against it without torch; adding a task that reuses
a loss is one row here.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskArg:
    name: str
    default: object  # None: no default (the head may leave it out, unless required)
    doc: str
    kind: str = "any"  # what a value must be: a key of ARG_KINDS
    choices: tuple[str, ...] = ()  # the values allowed, when they are a fixed set
    required: bool = False  # the head must give it


# value kind -> (test, what a bad value is told it should be)
ARG_KINDS = {
    "any": (lambda v: True, "a value"),
    "weight": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0, "a non-negative number"),
    "count": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a positive whole number"),
    "name": (lambda v: isinstance(v, str) and v.isidentifier(), "a name"),
    "input": (lambda v: isinstance(v, str) and v.isidentifier(), "the name of an input of the model"),
}

# Every task takes `weight`: the head's share of the total loss.
WEIGHT = TaskArg("weight", 1.0, "weight of this head's loss in the total (several heads: a weighted sum)", "weight")

# The output losses of a head over many classes (a vocabulary): the notes' word2vec ladder,
# "from slowest to fastest: softmax -> hierarchical softmax -> noise contrastive estimation ->
# negative sampling". All but softmax train on the input of the head's last Linear layer and
# that layer's weights (see docs/TRAINING.md); netspec.train's SAMPLED table implements them.
OUTPUT_LOSSES = ("softmax", "hierarchical_softmax", "nce", "negative_sampling")
LOSS = TaskArg("loss", "softmax", "how the class distribution is trained: " + ", ".join(OUTPUT_LOSSES),
               "name", OUTPUT_LOSSES)
NOISE = TaskArg("k", 5, "noise words drawn per target (nce, negative_sampling), from unigram^0.75", "count")


def _target(doc: str) -> TaskArg:  # lm, seq2seq and reconstruct read an input of the model
    return TaskArg("target", None, doc, "input")


@dataclass(frozen=True)
class Task:
    name: str
    doc: str  # one line, for `netspec layers` and the docs
    needs: tuple[str, ...]  # batch fields the data provides: "y" labels, "mask", "target"; the inputs always
    loss: str  # name of the training loss (netspec.train's LOSSES table)
    metrics: tuple[str, ...]  # validation metrics besides the loss (netspec.train's METRICS table)
    output: str  # what the head outputs, checked against the data: see OUTPUTS
    args: tuple[TaskArg, ...] = (WEIGHT,)
    pixels: str | None = None  # the pixel scale image data must have for it (PIXELS); None: standardized
    figure: str | None = None  # what each validation pass draws into the run folder (netspec.train's FIGURES)

    def arg(self, name: str) -> TaskArg | None:
        return next((a for a in self.args if a.name == name), None)


# output rule -> what it means (the trainer checks it against the data's shapes)
OUTPUTS = {
    "class_logits": "[B, C]: one logit per class",
    "token_logits": "[B, T, V]: next-token logits at every position",
    "pixel_logits": "[B, C, H, W]: one logit per class and pixel",
    "like_target": "the shape of the input it reconstructs",
    "values": "[B, K] (or [B]): K real values per sample",
    "sample": "a batch shaped like the critic's input: what the critic scores",
}

# pixel scale -> what image data fed to such a head holds (default: standardized by the
# training split's mean and std)
PIXELS = {
    "unit": "raw pixels in [0, 1], as a Sigmoid output gives them back",
    "signed": "pixels in [-1, 1], as a Tanh output gives them",
}

TASKS: dict[str, Task] = {t.name: t for t in (
    Task("classify", "class logits; cross-entropy against labels y, accuracy", ("y",), "cross_entropy",
         ("accuracy",), "class_logits", (WEIGHT, LOSS, NOISE)),
    Task("lm", "language model: next-token cross-entropy over the sequence, perplexity", (), "next_token",
         ("perplexity",), "token_logits",
         (WEIGHT, _target("the token input it predicts (default: the first input)"), LOSS, NOISE)),
    Task("seq2seq", "sequence to sequence by teacher forcing: next-token cross-entropy over the target "
         "sequence (padding ignored), perplexity, exact match", (), "next_token", ("perplexity", "exact_match"),
         "token_logits", (WEIGHT, _target("the decoder's input, the target shifted right (default: the last "
                                          "input)"), LOSS, NOISE)),
    Task("segment", "per-pixel class logits; cross-entropy against a mask, mean IoU, pixel accuracy", ("mask",),
         "pixel_cross_entropy", ("iou", "pixel_accuracy"), "pixel_logits"),
    Task("reconstruct", "reproduce an input; mean squared error, and its ratio to predicting the mean image",
         (), "mse_input", ("mse", "relative_mse"), "like_target",
         (WEIGHT, _target("the input to reproduce (default: the first input)")), pixels="unit",
         figure="reconstructions"),
    Task("regress", "real-valued targets; mean squared error", ("target",), "mse", (), "values"),
    Task("adversarial", "a generator trained against its critic (non-saturating GAN loss); the critic's "
         "mean belief that real and generated samples are real", (), "nonsaturating", ("d_real", "d_fake"),
         "sample", (WEIGHT, TaskArg("critic", None, "the model of the same file that scores a sample real "
                                    "(logit > 0) or generated", "name", required=True)),
         pixels="signed", figure="samples"),
)}


def arg_problems(task: Task, args: dict) -> list[str]:
    """What is wrong with a head's task arguments (`args`: name -> value as written), one line each:
    unknown names, values of the wrong kind or outside the choices, required ones missing."""
    problems = []
    for name, value in args.items():
        a = task.arg(name)
        if a is None:
            known = ", ".join(x.name for x in task.args)
            problems.append(f"task '{task.name}' takes no argument '{name}' (it takes {known})")
            continue
        test, what = ARG_KINDS[a.kind]
        if a.choices and value not in a.choices:
            problems.append(f"{task.name}: {name} must be one of {', '.join(a.choices)}, got {value!r}")
        elif not test(value):
            problems.append(f"{task.name}: {name} must be {what}, got {value!r}")
    problems += [f"task '{task.name}' needs {a.name}=... ({a.doc})" for a in task.args
                 if a.required and a.name not in args]
    return problems
