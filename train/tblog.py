"""TensorBoard event files beside metrics.csv (`--log tensorboard`; view with `tensorboard --logdir runs`).

Written into RUN/tensorboard/ (a real folder of the run, never a link):

    scalars  every metrics.csv column, one tag each: train/loss, train/loss_<head>, train/lr,
             train/samples_per_s (or tokens_per_s), val/loss, val/accuracy, ...
    graph    the model, traced once from a validation batch (a warning when tracing fails)
    samples  at the start, the inputs (images, or a validation window's text); after every
             evaluation, per head, what it makes of them -- by its task's output rule (SAMPLES):
             predicted labels or values as a table, generated text, reconstructions and
             predicted masks as images

Sampling and tracing draw from their own generators, so a run logs the same numbers with
or without TensorBoard, and resumes exactly. A resumed run purges the events past its
checkpoint (TensorBoard's purge_step): the curves go on without the steps redone twice.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable

import torch

from . import safefile
from .extras import require
from .heads import outputs_by_head, task_of, trained_heads
from .loggers import RunLog

np = require("numpy")

SHOWN = 8  # validation samples shown
PROMPT, GENERATED = 16, 64  # lm heads: tokens of the prompt, tokens generated


def _unit(x: torch.Tensor) -> torch.Tensor:
    """Images [B, C, H, W] (any range, normalised) scaled per image to [0, 1] for display."""
    x = x.detach().float().cpu()
    lo = x.flatten(1).min(1).values.view(-1, 1, 1, 1)
    hi = x.flatten(1).max(1).values.view(-1, 1, 1, 1)
    return (x - lo) / (hi - lo).clamp(min=1e-8)


def _as_images(x: torch.Tensor) -> torch.Tensor | None:
    """[B, C, H, W] as is; flat [B, D] as square grey or colour images when D allows; else None."""
    if x.dim() == 4 and x.shape[1] in (1, 3):
        return x
    if x.dim() == 2:
        for c in (1, 3):
            side = int(round((x.shape[1] / c) ** 0.5))
            if c * side * side == x.shape[1]:
                return x.reshape(x.shape[0], c, side, side)
    return None


def _own_rng(model):
    """Draws inside leave the run's generators (CPU, and the model's GPU) as they were."""
    device = next(iter(model.parameters())).device
    return torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else [])


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


# --------------------------------------------------------------------------
# What each output rule (dsl.tasks.OUTPUTS) shows after an evaluation


def _labels(log, head, out, batch, step):
    names = log.data.class_names or []
    name = lambda i: names[i] if i < len(names) else str(i)  # noqa: E731
    pred = out.argmax(-1).tolist()
    rows = [(i, name(int(y)), name(p)) for i, (y, p) in enumerate(zip(batch["y"].tolist(), pred))]
    log.writer.add_text(f"samples/{head.name}", _table(("sample", "label", "predicted"), rows), step)


def _text(log, head, out, batch, step):
    from .sampling import generate

    prompt = batch["x"][0, :PROMPT].tolist()
    with _own_rng(log.model):  # the run's own generators stay untouched
        torch.manual_seed(step)
        ids = generate(log.model, prompt, GENERATED, block_size=log.data.want.seq_len, head=head.name,
                       vocab_size=log.data.vocab_size)
    text = log.data.decode(ids[:PROMPT]) + " ⟶ " + log.data.decode(ids[PROMPT:])
    log.writer.add_text(f"samples/{head.name}", "    " + text.replace("\n", "\n    "), step)


def _masks(log, head, out, batch, step):
    pred = out.argmax(1, keepdim=True).float() / max(1, out.shape[1] - 1)
    log.writer.add_images(f"samples/{head.name}/predicted", pred.cpu(), step)
    if "mask" in batch and step == log.first_eval:
        true = batch["mask"].unsqueeze(1).float() / max(1, out.shape[1] - 1)
        log.writer.add_images(f"samples/{head.name}/true", true.cpu(), step)


def _reconstructions(log, head, out, batch, step):
    images = _as_images(out)
    if images is not None:
        log.writer.add_images(f"samples/{head.name}", _unit(images), step)


def _values(log, head, out, batch, step):
    if "target" not in batch:
        return
    fmt = lambda t: ", ".join(f"{v:.3g}" for v in t.reshape(-1).tolist())  # noqa: E731
    rows = [(i, fmt(t), fmt(p)) for i, (t, p) in enumerate(zip(batch["target"], out.detach().float().cpu()))]
    log.writer.add_text(f"samples/{head.name}", _table(("sample", "target", "predicted"), rows), step)


# output rule -> (log, head, output of the shown samples, their batch, step) -> None; a rule
# missing here (a task added later) simply shows no samples
SAMPLES: dict[str, Callable] = {
    "class_logits": _labels,
    "token_logits": _text,
    "pixel_logits": _masks,
    "like_target": _reconstructions,
    "values": _values,
}


class TensorBoardLog(RunLog):
    def __init__(self, out: Path, info, data, resume_step: int | None):
        require("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        folder = safefile.real_dir(out, "tensorboard")
        purge = None if resume_step is None else resume_step + 1  # events after the checkpoint are redone
        self.writer = SummaryWriter(log_dir=str(folder), purge_step=purge)
        self.info, self.data, self.resumed = info, data, resume_step is not None
        self.batch = data.val.batch(np.arange(min(SHOWN, len(data.val))), 0)
        self.model = None
        self.first_eval: int | None = None

    def start(self, model, warn) -> None:
        self.model = model
        if self.resumed:  # the graph and the inputs are in the events already
            return
        device = next(iter(model.parameters())).device
        x = self.batch["x"].to(device)
        try:
            with _own_rng(model), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's own warnings say nothing to a user here
                self.writer.add_graph(model, x)
        except Exception as e:  # noqa: BLE001 - a model the tracer cannot follow still trains
            warn(f"warning: tensorboard: could not trace the model graph ({type(e).__name__}: {e})")
        if self.data.kind == "tokens":
            self.writer.add_text("samples/input", "    " + self.data.decode(self.batch["x"][0].tolist()), 0)
        else:
            images = _as_images(self.batch["x"])
            if images is not None:
                self.writer.add_images("samples/input", _unit(images), 0)

    def row(self, step: int, row: dict) -> None:
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)):
                tag = f"val/{key[4:]}" if key.startswith("val_") else f"train/{key}"
                self.writer.add_scalar(tag, value, step)

    @torch.no_grad()
    def evaluated(self, step: int, model, data) -> None:
        if self.first_eval is None:
            self.first_eval = step
        device = next(iter(model.parameters())).device
        was = model.training
        model.eval()
        try:
            batch = {k: v.to(device) for k, v in self.batch.items()}
            outs = outputs_by_head(model(batch["x"]), self.info)
            for h in trained_heads(self.info):
                show = SAMPLES.get(task_of(h).output)
                if show is not None:
                    show(self, h, outs[h.name].float(), {k: v.cpu() for k, v in batch.items()}, step)
        finally:
            model.train(was)

    def sync(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
