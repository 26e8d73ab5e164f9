"""Numerical faults: the first step whose loss was NaN or Inf, per head, and weights that went
non-finite -- found before anything is saved, so a diverged run never overwrites a good
checkpoint.

Every step records, on the device, the first step at which each head's loss (and the
total) was not finite: no host sync per step, so GPU runs keep their speed. The record is
read on logged steps and before every checkpoint (`check`); a checkpoint is also preceded
by a scan of the weights and the optimizer state (`check_tensors`), which catches an
update that overflowed after a finite loss.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import distributed as ddp
from .checkpoint import LAST
from .fsdp import local

NONE = 2**62  # "no bad step yet"


class NonFinite(Exception):
    """Raised by the checks: `what` went non-finite at `step` (the trainer words the error)."""

    def __init__(self, what: str, step: int, value: str):
        super().__init__(what)
        self.what, self.step, self.value = what, step, value


class FiniteGuard:
    def __init__(self, heads: list, device: torch.device, dist: ddp.DistInfo, more: tuple[str, ...] = ()):
        """heads: the trained heads, one loss each after the total; more: the names of further
        losses observed after them (a GAN's "the critic's loss"), each worded "the ..."."""
        self.names = ["the total loss"] + [f"the loss of head '{h.name}'" for h in heads] + list(more)
        self.dist = dist
        self.first = torch.full((len(self.names),), NONE, dtype=torch.int64, device=device)
        self.value = torch.zeros(len(self.names), device=device)  # the first bad value (nan, inf or -inf)

    def observe(self, step: int, total: torch.Tensor, losses: list[torch.Tensor]) -> None:
        """Record step `step`'s losses (total first, then one per head, in order)."""
        vals = torch.stack([total.detach().float()] + [v.detach().float() for v in losses])
        new = ~torch.isfinite(vals) & (self.first == NONE)
        self.first = torch.where(new, torch.full_like(self.first, step), self.first)
        self.value = torch.where(new, vals, self.value)

    def check(self) -> None:
        """Raise NonFinite naming the earliest bad loss, on every rank alike."""
        first = ddp.reduce_min(self.first, self.dist).tolist()
        step = min(first)
        if step == NONE:
            return
        # the head that went bad first; the total only when no single head did
        i = min(range(len(first)), key=lambda k: (first[k], k == 0))
        raise NonFinite(self.names[i], step, _word(float(self.value[i])))


def check_tensors(model: torch.nn.Module, opt: torch.optim.Optimizer, step: int, dist: ddp.DistInfo) -> None:
    """Raise NonFinite when a floating-point weight, buffer or optimizer state tensor is not finite."""
    named = [(n, t) for n, t in list(model.named_parameters()) + list(model.named_buffers())
             if t.is_floating_point()]
    names = {id(p): n for n, p in model.named_parameters()}
    for p, st in opt.state.items():
        named += [(f"optimizer state '{k}' of '{names.get(id(p), '?')}'", t) for k, t in st.items()
                  if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dim() > 0]
    if not named:
        return
    ok = torch.stack([torch.isfinite(local(t)).all() for _, t in named])  # a rank checks its own shards
    bad = ddp.reduce_min(ok.to(torch.int64), dist)
    if bool(bad.all()):
        return
    name = named[int((bad == 0).nonzero()[0])][0]
    raise NonFinite(name if name.startswith("optimizer") else f"weight '{name}'", step, "non-finite")


def _word(v: float) -> str:
    return "nan" if v != v else ("inf" if v > 0 else "-inf")


def fault_message(e: NonFinite, out: Path | None, saved_step: int | None, cfg) -> str:
    """The error of a diverged run: what went non-finite and when, the last good checkpoint
    (never overwritten) and how to go on from it."""
    when = f"at step {e.step}" if e.what.startswith("the ") else f"by step {e.step}"
    msg = f"{e.what} became {e.value} {when}; the run stopped"
    if out is not None and saved_step is not None:
        msg += (f" without saving: '{out / LAST}' (step {saved_step}) is the last good checkpoint, resume it "
                f"with a lower learning rate: netspec train --resume {out} --lr {cfg.lr / 10:g}")
    else:
        msg += f" before any checkpoint was saved; lower --lr (now {cfg.lr:g})"
    return msg + (" or use --precision fp32" if cfg.precision != "fp32" else "")
