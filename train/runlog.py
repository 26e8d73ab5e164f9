"""What a run shows and leaves behind: the live progress bar (plain lines when not a
terminal), metrics.csv, and the files that let eval / sample / resume rebuild the model.
"""
from __future__ import annotations

import csv
import json
import shutil
import sys
import time
from pathlib import Path

from .data import Data
from .config import RunConfig
from .tasks import TASK_METRICS, trained_heads


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
