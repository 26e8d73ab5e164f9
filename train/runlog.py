"""What a run shows as it goes: the live progress bar (plain lines when not a terminal)
and metrics.csv, one row per logged step.
"""
from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

from .heads import task_of, trained_heads
from .runfolder import RunError


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
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

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
            print(f"step {step}/{self.total}  {text}  eta {format_time(eta)}", file=self.stream, flush=True)

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


def format_time(s: float) -> str:
    """Seconds as m:ss, or h:mm:ss from an hour on."""
    s = int(round(s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


# --------------------------------------------------------------------------
# metrics.csv


def _val_column(heads: list, head, name: str) -> str:
    # one trained head: val_<metric>; several: val_<head>_<metric>
    return f"val_{name}" if len(heads) == 1 else f"val_{head.name}_{name}"


def csv_columns(info, unit: str) -> list[str]:
    """metrics.csv's columns: step, the training loss per head and in total, lr, speed, then
    the validation loss (per head with several) and each head's task metrics."""
    heads = trained_heads(info)
    cols = ["step"] + [f"loss_{h.name}" for h in heads] + ["loss", "lr", f"{unit}_per_s", "val_loss"]
    for h in heads:
        if len(heads) > 1:
            cols.append(f"val_loss_{h.name}")
        cols += [_val_column(heads, h, m) for m in task_of(h).metrics]
    return cols


def val_columns(info, val: dict[str, float]) -> dict[str, float]:
    """`evaluate`'s result as metrics.csv's validation columns."""
    heads = trained_heads(info)
    row = {"val_loss": val["loss"]}
    for h in heads:
        if len(heads) > 1:
            row[f"val_loss_{h.name}"] = val[f"{h.name}/loss"]
        row.update({_val_column(heads, h, m): val[f"{h.name}/{m}"] for m in task_of(h).metrics})
    return row


def csv_value(v):
    return f"{v:.6g}" if isinstance(v, float) else v


def open_metrics(path: Path, cols: list[str], resume_step: int | None):
    """Open metrics.csv for appending; on resume drop rows past the checkpoint (they will be redone).
    Returns (file, csv.DictWriter)."""
    try:
        rows = []
        if resume_step is not None and path.exists():
            with open(path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step") and int(r["step"]) <= resume_step]
        f = open(path, "w", newline="")
    except (OSError, ValueError) as e:
        raise RunError(f"cannot write '{path}': {getattr(e, 'strerror', None) or e}")
    w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    f.flush()
    return f, w
