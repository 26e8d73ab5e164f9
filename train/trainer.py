"""The training loop: optimizer and schedule, mixed precision, gradient accumulation, eval, checkpoints.

`train(model, cfg, data, out_dir)` trains any model carrying `.netspec`
(a `compiler.info.ModelInfo`) and leaves a self-contained run folder:

    config.yaml        the resolved RunConfig
    spec/, stdlib/     the spec and every file it imports (see speccopy)
    model.json         model name, params and where its spec copy is, to rebuild it
    vocab.json         char vocabulary (text data with vocab: char only)
    data.json          class names, input normalisation, CSV columns (what `predict` needs)
    metrics.csv        one row per log_every steps; validation columns on eval steps
    curves.png         loss and validation metric curves
    last/              the checkpoint to resume from: weights, optimizer, schedule, scaler, RNG
                       states, step, data position -- one unit (checkpoint.py)
    best/              the weights that scored best on `best_metric` (a GAN run has none)
    tensorboard/       event files, with `log: [tensorboard]`

`train(..., resume=True)` continues from last/ exactly: on CPU, N steps in one go and N/2 + N/2
resumed give identical weights, however the first half ended (Ctrl-C, SIGKILL mid-save).
The folder is locked while a run writes it (runlock.py); training anew into a folder that
holds a run needs `overwrite=True`. A NaN or Inf loss stops the run before it can overwrite
a good checkpoint (guard.py). Losses and metrics per head task live in tasks.py (tables in
losses.py, metrics.py), the validation pass in validation.py, the progress bar and
metrics.csv in runlog.py, other logs in loggers.py, best/ and early stopping in best.py.
The speed settings a device gets (TF32, pinned memory, channels_last, ...) are chosen in
recipe.py, vocabulary padding in vocabpad.py, FSDP2 sharding (strategy fsdp) in fsdp.py.
A model with an adversarial head trains with its critic in adversarial.py's loop, inside the
same run-folder checks and lock (`_in_run_folder`).
"""
from __future__ import annotations

import functools
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
from . import faults, fsdp, preflight
from .best import Best, higher_is_better, resolve_metric
from .config import RunConfig
from .data import Data, check_model, load_data
from .data.torchdata import is_torch_data, load_torch, make_loader
from .errors import TrainError
from .grids import draw
from .guard import FiniteGuard, NonFinite, check_tensors, fault_message
from .heads import task_of, trained_heads, unknown_task
from .loggers import check_installed, logger_class
from .objectives import objectives, training_view
from .optim import Schedule, make_optimizer, resolve_steps
from .pair import adversarial_head
from .precision import autocast, precision_note
from .recipe import apply_backend, prepare_model, recipe, recipe_line, to_device
from .rng import rng_state, seed_all, set_rng_state
from .runfolder import (METRICS_CSV, RunError, check_new_run, clear_run, make_run_folder, read_vocab, save_config,
                        write_run_files)
from .runlock import RunLock, remove_if_empty
from .runlog import MetricsCsv, Progress, csv_columns, report, summary, val_columns
from .tasks import head_losses, total_loss
from .validation import evaluate
from .vocabpad import check_vocab_limit

@dataclass
class TrainResult:
    out_dir: Path | None
    step: int  # optimizer steps done in total
    total_steps: int
    seconds: float  # wall time of this call
    val: dict[str, float] = field(default_factory=dict)  # last validation metrics
    train_loss: float = float("nan")  # last logged training loss
    interrupted: bool = False  # stopped by Ctrl-C or stop_after before the schedule's end
    early_stopped: bool = False  # stopped by early_stop: the metric no longer improved
    best: dict = field(default_factory=dict)  # best_metric's record: metric, value, step


# --------------------------------------------------------------------------
# Ctrl-C


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

    def __init__(self, raw: torch.nn.Module, cfg: RunConfig, data: Data, dist: ddp.DistInfo, out: Path | None,
                 settings: dict[str, bool] | None = None):
        self.raw, self.info, self.cfg, self.data, self.dist, self.out = raw, raw.netspec, cfg, data, dist, out
        self.settings = settings or {}  # the speed recipe (recipe.py)
        self.sharded = cfg.strategy == "fsdp" and dist.world > 1  # FSDP2: checkpoints and eval are collective
        self.heads = trained_heads(self.info)
        self.objectives = objectives(raw, self.info, data.counts)  # each head's loss (objectives.py)
        self.loader = make_loader(data.train, cfg.batch_size, cfg.seed, rank=dist.rank, world=dist.world,
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
        self.guard = FiniteGuard(self.heads, dist.device, dist)
        self.best = Best(cfg.best_metric, higher_is_better(self.info, cfg.best_metric), cfg.early_stop)
        self.saved_step: int | None = None  # step of the last checkpoint this run wrote or resumed from
        self.logs: list = []  # metrics.csv and the logs of cfg.log (rank 0 of a run with a folder)

    def restore(self, warn: Callable[[str], None]) -> None:
        """Continue from the run folder's last checkpoint: weights, optimizer, scaler, step, data,
        RNGs, best metric. A damaged `last/` gives way to a complete `last.prev/` (a save cut short)."""
        ck = ckpt.open_checkpoint(self.out, ckpt.LAST, warn=warn)
        state = ck.state
        try:
            if self.sharded:  # every rank reads the full weights and keeps its shards
                from safetensors.torch import load_file

                fsdp.load_full_state(self.raw, self.opt, load_file(str(ck.weights)), state["optimizer"])
            else:
                ckpt.load_weights_file(self.raw, ck.weights)
                self.opt.load_state_dict(state["optimizer"])
            if state.get("scaler") and self.use_scaler:
                self.scaler.load_state_dict(state["scaler"])
            self.step = int(state["step"])
            self.loader.load_state_dict(state["loader"])
            rngs = state["rng"]
            set_rng_state(rngs[self.dist.rank] if self.dist.rank < len(rngs) else rngs[0])
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
            raise ckpt.CheckpointError(f"'{ck.folder / ckpt.STATE}' does not fit this run ({e})") from None
        self.best.load_state_dict(state.get("best"))
        self.saved_step = self.step
        if ck.folder.name != ckpt.LAST:
            ddp.barrier(self.dist)  # every rank has read last.prev before the damaged last/ goes
            if self.dist.is_main:
                ckpt.discard(self.out, ckpt.LAST)  # the next save replaces it from last.prev's place
        if self.step >= self.total:
            raise TrainError(f"run '{self.out}' already finished {self.step} of {self.total} steps; "
                             "raise --steps to train on")
        if self.best.exhausted:
            raise TrainError(f"run '{self.out}' stopped early at step {self.step}: {self.cfg.best_metric} did not "
                             f"improve in {self.best.stale} evals ({self.best.describe()}); pass --early-stop 0 "
                             f"or a number above {self.best.stale} to train on")

    def _zero_sums(self) -> None:
        device = self.dist.device
        self.loss_sums = {h.name: torch.zeros((), device=device) for h in self.heads}
        self.total_sum = torch.zeros((), device=device)
        self.sum_steps = 0

    def train_step(self, model: torch.nn.Module) -> float:
        """One optimizer step over grad_accum micro-batches; returns its learning rate.
        Nothing here reads a device value on the host (no .item(), float(), bool() or print of
        a tensor): losses and the finite check stay on the device until a logged step, so a GPU
        never waits for the host. (fp16's GradScaler.step is the one exception: it reads
        found_inf to skip an overflowed step.)"""
        cfg, device = self.cfg, self.dist.device
        lr = self.sched.apply(self.opt, self.step)
        for micro in range(cfg.grad_accum):
            batch = to_device(self.loader.next(), device, self.settings)
            last = micro == cfg.grad_accum - 1
            # DDP averages gradients on the last micro-batch only; FSDP reduce-scatters them then
            if self.sharded:
                self.raw.set_requires_gradient_sync(last)
            sync = nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with autocast(device, cfg.precision):
                    out = model(*self.data.model_inputs(batch))
                losses = head_losses(self.info, out, batch, self.objectives, vocab_limit=cfg.vocab_limit)
                loss = total_loss(self.info, losses)
                self.scaler.scale(loss / cfg.grad_accum).backward()
            for k, v in losses.items():
                self.loss_sums[k] += v.detach() / cfg.grad_accum
            self.total_sum += loss.detach() / cfg.grad_accum
            self.guard.observe(self.step + 1, loss, [losses[h.name] for h in self.heads])
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
        row = {"step": self.step, "loss": vals[0], "lr": lr, f"{self.unit}_per_s": speed}
        row.update({f"loss_{h.name}": v for h, v in zip(self.heads, vals[1:])})
        return row

    def check_finite(self, tensors: bool) -> None:
        """Raise TrainError when a loss since the last check (or, with `tensors`, a weight or
        optimizer state) is NaN or Inf -- before anything of this step is saved."""
        try:
            self.guard.check()
            if tensors:
                check_tensors(self.raw, self.opt, self.step, self.dist)
        except NonFinite as e:
            raise TrainError(fault_message(e, self.out, self.saved_step, self.cfg)) from None

    def save(self, warn: Callable[[str], None]) -> None:
        """Checkpoint into the run folder's last/ (rank 0 writes; every rank's RNG state is kept),
        then redraw curves.png. A failure to draw is a warning: it must never lose a run."""
        if self.out is None:
            return
        self.check_finite(tensors=True)
        rngs = ddp.gather_objects(rng_state(), self.dist)
        weights, optim = fsdp.full_state(self.raw, self.opt) if self.sharded else (self.raw, None)
        if self.dist.is_main:
            for log in self.logs:  # every row up to this step is on disk before the checkpoint names it
                log.sync()
            faults.point("csv", self.step)
            state = {"step": self.step, "total_steps": self.total,
                     "optimizer": optim if self.sharded else self.opt.state_dict(),
                     "scheduler": self.sched.state_dict(),
                     "scaler": self.scaler.state_dict() if self.use_scaler else None,
                     "loader": self.loader.state_dict(), "rng": rngs, "world": self.dist.world,
                     "best": self.best.state_dict()}
            files = {ckpt.WEIGHTS: ckpt.weights_writer(fsdp.Weights(weights) if self.sharded else weights,
                                                       self._weights_meta()),
                     ckpt.STATE: ckpt.state_writer(state)}
            ckpt.commit(self.out, ckpt.LAST, files, self.step, {"model": self.info.name})
            self.saved_step = self.step
            try:
                from .plot import plot_curves

                plot_curves(self.out / METRICS_CSV, self.out / "curves.png")
            except Exception as e:  # noqa: BLE001 - a plotting failure must never lose a run
                warn(f"warning: could not draw curves.png: {e}")
            faults.point("curves", self.step)
        ddp.barrier(self.dist)

    def save_best(self) -> None:
        """best/: the weights of this step, which scored a new best on best_metric (rank 0; every
        rank when sharded, to gather the weights)."""
        if self.out is None:
            return
        try:  # rank 0 alone checks the whole model, unless it holds only its shards
            check_tensors(self.raw, self.opt, self.step, self.dist if self.sharded else ddp.DistInfo())
        except NonFinite as e:
            raise TrainError(fault_message(e, self.out, self.saved_step, self.cfg)) from None
        model = fsdp.Weights(fsdp.full_weights(self.raw)) if self.sharded else self.raw
        if self.dist.is_main:
            ckpt.commit(self.out, ckpt.BEST, {ckpt.WEIGHTS: ckpt.weights_writer(model, self._weights_meta())},
                        self.step, {"model": self.info.name, "metric": self.best.metric, "value": self.best.value})

    def _weights_meta(self) -> dict[str, str]:
        return {"model": self.info.name, "step": str(self.step)}


# --------------------------------------------------------------------------
# train()


def train(model: torch.nn.Module, cfg: RunConfig | dict | None = None, data=None, out_dir: str | Path | None = None,
          *, val=None, resume: bool = False, overwrite: bool = False, stop_after: int | None = None,
          overrides: dict | None = None, progress: bool = True, live: bool | None = None, stream=None,
          on_step: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train `model` (which carries `.netspec`) under `cfg`.

    cfg: a RunConfig, a dict of its fields ({"steps": 200, "lr": 1e-3}), or None (the defaults).
    data: a SOURCE string, a `torch.utils.data.Dataset` or `DataLoader` (data/torchdata.py), a
        loaded `Data`, or None (cfg.data, else a built-in that fits).
    val: the validation Dataset / DataLoader for PyTorch data (default: a Dataset's held-out
        val_fraction; a DataLoader alone trains without validation).
    out_dir: the run folder (None: write nothing -- no metrics, no checkpoints).
    resume: continue from out_dir's last checkpoint.
    overwrite: train anew into an out_dir that holds a run (else that is a RunError).
    stop_after: stop (with a checkpoint) once this many steps are done in total, as if
        interrupted; a later resume finishes the schedule.
    overrides: the --set values the model was built with, saved in model.json for rebuilding.
    progress / live / stream: show progress (rank 0 only); live forces the rich bar on or off.
    on_step: called on rank 0 after every step with (step, logged values) -- for tests / tools.
    Raises a NetspecError (TrainError, DataError, CheckpointError, RunError, SizeError, ...)
    for anything the user can fix; the run folder is locked while it runs.
    """
    t_start = time.time()
    cfg = _config(cfg)
    raw = ckpt.unwrap(model)
    info = raw.netspec
    problem = unknown_task(info)  # an unknown task, or task arguments its row rejects
    if problem:
        raise TrainError(problem)
    dist = ddp.setup(cfg.device)
    out = Path(out_dir) if out_dir is not None else None
    if resume and (out is None or not ckpt.has_checkpoint(out)):
        raise TrainError(f"cannot resume: '{out_dir}' has no checkpoint (no {ckpt.LAST}/)")
    check_installed(cfg.log)
    if adversarial_head(info) is not None:  # two models, two optimizers: a loop of its own
        from . import adversarial  # imported here: it builds on this module's parts

        for field_, off in (("strategy", "ddp"), ("pad_vocab", 0)):
            if getattr(cfg, field_) not in (off, None):
                raise TrainError(f"adversarial training runs in one process without {field_} "
                                 f"(got {field_} {getattr(cfg, field_)})")
        if val is not None or is_torch_data(data):
            raise TrainError("adversarial training reads its real samples from a SOURCE (data='digits', ...) or "
                             "a loaded Data, not from PyTorch data")
        pair = adversarial.prepare(raw, cfg, dist, out, resume, overrides)
        n_params, best = pair.parameters, False
        body = functools.partial(adversarial.train_pair, raw, pair, cfg, data, out, dist, resume, stop_after,
                                 progress, live, stream, on_step)
    else:
        if cfg.strategy == "fsdp" and dist.world == 1:
            raise TrainError("strategy fsdp shards the model across the processes of torchrun; launch with "
                             "`torchrun --nproc_per_node N -m netspec train ...` or train with strategy ddp")
        if not trained_heads(info):
            raise TrainError(f"{info.name} has no head with a task ({', '.join(TASKS)}) to train")
        if not any(p.requires_grad for p in raw.parameters()):
            raise TrainError(f"every parameter of {info.name} is frozen: nothing to train (check --freeze / "
                             "frozen=true)" if any(True for _ in raw.parameters())
                             else f"{info.name} has no parameters to train")
        cfg = cfg.replace(best_metric=resolve_metric(info, cfg.best_metric))
        n_params, best = sum(p.numel() for p in raw.parameters()), True
        body = functools.partial(_train, raw, cfg, data, val, out, dist, resume, stop_after, overrides, progress,
                                 live, stream, on_step)
    result = _in_run_folder(info.name, n_params, best, cfg, out, dist, resume, overwrite, body)
    result.seconds = time.time() - t_start
    if progress and dist.is_main:
        summary(info.name, result, stream)
    ddp.cleanup(dist)
    return result


def _in_run_folder(name: str, n_params: int, best: bool, cfg: RunConfig, out: Path | None, dist: ddp.DistInfo,
                   resume: bool, overwrite: bool, body: Callable[[], TrainResult]) -> TrainResult:
    """Run `body` (a training loop) with the run folder's guarantees: the model's size checked,
    the folder made, locked, refused if it holds a run (unless `overwrite`, which clears it),
    its leftovers removed and its free space checked -- the same for every kind of run."""
    preflight.check_size(name, n_params, cfg, dist.device)
    writes = out is not None and dist.is_main
    created = writes and not resume and not out.exists()
    if writes and not resume:
        make_run_folder(out)
    try:
        with RunLock(out) if writes else nullcontext():
            if writes:
                if not resume:
                    check_new_run(out, overwrite)
                    clear_run(out)
                ckpt.remove_temporaries(out)
                preflight.check_folder(out, n_params, cfg, resume, best)
            return body()
    except BaseException:
        if created:  # a run that failed before writing anything (bad data, a mismatch) leaves no folder
            remove_if_empty(out)
        raise


def _train(raw, cfg, data, val, out, dist, resume, stop_after, overrides, progress, live, stream,
           on_step) -> TrainResult:
    """train() once the run folder is checked and locked: set up, restore, loop, close the logs."""
    info = raw.netspec
    data = _training_data(data, val, raw, cfg, out if resume else None)
    if cfg.data != data.name:
        cfg = cfg.replace(data=data.name)
    raw.to(dist.device)
    check_model(raw, data, info)
    check_vocab_limit(info, data, cfg)
    settings = recipe(dist.device, raw, cfg)
    apply_backend(settings)
    prepare_model(raw, settings)
    if cfg.strategy == "fsdp":
        fsdp.shard(raw)  # before the optimizer is made: it holds the shards
    seed_all(cfg.seed + dist.rank)  # dropout masks differ per rank, like nanoGPT's seed offset
    run = _Run(raw, cfg, data, dist, out, settings)
    show = progress and dist.is_main
    # warnings about the run folder show even without progress: they are about the user's data
    warn = (lambda text: print(text, file=stream or sys.stderr, flush=True)) if dist.is_main else (lambda text: None)
    if resume:
        run.restore(warn)
    if out is not None and dist.is_main:
        if resume:  # the model, its spec copy and data stay; only the config (more --steps) changes
            save_config(out, cfg)
        else:
            write_run_files(out, info, cfg, data, overrides,
                            frozen=[n for n, p in raw.named_parameters(remove_duplicate=False) if not p.requires_grad])
    model = training_view(raw, info, run.objectives)  # raw, unless a head applies its last layer itself
    model = torch.compile(model) if cfg.compile else model
    if cfg.strategy != "fsdp":
        model = ddp.wrap(model, dist)  # broadcasts rank 0's parameters and buffers

    bar = Progress(run.total, run.step, show, cfg.log_every, run.unit, stream=stream, live=live)
    note = precision_note(dist.device, cfg.precision)
    if show and note:
        bar.message(note)
    if show:
        bar.message(f"{info.name}: {_parameters_text(raw)} on {dist.device}"
                    f"{f' x{dist.world}' if dist.world > 1 else ''}; {data.describe()}; {run.total} steps"
                    + (f" (resuming at {run.step})" if resume else ""))
    if show and any(settings.values()):  # a plain fp32 run has nothing to say
        bar.message(recipe_line(settings))
    stop = _StopFlag(enabled=not dist.enabled)
    try:
        if out is not None and dist.is_main:
            resumed = run.step if resume else None
            run.logs.append(MetricsCsv(out / METRICS_CSV, csv_columns(info, run.unit), resumed))
            try:
                run.logs += [logger_class(name)(out, info, data, resumed) for name in cfg.log]
            except OSError as e:  # a link planted where the log's folder belongs, a read-only folder
                raise RunError(f"cannot write the logs into '{out}': '{e.filename}': {e.strerror or e}") from None
            for log in run.logs:
                log.start(raw, bar.message)
        result = _loop(run, model, bar, stop, stop_after, on_step)
    finally:
        stop.restore()
        bar.close()
        for log in run.logs:
            log.close()
    result.best = run.best.state_dict() if run.best.value is not None else {}
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
        # Ranks must agree to stop on the same step (stop.set is never set under torchrun).
        do_log, do_eval, do_save, want_stop = plan_step(cfg, step, run.total, stop_after, stop.set,
                                                        run.data.val is not None)
        if do_log or do_eval or want_stop or do_save:
            run.check_finite(tensors=False)
        row = run.loss_row(lr) if do_log or do_eval or want_stop else {}
        result.train_loss = row.get("loss", result.train_loss)
        early = False
        if do_eval:
            if dist.is_main or run.sharded:  # a sharded forward gathers weights from every rank
                result.val = evaluate(run.raw, run.data, cfg, device=dist.device, objectives=run.objectives)
            new_best = False
            if dist.is_main:
                row.update(val_columns(run.info, result.val))
                if not run.sharded:  # drawing runs the model on this rank alone
                    _draw_figures(run, step, bar.message)
                new_best = run.best.update(row[cfg.best_metric], step)
            if ddp.broadcast_flag(new_best, dist) if run.sharded else new_best:
                run.save_best()
            if dist.is_main:
                for log in run.logs:
                    log.evaluated(step, run.raw, run.data)
            early = ddp.broadcast_flag(dist.is_main and run.best.exhausted and step < run.total, dist)
            ddp.barrier(dist)
        if dist.is_main:
            report(bar, run.logs, row, run.unit, bool(do_eval), result.val, step)
            if on_step is not None:
                on_step(step, row)
        want_stop = want_stop or early
        if do_save or (want_stop and step < run.total):
            run.save(bar.message)
        if want_stop and step < run.total:
            if early:
                result.early_stopped = True
                bar.message(f"early stop at step {step}: {cfg.best_metric} did not improve in {run.best.stale} "
                            f"evals ({run.best.describe()}" + (f", in {run.out / ckpt.BEST})" if run.out else ")"))
            else:
                result.interrupted = True
                if dist.is_main and stop.set:
                    bar.message(f"stopped at step {step}; continue with --resume {run.out}" if run.out else
                                f"stopped at step {step}")
            break
    return result


def plan_step(cfg: RunConfig, step: int, total: int, stop_after: int | None, stopped: bool,
              has_val: bool = True) -> tuple[bool, bool, bool, bool]:
    """What happens after optimizer step `step` of `total`: (log a row, evaluate, save a
    checkpoint, stop). The last step does all but stop; `stop_after` and a stop request end
    the run with a checkpoint. Shared by every training loop (this one, adversarial.py's)."""
    last = step == total
    log = step % max(1, cfg.log_every) == 0 or last
    evaluate = has_val and bool(last or (cfg.eval_every and step % cfg.eval_every == 0))
    save = bool(last or (cfg.save_every and step % cfg.save_every == 0))
    return log, evaluate, save, (stop_after is not None and step >= stop_after) or stopped


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




def _config(cfg: RunConfig | dict | None) -> RunConfig:
    if cfg is None:
        return RunConfig()
    if isinstance(cfg, dict):
        from .config import from_dict

        return from_dict(cfg, where="cfg")
    if not isinstance(cfg, RunConfig):
        raise TrainError(f"cfg must be a RunConfig, a dict of its fields or None, got {type(cfg).__name__}")
    return cfg


def _training_data(data, val, raw: torch.nn.Module, cfg: RunConfig, resumed: Path | None) -> Data:
    """The data to train on: as given, wrapped (PyTorch data) or loaded from its SOURCE (a resumed
    run keeps its vocabulary)."""
    if val is not None and not is_torch_data(data):
        raise TrainError("val= goes with PyTorch data (a Dataset or DataLoader as data=)")
    if is_torch_data(data):
        return load_torch(data, val, raw, cfg)
    if isinstance(data, Data):
        return data
    if data is not None and not isinstance(data, str):
        raise TrainError(f"data must be a SOURCE string, a torch Dataset or DataLoader, or None; "
                         f"got {type(data).__name__}")
    vocab = read_vocab(resumed) if resumed is not None else None
    return load_data(data, raw.netspec, cfg, model=raw, vocab=vocab)


def _parameters_text(model: torch.nn.Module) -> str:
    """'61,706 parameters', or with frozen ones '11,177,538 parameters (1,026 trainable)'."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return f"{total:,} parameters" + (f" ({trainable:,} trainable)" if trainable != total else "")
