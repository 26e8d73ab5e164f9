"""The training loop: optimizer and schedule, mixed precision, gradient accumulation, eval, checkpoints.

`train(model, cfg, data, out_dir)` trains any model carrying `.netspec`
(a `compiler.info.ModelInfo`) and leaves a self-contained run folder:

    config.yaml        the resolved RunConfig
    spec.nn            copy of the spec; model.json: model name and params to rebuild it
    vocab.json         char vocabulary (text data with vocab: char only)
    metrics.csv        one row per log_every steps; validation columns on eval steps
    curves.png         loss and validation metric curves
    model.safetensors  weights (tied weights handled)
    state.pt           optimizer, schedule, scaler, RNG states, step, data position

`train(..., resume=True)` continues from state.pt exactly: on CPU, N steps in
one go and N/2 + N/2 resumed give identical weights. Losses and metrics per head task
live in compiler/tasks.py, the progress bar and run files in compiler/runlog.py.
"""
from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..dsl.errors import NetspecError
from . import checkpoint as ckpt
from . import distributed as ddp
from .data import Data, Loader, check_model, load_data
from .config import RunConfig
from .runlog import (
    Progress,
    _csv_columns,
    _fmt,
    _fmt_metrics,
    _fmt_time,
    _open_metrics,
    _val_columns,  # noqa: F401  (re-exported for callers of trainer)
    write_run_files,
)
from .sampling import generate  # noqa: F401
from .tasks import TASK_METRICS, _amp_dtype, _autocast, _Meter, evaluate, head_losses, total_loss, trained_heads  # noqa: F401,E501

DEFAULT_STEPS = 1000  # when neither steps nor epochs is set



class TrainError(NetspecError):
    """A run that cannot start (e.g. resuming a folder without a checkpoint). User-facing message."""


@dataclass
class TrainResult:
    out_dir: Path | None
    step: int  # optimizer steps done in total
    total_steps: int
    seconds: float  # wall time of this call
    val: dict[str, float] = field(default_factory=dict)  # last validation metrics
    train_loss: float = float("nan")  # last logged training loss
    interrupted: bool = False


# --------------------------------------------------------------------------
# Losses and metrics


def make_optimizer(model: torch.nn.Module, cfg: RunConfig, device: torch.device) -> torch.optim.Optimizer:
    # nanoGPT's rule: decay every >=2-D tensor (matmul / conv / embedding weights), never
    # biases or norm gains (1-D), which only shift or scale activations.
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), **extra)


class Schedule:
    """Learning rate per step: linear warm-up, then cosine / linear decay to min_lr, or constant."""

    def __init__(self, cfg: RunConfig, total_steps: int):
        self.cfg, self.total = cfg, total_steps

    def lr(self, step: int) -> float:
        c = self.cfg
        if step < c.warmup_steps:
            return c.lr * (step + 1) / (c.warmup_steps + 1)
        if c.schedule == "constant":
            return c.lr
        span = max(1, self.total - c.warmup_steps)
        ratio = min(1.0, (step - c.warmup_steps) / span)
        if c.schedule == "linear":
            return c.lr + (c.final_lr - c.lr) * ratio
        return c.final_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (c.lr - c.final_lr)

    def apply(self, opt: torch.optim.Optimizer, step: int) -> float:
        lr = self.lr(step)
        for g in opt.param_groups:
            g["lr"] = lr
        return lr

    def state_dict(self) -> dict:
        return {"schedule": self.cfg.schedule, "total_steps": self.total, "warmup_steps": self.cfg.warmup_steps}


def resolve_steps(cfg: RunConfig, loader: Loader) -> int:
    if cfg.steps is not None:
        return cfg.steps
    if cfg.epochs is not None:
        return max(1, math.ceil(cfg.epochs * loader.batches_per_epoch / cfg.grad_accum))
    return DEFAULT_STEPS


# --------------------------------------------------------------------------
# Progress display


class _StopFlag:
    """First Ctrl-C: finish the current step, checkpoint, stop. Second: abort."""

    def __init__(self, enabled: bool):
        self.set = False
        self.prev = None
        if enabled and threading.current_thread() is threading.main_thread():
            self.prev = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True

    def restore(self):
        if self.prev is not None:
            signal.signal(signal.SIGINT, self.prev)


def seed_all(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(model: torch.nn.Module, cfg: RunConfig, data: Data | str | None = None, out_dir: str | Path | None = None,
          *, resume: bool = False, stop_after: int | None = None, overrides: dict | None = None,
          progress: bool = True, live: bool | None = None, stream=None,
          on_step: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train `model` (which carries `.netspec`) under `cfg`.

    data: a loaded `Data`, a SOURCE string, or None (cfg.data, else a built-in that fits).
    out_dir: the run folder (None: write nothing -- no metrics, no checkpoints).
    resume: continue from out_dir/state.pt and model.safetensors.
    stop_after: stop (with a checkpoint) once this many steps are done in total, as if
        interrupted; a later resume finishes the schedule.
    overrides: the --set values the model was built with, saved in model.json for rebuilding.
    progress / live / stream: show progress (rank 0 only); live forces the rich bar on or off.
    on_step: called on rank 0 after every step with (step, logged values) -- for tests / tools.
    """
    t_start = time.time()
    dist = ddp.setup(cfg.device)
    main = dist.is_main
    device = dist.device
    raw = ckpt.unwrap(model)
    info = raw.netspec
    out = Path(out_dir) if out_dir is not None else None
    if resume and (out is None or not (out / ckpt.STATE).is_file()):
        raise TrainError(f"cannot resume: '{out_dir}' has no {ckpt.STATE}")

    if not isinstance(data, Data):
        vocab = None
        if resume and out is not None and (out / "vocab.json").is_file():
            vocab = json.loads((out / "vocab.json").read_text())
        data = load_data(data if isinstance(data, str) else None, info, cfg, model=raw, vocab=vocab)
    if cfg.data != data.name:
        cfg = cfg.replace(data=data.name)
    if not trained_heads(info):
        raise TrainError(f"{info.name} has no head with a task (classify, lm, segment, reconstruct, regress) to train")

    raw.to(device)
    check_model(raw, data, info)
    seed_all(cfg.seed + dist.rank)  # dropout masks differ per rank, like nanoGPT's seed offset

    loader = Loader(data.train, cfg.batch_size, cfg.seed, rank=dist.rank, world=dist.world,
                    num_workers=cfg.num_workers)
    total = resolve_steps(cfg, loader)
    opt = make_optimizer(raw, cfg, device)
    sched = Schedule(cfg, total)
    use_scaler = cfg.precision == "fp16" and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    step = 0
    if resume:
        state = ckpt.load_state(out)
        ckpt.load_weights_file(raw, out)
        opt.load_state_dict(state["optimizer"])
        if state.get("scaler") and use_scaler:
            scaler.load_state_dict(state["scaler"])
        step = int(state["step"])
        loader.load_state_dict(state["loader"])
        rngs = state["rng"]
        ckpt.set_rng_state(rngs[dist.rank] if dist.rank < len(rngs) else rngs[0])
        if step >= total:
            raise TrainError(f"run '{out}' already finished {step} of {total} steps; raise --steps to train on")

    model = raw
    if cfg.compile:
        model = torch.compile(model)
    model = ddp.wrap(model, dist)  # broadcasts rank 0's parameters and buffers

    unit = "tokens" if data.kind == "tokens" else "samples"
    per_step = cfg.batch_size * cfg.grad_accum * dist.world * (data.want.seq_len if unit == "tokens" else 1)
    if out is not None and main:
        write_run_files(out, info, cfg, data, overrides)
    cols = _csv_columns(info, unit)
    csv_file = csv_writer = None
    if out is not None and main:
        csv_file, csv_writer = _open_metrics(out / "metrics.csv", cols, step if resume else None)

    heads = trained_heads(info)
    show = progress and main
    bar = Progress(total, step, show, cfg.log_every, unit, stream=stream, live=live)
    if show:
        bar.message(f"{info.name}: {sum(p.numel() for p in raw.parameters()):,} parameters on {device}"
                    f"{f' x{dist.world}' if dist.world > 1 else ''}; {data.describe()}; {total} steps"
                    + (f" (resuming at {step})" if resume else ""))
    stop = _StopFlag(enabled=not dist.enabled)

    def save(step_now: int) -> None:
        if out is None:
            return
        rngs = ddp.gather_objects(ckpt.rng_state(), dist)
        if main:
            state = {"step": step_now, "total_steps": total, "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "scaler": scaler.state_dict() if use_scaler else None,
                     "loader": loader.state_dict(), "rng": rngs, "world": dist.world}
            ckpt.save_checkpoint(out, raw, state, {"model": info.name, "step": str(step_now)})
            csv_file.flush()
            try:
                from .plot import plot_curves

                plot_curves(out / "metrics.csv", out / "curves.png")
            except Exception as e:  # noqa: BLE001 - a plotting failure must never lose a run
                bar.message(f"warning: could not draw curves.png: {e}")
        ddp.barrier(dist)

    model.train()
    acc_losses = {h.name: torch.zeros((), device=device) for h in heads}
    acc_total = torch.zeros((), device=device)
    acc_n = 0
    last_log_t, last_log_step = time.time(), step
    last_val: dict[str, float] = {}
    train_loss = float("nan")
    interrupted = False
    try:
        while step < total:
            lr = sched.apply(opt, step)
            for micro in range(cfg.grad_accum):
                batch = loader.next()
                batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
                sync = micro == cfg.grad_accum - 1
                ctx = model.no_sync() if (not sync and hasattr(model, "no_sync")) else nullcontext()
                with ctx:
                    with _autocast(device, cfg.precision):
                        o = model(batch["x"])
                    losses = head_losses(info, o, batch)
                    loss = total_loss(info, losses)
                    scaler.scale(loss / cfg.grad_accum).backward()
                for k, v in losses.items():
                    acc_losses[k] += v.detach() / cfg.grad_accum
                acc_total += loss.detach() / cfg.grad_accum
            if cfg.grad_clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
            scaler.step(opt)
            scaler.update()
            opt.zero_grad(set_to_none=True)
            step += 1
            acc_n += 1

            do_log = step % max(1, cfg.log_every) == 0 or step == total
            do_eval = step == total or (cfg.eval_every and step % cfg.eval_every == 0)
            do_save = step == total or (cfg.save_every and step % cfg.save_every == 0)
            # Ranks must agree to stop on the same step (stop.set is never set under torchrun).
            want_stop = (stop_after is not None and step >= stop_after) or stop.set
            row: dict[str, Any] = {}
            if do_log or do_eval or want_stop:
                vals = torch.stack([acc_total] + [acc_losses[h.name] for h in heads]) / acc_n
                vals = ddp.mean(vals, dist).tolist()
                now = time.time()
                speed = (step - last_log_step) * per_step / max(now - last_log_t, 1e-9)
                last_log_t, last_log_step = now, step
                train_loss = vals[0]
                row = {"step": step, "loss": vals[0], "lr": lr, f"{unit}_per_s": speed}
                row.update({f"loss_{h.name}": v for h, v in zip(heads, vals[1:])})
                acc_total.zero_()
                for v in acc_losses.values():
                    v.zero_()
                acc_n = 0
                if not math.isfinite(vals[0]):
                    raise TrainError(f"loss became {vals[0]} at step {step}; lower --lr or use --precision fp32")
            if do_eval:
                if main:
                    last_val = evaluate(raw, data, cfg, device=device)
                    row.update(_val_columns(info, last_val))
                ddp.barrier(dist)
            if row and main:
                if csv_writer is not None:
                    csv_writer.writerow({k: _fmt(v) for k, v in row.items()})
                text = f"loss {row['loss']:.4f}  lr {lr:.2e}  {row[f'{unit}_per_s']:,.0f} {unit}/s"
                bar.update(step, text, force=bool(do_eval))
                if do_eval:
                    bar.message(f"step {step}: {_fmt_metrics(last_val)}")
            else:
                bar.update(step)
            if on_step is not None and main:
                on_step(step, row)
            if do_save or (want_stop and step < total):
                save(step)
            if want_stop and step < total:
                interrupted = True
                if main and stop.set:
                    bar.message(f"stopped at step {step}; continue with --resume {out}" if out else
                                f"stopped at step {step}")
                break
    finally:
        stop.restore()
        bar.close()
        if csv_file is not None:
            csv_file.close()
    secs = time.time() - t_start
    if show:
        where = f" -> {out}" if out is not None else ""
        val = f"; {_fmt_metrics(last_val)}" if last_val else ""
        state = "stopped" if interrupted else "done"
        print(f"{state}: {info.name} {step}/{total} steps in {_fmt_time(secs)}, loss {train_loss:.4f}{val}{where}",
              file=stream or sys.stdout, flush=True)
    ddp.cleanup(dist)
    return TrainResult(out_dir=out, step=step, total_steps=total, seconds=secs, val=last_val,
                       train_loss=train_loss, interrupted=interrupted)


# --------------------------------------------------------------------------
# Sampling (lm heads)
