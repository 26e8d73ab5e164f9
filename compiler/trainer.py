"""The training loop: losses per head task, optimizer and schedule, eval, logging, checkpoints.

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
one go and N/2 + N/2 resumed give identical weights.
"""
from __future__ import annotations

import csv
import json
import math
import shutil
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
import torch.nn.functional as F

from . import checkpoint as ckpt
from . import distributed as ddp
from .data import Data, Loader, check_model, eval_batches, load_data, outputs_by_head
from .runconfig import RunConfig

DEFAULT_STEPS = 1000  # when neither steps nor epochs is set

TASK_METRICS = {"classify": ("accuracy",), "lm": ("perplexity",), "segment": ("iou", "pixel_accuracy"),
                "reconstruct": (), "regress": ()}


class TrainError(Exception):
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


def trained_heads(info) -> list:
    return [h for h in info.heads if h.task is not None]


def head_losses(info, out: Any, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Loss per trained head (float32, mean over the batch)."""
    outs = outputs_by_head(out, info)
    losses = {}
    for h in trained_heads(info):
        o = outs[h.name].float()
        if h.task == "classify":
            losses[h.name] = F.cross_entropy(o, batch["y"])
        elif h.task == "lm":
            x = batch["x"]
            losses[h.name] = F.cross_entropy(o[:, :-1].reshape(-1, o.shape[-1]), x[:, 1:].reshape(-1))
        elif h.task == "segment":
            losses[h.name] = F.cross_entropy(o, batch["mask"])
        elif h.task == "reconstruct":
            losses[h.name] = F.mse_loss(o, batch["x"].float())
        elif h.task == "regress":
            t = batch["target"]
            losses[h.name] = F.mse_loss(o.reshape(t.shape), t)
    return losses


def total_loss(info, losses: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(h.weight * losses[h.name] for h in trained_heads(info))


class _Meter:
    """Accumulates validation statistics for one head."""

    def __init__(self, task: str):
        self.task, self.loss_sum, self.count, self.correct = task, 0.0, 0, 0
        self.confusion: torch.Tensor | None = None

    def add(self, o: torch.Tensor, batch: dict[str, torch.Tensor]) -> None:
        o = o.float()
        if self.task == "classify":
            y = batch["y"]
            self.loss_sum += F.cross_entropy(o, y, reduction="sum").item()
            self.correct += int((o.argmax(-1) == y).sum())
            self.count += y.numel()
        elif self.task == "lm":
            x = batch["x"]
            self.loss_sum += F.cross_entropy(o[:, :-1].reshape(-1, o.shape[-1]), x[:, 1:].reshape(-1),
                                             reduction="sum").item()
            self.count += x[:, 1:].numel()
        elif self.task == "segment":
            m = batch["mask"]
            c = o.shape[1]
            self.loss_sum += F.cross_entropy(o, m, reduction="sum").item()
            self.count += m.numel()
            idx = (m * c + o.argmax(1)).flatten().cpu()
            conf = torch.bincount(idx, minlength=c * c).reshape(c, c)
            self.confusion = conf if self.confusion is None else self.confusion + conf
        else:
            t = batch["x"].float() if self.task == "reconstruct" else batch["target"]
            o = o.reshape(t.shape)
            # mean over elements per sample, summed over samples: the batch mean of F.mse_loss
            self.loss_sum += F.mse_loss(o, t, reduction="sum").item() / max(1, t[0].numel())
            self.count += t.shape[0]

    def result(self) -> dict[str, float]:
        loss = self.loss_sum / max(1, self.count)
        r = {"loss": loss}
        if self.task == "classify":
            r["accuracy"] = self.correct / max(1, self.count)
        elif self.task == "lm":
            r["perplexity"] = math.exp(min(loss, 50.0))
        elif self.task == "segment":
            conf = self.confusion.double()
            inter = conf.diag()
            union = conf.sum(0) + conf.sum(1) - inter
            present = union > 0  # classes in the targets or the predictions
            r["iou"] = float((inter[present] / union[present]).mean()) if present.any() else 0.0
            r["pixel_accuracy"] = float(inter.sum() / conf.sum().clamp(min=1))
        return r


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: Data, cfg: RunConfig | None = None, *, device=None,
             max_batches: int | None = None, batch_size: int | None = None) -> dict[str, float]:
    """Validation loss and metrics.

    Keys: `loss` (weighted total); `<head>/loss` and `<head>/<metric>` per trained
    head; and for convenience the plain metric names (`accuracy`, `perplexity`,
    `iou`, `pixel_accuracy`) taken from the first head that has them.
    """
    cfg = cfg or RunConfig()
    info = ckpt.unwrap(model).netspec
    device = device or next(iter(model.parameters())).device
    device = torch.device(device)
    bs = batch_size or cfg.batch_size
    cap = cfg.eval_batches if max_batches is None else max_batches
    meters = {h.name: _Meter(h.task) for h in trained_heads(info)}
    was = model.training
    model.eval()
    try:
        for batch in eval_batches(data.val, bs, cap, cfg.seed):
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with _autocast(device, cfg.precision):
                out = outputs_by_head(model(batch["x"]), info)
            for name, m in meters.items():
                m.add(out[name], batch)
    finally:
        model.train(was)
    res: dict[str, float] = {}
    total = 0.0
    for h in trained_heads(info):
        r = meters[h.name].result()
        total += h.weight * r["loss"]
        for k, v in r.items():
            res[f"{h.name}/{k}"] = v
            if k != "loss":
                res.setdefault(k, v)
    res = {"loss": total, **res}
    return res


# --------------------------------------------------------------------------
# Optimizer, schedule, precision


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


def _amp_dtype(precision: str):
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def _autocast(device: torch.device, precision: str):
    dtype = _amp_dtype(precision)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def resolve_steps(cfg: RunConfig, loader: Loader) -> int:
    if cfg.steps is not None:
        return cfg.steps
    if cfg.epochs is not None:
        return max(1, math.ceil(cfg.epochs * loader.batches_per_epoch / cfg.grad_accum))
    return DEFAULT_STEPS


# --------------------------------------------------------------------------
# Progress display


class Progress:
    """A rich progress bar on a terminal; plain periodic lines otherwise (logs, CI, pipes)."""

    def __init__(self, total: int, start: int, enabled: bool, log_every: int, unit: str,
                 stream=None, live: bool | None = None):
        self.stream = stream or sys.stdout
        self.enabled, self.total, self.unit = enabled, total, unit
        # Plain lines: about twenty per run, on log steps, so logs stay readable.
        every = max(1, log_every)
        self.log_every = max(every, (total // 20) // every * every)
        self.t0, self.start = time.time(), start
        self.bar = None
        live = self.stream.isatty() if live is None else live
        if enabled and live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, \
                TimeElapsedColumn, TimeRemainingColumn

            self.bar = RichProgress(TextColumn("[bold]step"), MofNCompleteColumn(), BarColumn(),
                                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
                                    TimeRemainingColumn(), console=Console(file=self.stream), transient=False)
            self.task = self.bar.add_task("train", total=total, completed=start, info="")
            self.bar.start()

    def update(self, step: int, text: str | None = None, force: bool = False) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            kw = {"info": text} if text is not None else {}
            self.bar.update(self.task, completed=step, **kw)
        elif text is not None and (force or step % self.log_every == 0):
            done = step - self.start
            el = time.time() - self.t0
            eta = el / done * (self.total - step) if done else 0.0
            print(f"step {step}/{self.total}  {text}  eta {_fmt_time(eta)}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _fmt_time(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _fmt_metrics(m: dict[str, float]) -> str:
    parts = [f"val loss {m['loss']:.4f}"]
    for k in ("accuracy", "perplexity", "iou", "pixel_accuracy"):
        if k in m:
            parts.append(f"{k} {m[k]:.4f}" if k != "perplexity" else f"{k} {m[k]:.2f}")
    return "  ".join(parts)


# --------------------------------------------------------------------------
# Run folder


def _csv_columns(info, unit: str) -> list[str]:
    heads = trained_heads(info)
    cols = ["step"] + [f"loss_{h.name}" for h in heads] + ["loss", "lr", f"{unit}_per_s", "val_loss"]
    for h in heads:
        if len(heads) > 1:
            cols.append(f"val_loss_{h.name}")
        for m in TASK_METRICS.get(h.task, ()):
            cols.append(f"val_{m}" if len(heads) == 1 else f"val_{h.name}_{m}")
    return cols


def _val_columns(info, val: dict[str, float]) -> dict[str, float]:
    heads = trained_heads(info)
    row = {"val_loss": val["loss"]}
    for h in heads:
        if len(heads) > 1:
            row[f"val_loss_{h.name}"] = val[f"{h.name}/loss"]
        for m in TASK_METRICS.get(h.task, ()):
            row[f"val_{m}" if len(heads) == 1 else f"val_{h.name}_{m}"] = val[f"{h.name}/{m}"]
    return row


def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return str(v)


def write_run_files(out_dir: Path, info, cfg: RunConfig, data: Data, overrides: dict | None) -> None:
    """config.yaml, spec.nn, model.json and vocab.json: what eval / sample / resume need to rebuild."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(out_dir / "config.yaml")
    src = Path(info.source) if info.source and not info.source.startswith("<") else None
    if src is not None and src.is_file() and src.resolve() != (out_dir / "spec.nn").resolve():
        shutil.copyfile(src, out_dir / "spec.nn")
    meta = {
        "model": info.name,
        "params": _jsonable(info.params),
        "overrides": _jsonable(overrides) if overrides is not None else None,
        "source": str(src.resolve()) if src is not None and src.exists() else info.source,
        "data": data.name,
        "inputs": [{"name": i.name, "dtype": i.dtype, "dims": _jsonable(i.dims), "shape": list(i.shape)}
                   for i in info.inputs],
        "heads": [{"name": h.name, "task": h.task, "weight": h.weight} for h in info.heads],
    }
    (out_dir / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    if data.vocab is not None:
        (out_dir / "vocab.json").write_text(json.dumps(data.vocab, ensure_ascii=False) + "\n")


def _open_metrics(path: Path, cols: list[str], resume_step: int | None):
    """Open metrics.csv for appending; on resume drop rows past the checkpoint (they will be redone)."""
    if resume_step is not None and path.exists():
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("step") and int(r["step"]) <= resume_step]
        f = open(path, "w", newline="")
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    else:
        f = open(path, "w", newline="")
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
    f.flush()
    return f, w


def _fmt(v):
    return f"{v:.6g}" if isinstance(v, float) else v


# --------------------------------------------------------------------------


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


@torch.no_grad()
def generate(model: torch.nn.Module, ids: list[int], n_tokens: int, *, block_size: int, temperature: float = 1.0,
             top_k: int | None = None, head: str | None = None, vocab_size: int | None = None) -> list[int]:
    """Continue `ids` by n_tokens sampled from the lm head, the context cropped to block_size.

    A model whose T is fixed gets its input right-padded to block_size: causal attention
    never looks ahead, so the logits at the last real position are unaffected.
    vocab_size: sample only ids below it (a byte-level run on a model with a larger vocabulary).
    """
    raw = ckpt.unwrap(model)
    info = raw.netspec
    head = head or next(h.name for h in info.heads if h.task == "lm")
    fixed = isinstance(info.inputs[0].dims[-1], int)
    device = next(iter(raw.parameters())).device
    was = raw.training
    raw.eval()
    seq = list(ids)
    try:
        for _ in range(n_tokens):
            ctx = seq[-block_size:]
            x = torch.tensor(ctx + ([0] * (block_size - len(ctx)) if fixed else []), device=device)[None]
            logits = outputs_by_head(raw(x), info)[head][0, len(ctx) - 1].float()
            if vocab_size is not None:
                logits = logits[:vocab_size]
            logits = logits / max(temperature, 1e-6)
            if top_k is not None and top_k < logits.numel():
                kth = torch.topk(logits, top_k).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            seq.append(int(torch.multinomial(torch.softmax(logits, -1), 1)))
    finally:
        raw.train(was)
    return seq
