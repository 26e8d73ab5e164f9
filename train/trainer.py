"""The training loop: optimizer and schedule, mixed precision, gradient accumulation, eval, checkpoints.

`train(model, cfg, data, out_dir)` trains any model carrying `.netspec`
(a `compiler.info.ModelInfo`) and leaves a self-contained run folder:

    config.yaml        the resolved RunConfig
    spec/, stdlib/     the spec and every file it imports (see speccopy)
    model.json         model name, params and where its spec copy is, to rebuild it
    vocab.json         char vocabulary (text data with vocab: char only)
    metrics.csv        one row per log_every steps; validation columns on eval steps
    curves.png         loss and validation metric curves
    model.safetensors  weights (tied weights handled)
    state.pt           optimizer, schedule, scaler, RNG states, step, data position

`train(..., resume=True)` continues from state.pt exactly: on CPU, N steps in
one go and N/2 + N/2 resumed give identical weights. Losses and metrics per head task
live in tasks.py (tables in losses.py, metrics.py), the validation pass in validation.py,
the progress bar and run files in runlog.py.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..dsl.tasks import TASKS
from . import checkpoint as ckpt
from . import distributed as ddp
from .errors import TrainError
from .config import RunConfig
from .data import Data, Loader, check_model, load_data
from .validation import evaluate
from .extras import require
from .grids import draw
from .heads import task_of, trained_heads, unknown_task
from .metrics import format_metrics
from .objectives import objectives, training_view
from .optim import Schedule, make_optimizer, resolve_steps
from .pair import adversarial_head
from .precision import autocast
from .runfolder import read_vocab, save_config, write_run_files
from .runlog import Progress, csv_columns, csv_value, format_time, open_metrics, val_columns
from .tasks import head_losses, total_loss

np = require("numpy")

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
# Seeds and Ctrl-C


def seed_all(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (initial weights, dropout)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


# --------------------------------------------------------------------------
# One run


class _Run:
    """The state of one training run: data position, optimizer, schedule, scaler, step, and
    the training losses summed since the last logged row."""

    def __init__(self, raw: torch.nn.Module, cfg: RunConfig, data: Data, dist: ddp.DistInfo, out: Path | None):
        self.raw, self.info, self.cfg, self.data, self.dist, self.out = raw, raw.netspec, cfg, data, dist, out
        self.heads = trained_heads(self.info)
        self.objectives = objectives(raw, self.info, data.counts)  # each head's loss (objectives.py)
        self.loader = Loader(data.train, cfg.batch_size, cfg.seed, rank=dist.rank, world=dist.world,
                             num_workers=cfg.num_workers)
        self.total = resolve_steps(cfg, self.loader)
        self.opt = make_optimizer(raw, cfg, dist.device)
        self.sched = Schedule(cfg, self.total)
        self.use_scaler = cfg.precision == "fp16" and dist.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_scaler)
        self.step = 0
        self.unit = "tokens" if data.kind == "tokens" else "words" if data.kind == "ids" else "samples"
        self.per_step = cfg.batch_size * cfg.grad_accum * dist.world * (data.want.seq_len if data.kind == "tokens"
                                                                         else 1)
        self._zero_sums()
        self.last_log = (time.time(), 0)  # (time, step) of the last logged row, for the speed
        self.csv_file = self.csv = None  # metrics.csv and its DictWriter (rank 0 of a run with a folder)

    def restore(self) -> None:
        """Continue from the run folder's checkpoint: weights, optimizer, scaler, step, data, RNGs."""
        state = ckpt.load_state(self.out)
        ckpt.load_weights_file(self.raw, self.out)
        self.opt.load_state_dict(state["optimizer"])
        if state.get("scaler") and self.use_scaler:
            self.scaler.load_state_dict(state["scaler"])
        self.step = int(state["step"])
        self.loader.load_state_dict(state["loader"])
        rngs = state["rng"]
        ckpt.set_rng_state(rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0])
        if self.step >= self.total:
            raise TrainError(f"run '{self.out}' already finished {self.step} of {self.total} steps; "
                             "raise --steps to train on")

    def _zero_sums(self) -> None:
        device = self.dist.device
        self.loss_sums = {h.name: torch.zeros((), device=device) for h in self.heads}
        self.total_sum = torch.zeros((), device=device)
        self.sum_steps = 0

    def train_step(self, model: torch.nn.Module) -> float:
        """One optimizer step over grad_accum micro-batches; returns its learning rate."""
        cfg, device = self.cfg, self.dist.device
        lr = self.sched.apply(self.opt, self.step)
        for micro in range(cfg.grad_accum):
            batch = {k: v.to(device, non_blocking=True) for k, v in self.loader.next().items()}
            last = micro == cfg.grad_accum - 1
            # DDP averages gradients on the last micro-batch only
            sync = nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with autocast(device, cfg.precision):
                    out = model(*self.data.model_inputs(batch))
                losses = head_losses(self.info, out, batch, self.objectives)
                loss = total_loss(self.info, losses)
                self.scaler.scale(loss / cfg.grad_accum).backward()
            for k, v in losses.items():
                self.loss_sums[k] += v.detach() / cfg.grad_accum
            self.total_sum += loss.detach() / cfg.grad_accum
        if cfg.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.raw.parameters(), cfg.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        self.step += 1
        self.sum_steps += 1
        return lr

    def loss_row(self, lr: float) -> dict[str, Any]:
        """The training losses since the last row (averaged over steps and ranks), lr and speed,
        as a metrics.csv row; starts the next sums."""
        vals = torch.stack([self.total_sum] + [self.loss_sums[h.name] for h in self.heads]) / self.sum_steps
        vals = ddp.mean(vals, self.dist).tolist()
        now = time.time()
        speed = (self.step - self.last_log[1]) * self.per_step / max(now - self.last_log[0], 1e-9)
        self.last_log = (now, self.step)
        self._zero_sums()
        if not math.isfinite(vals[0]):
            raise TrainError(f"loss became {vals[0]} at step {self.step}; lower --lr or use --precision fp32")
        row = {"step": self.step, "loss": vals[0], "lr": lr, f"{self.unit}_per_s": speed}
        row.update({f"loss_{h.name}": v for h, v in zip(self.heads, vals[1:])})
        return row

    def save(self, warn: Callable[[str], None]) -> None:
        """Checkpoint into the run folder (rank 0 writes; every rank's RNG state is kept), then
        redraw curves.png. A failure to draw is a warning: it must never lose a run."""
        if self.out is None:
            return
        rngs = ddp.gather_objects(ckpt.rng_state(), self.dist)
        if self.dist.is_main:
            state = {"step": self.step, "total_steps": self.total, "optimizer": self.opt.state_dict(),
                     "scheduler": self.sched.state_dict(),
                     "scaler": self.scaler.state_dict() if self.use_scaler else None,
                     "loader": self.loader.state_dict(), "rng": rngs, "world": self.dist.world}
            ckpt.save_checkpoint(self.out, self.raw, state, {"model": self.info.name, "step": str(self.step)})
            try:
                from .plot import plot_curves

                plot_curves(self.out / "metrics.csv", self.out / "curves.png")
            except Exception as e:  # noqa: BLE001 - a plotting failure must never lose a run
                warn(f"warning: could not draw curves.png: {e}")
        ddp.barrier(self.dist)


# --------------------------------------------------------------------------
# train()


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
    Raises a NetspecError (TrainError, DataError, CheckpointError, ...) for anything the user can fix.
    """
    t_start = time.time()
    raw = ckpt.unwrap(model)
    info = raw.netspec
    out = Path(out_dir) if out_dir is not None else None
    if resume and (out is None or not (out / ckpt.STATE).is_file()):
        raise TrainError(f"cannot resume: '{out_dir}' has no {ckpt.STATE}")
    problem = unknown_task(info)  # an unknown task, or task arguments its row rejects
    if problem:
        raise TrainError(problem)
    if adversarial_head(info) is not None:  # two models, two optimizers: a loop of its own
        from . import adversarial  # imported here: it builds on this module's parts

        return adversarial.train_pair(raw, cfg, data, out, resume=resume, stop_after=stop_after,
                                      overrides=overrides, progress=progress, live=live, stream=stream,
                                      on_step=on_step)
    dist = ddp.setup(cfg.device)
    data = _training_data(data, raw, cfg, out if resume else None)
    if cfg.data != data.name:
        cfg = cfg.replace(data=data.name)
    if not trained_heads(info):
        raise TrainError(f"{info.name} has no head with a task ({', '.join(TASKS)}) to train")

    raw.to(dist.device)
    check_model(raw, data, info)
    seed_all(cfg.seed + dist.rank)  # dropout masks differ per rank, like nanoGPT's seed offset
    run = _Run(raw, cfg, data, dist, out)
    if resume:
        run.restore()
    if out is not None and dist.is_main:
        if resume:  # the model, its spec copy and data stay; only the config (more --steps) changes
            save_config(out, cfg)
        else:
            write_run_files(out, info, cfg, data, overrides)
    model = training_view(raw, info, run.objectives)  # raw, unless a head applies its last layer itself
    model = torch.compile(model) if cfg.compile else model
    model = ddp.wrap(model, dist)  # broadcasts rank 0's parameters and buffers

    show = progress and dist.is_main
    bar = Progress(run.total, run.step, show, cfg.log_every, run.unit, stream=stream, live=live)
    if show:
        bar.message(f"{info.name}: {sum(p.numel() for p in raw.parameters()):,} parameters on {dist.device}"
                    f"{f' x{dist.world}' if dist.world > 1 else ''}; {data.describe()}; {run.total} steps"
                    + (f" (resuming at {run.step})" if resume else ""))
    if out is not None and dist.is_main:
        run.csv_file, run.csv = open_metrics(out / "metrics.csv", csv_columns(info, run.unit),
                                             run.step if resume else None)
    stop = _StopFlag(enabled=not dist.enabled)
    try:
        result = _loop(run, model, bar, stop, stop_after, on_step)
    finally:
        stop.restore()
        bar.close()
        if run.csv_file is not None:
            run.csv_file.close()
    result.seconds = time.time() - t_start
    if show:
        _summary(info.name, result, stream)
    ddp.cleanup(dist)
    return result


def _loop(run: _Run, model: torch.nn.Module, bar: Progress, stop: _StopFlag, stop_after: int | None,
          on_step: Callable[[int, dict], None] | None) -> TrainResult:
    """Step until the schedule ends or a stop is asked for; log, evaluate and checkpoint on their steps."""
    cfg, dist = run.cfg, run.dist
    result = TrainResult(out_dir=run.out, step=run.step, total_steps=run.total, seconds=0.0)
    model.train()
    run.last_log = (time.time(), run.step)
    while run.step < run.total:
        lr = run.train_step(model)
        step = result.step = run.step
        do_log = step % max(1, cfg.log_every) == 0 or step == run.total
        do_eval = step == run.total or (cfg.eval_every and step % cfg.eval_every == 0)
        do_save = step == run.total or (cfg.save_every and step % cfg.save_every == 0)
        # Ranks must agree to stop on the same step (stop.set is never set under torchrun).
        want_stop = (stop_after is not None and step >= stop_after) or stop.set
        row = run.loss_row(lr) if do_log or do_eval or want_stop else {}
        result.train_loss = row.get("loss", result.train_loss)
        if do_eval:
            if dist.is_main:
                result.val = evaluate(run.raw, run.data, cfg, device=dist.device, objectives=run.objectives)
                row.update(val_columns(run.info, result.val))
                _draw_figures(run, step, bar.message)
            ddp.barrier(dist)
        if dist.is_main:
            _report(bar, run.csv, row, run.unit, bool(do_eval), result.val, step)
            if on_step is not None:
                on_step(step, row)
        if do_save or (want_stop and step < run.total):
            if run.csv_file is not None:
                run.csv_file.flush()
            run.save(bar.message)
        if want_stop and step < run.total:
            result.interrupted = True
            if dist.is_main and stop.set:
                bar.message(f"stopped at step {step}; continue with --resume {run.out}" if run.out else
                            f"stopped at step {step}")
            break
    return result


def _draw_figures(run: _Run, step: int, warn: Callable[[str], None]) -> None:
    """Each head's figure (grids.py) for this validation pass, into the run folder. A failure to
    draw is a warning: it must never lose a run."""
    if run.out is None:
        return
    for h in run.heads:
        if task_of(h).figure:
            try:
                draw(task_of(h).figure, run.raw, h.name, run.data, run.dist.device, run.cfg.seed, run.out, step)
            except Exception as e:  # noqa: BLE001 - a drawing failure must never lose a run
                warn(f"warning: could not draw the {task_of(h).figure} of head '{h.name}': {e}")


def _training_data(data: Data | str | None, raw: torch.nn.Module, cfg: RunConfig, resumed: Path | None) -> Data:
    """The data to train on: as given, or loaded from its SOURCE (a resumed run keeps its vocabulary)."""
    if isinstance(data, Data):
        return data
    vocab = read_vocab(resumed) if resumed is not None else None
    return load_data(data if isinstance(data, str) else None, raw.netspec, cfg, model=raw, vocab=vocab)


def _report(bar: Progress, csv_writer, row: dict, unit: str, evaluated: bool, val: dict, step: int) -> None:
    """A logged row goes to metrics.csv and the progress display; other steps only move the bar."""
    if not row:
        bar.update(step)
        return
    if csv_writer is not None:
        csv_writer.writerow({k: csv_value(v) for k, v in row.items()})
    bar.update(step, f"loss {row['loss']:.4f}  lr {row['lr']:.2e}  {row[f'{unit}_per_s']:,.0f} {unit}/s",
               force=evaluated)
    if evaluated:
        bar.message(f"step {step}: {format_metrics(val)}")


def _summary(name: str, r: TrainResult, stream) -> None:
    where = f" -> {r.out_dir}" if r.out_dir is not None else ""
    metrics = f"; {format_metrics(r.val)}" if r.val else ""
    state = "stopped" if r.interrupted else "done"
    print(f"{state}: {name} {r.step}/{r.total_steps} steps in {format_time(r.seconds)}, loss {r.train_loss:.4f}"
          f"{metrics}{where}", file=stream or sys.stdout, flush=True)
