"""What a run shows as it goes: the live progress bar (plain lines when not a terminal)
and metrics.csv, one row per logged step, kept whole across crashes and resumes.
"""
from __future__ import annotations

import csv
import io
import os
import sys
import time
from pathlib import Path

from . import faults, safefile
from .heads import task_of, trained_heads
from .loggers import RunLog
from .metrics import format_metrics
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


def report(bar: Progress, logs: list, row: dict, unit: str, evaluated: bool, val: dict, step: int) -> None:
    """A logged row goes to metrics.csv, the other logs and the progress display; other steps only move the bar."""
    if not row:
        bar.update(step)
        return
    for log in logs:
        log.row(step, row)
    bar.update(step, f"loss {row['loss']:.4f}  lr {row['lr']:.2e}  {row[f'{unit}_per_s']:,.0f} {unit}/s",
               force=evaluated)
    if evaluated:
        bar.message(f"step {step}: {format_metrics(val)}")


def summary(name: str, r, stream) -> None:
    where = f" -> {r.out_dir}" if r.out_dir is not None else ""
    metrics = f"; {format_metrics(r.val)}" if r.val else ""
    state = "stopped" if r.interrupted else "stopped early" if r.early_stopped else "done"
    print(f"{state}: {name} {r.step}/{r.total_steps} steps in {format_time(r.seconds)}, loss {r.train_loss:.4f}"
          f"{metrics}{where}", file=stream or sys.stdout, flush=True)


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


def val_metric_columns(info) -> dict[str, str]:
    """metrics.csv's validation columns -> the metric each holds ("loss" for the losses),
    the first trained head's first."""
    heads = trained_heads(info)
    cols: dict[str, str] = {}
    for h in heads:
        cols.update({_val_column(heads, h, m): m for m in task_of(h).metrics})
        cols[f"val_loss_{h.name}" if len(heads) > 1 else "val_loss"] = "loss"
    cols.setdefault("val_loss", "loss")
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


class MetricsCsv(RunLog):
    """metrics.csv: a header, then one row per logged step, appended as the run goes.

    A new run writes the header; a resumed one keeps the complete rows up to its checkpoint's
    step (the rows after it are redone) -- both by writing a whole new file and renaming it
    into place, so a crash at any moment leaves the old file or the new one, never a
    half-written one. Rows are then appended, and made durable (`sync`) before every
    checkpoint, so a checkpoint never refers to rows that a crash could lose."""

    def __init__(self, path: Path, cols: list[str], resume_step: int | None):
        self.path, self.cols = path, cols
        rows = _rows_up_to(path, resume_step) if resume_step is not None else []
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", restval="")
        w.writeheader()
        w.writerows(rows)
        try:
            safefile.write_text(path, buf.getvalue(),
                                before_rename=lambda: faults.point("csv:truncate", resume_step or 0))
            self.file = safefile.open_append(path)
        except OSError as e:
            raise RunError(f"cannot write '{path}': {e.strerror or e}")
        self.writer = csv.DictWriter(self.file, fieldnames=cols, extrasaction="ignore")

    def row(self, step: int, row: dict) -> None:
        self.writer.writerow({k: csv_value(v) for k, v in row.items()})

    def sync(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()


def _rows_up_to(path: Path, step: int) -> list[dict]:
    """The complete rows of an existing metrics.csv up to `step` (a crash may have cut the
    last line short: it is dropped, as are rows that do not parse)."""
    try:
        raw = safefile.read_bytes(path)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise RunError(f"cannot read '{path}': {e.strerror or e}")
    text = raw.decode("utf-8", errors="replace")
    text = text[: text.rfind("\n") + 1]
    rows = []
    for r in csv.DictReader(io.StringIO(text, newline="")):
        try:
            if int(r.get("step") or "") <= step:
                rows.append({k: v for k, v in r.items() if k is not None})
        except ValueError:
            continue
    return rows
