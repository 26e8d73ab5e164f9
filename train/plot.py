"""curves.png from a run's metrics.csv: training / validation loss and the validation metrics.

Matplotlib with the Agg backend (no display needed). Left panel: losses
(log scale when they span a decade). Right panel: the validation metrics that are
shares (accuracy, IoU, pixel accuracy) on [0, 1], the others (perplexity) on an axis
of their own.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

from . import safefile
from .extras import require
from .metrics import METRICS


def _read(path: Path) -> tuple[list[str], list[dict[str, float]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        cols = list(reader.fieldnames or [])
        rows = []
        for r in reader:
            rows.append({k: float(v) for k, v in r.items() if k and v not in (None, "")})
    return cols, rows


Series = Callable[[str], tuple[list[float], list[float]]]  # column -> (steps, values)


def plot_curves(metrics_csv: str | Path, out_png: str | Path) -> Path:
    """Draw `out_png` from `metrics_csv` (written to a temporary name, then renamed: never
    through a link, never half a file)."""
    require("matplotlib").use("Agg", force=False)
    plt = require("matplotlib.pyplot")

    cols, rows = _read(Path(metrics_csv))

    def series(col):
        pts = [(r["step"], r[col]) for r in rows if col in r and "step" in r]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
    _loss_panel(ax_l, cols, series)
    _metric_panel(ax_m, cols, series)
    fig.tight_layout()
    out_png = Path(out_png)
    try:
        safefile.write_with(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=100), sync=False)
    finally:
        plt.close(fig)
    return out_png


def _loss_panel(ax, cols: list[str], series: Series) -> None:
    """Training losses (total, per head) as lines, validation losses as dots; log scale past a decade."""
    loss_cols = [c for c in cols if c == "loss" or c.startswith("loss_")]
    if len(loss_cols) == 2:  # single head: loss_<head> repeats loss
        loss_cols = ["loss"]
    values = []
    for c in loss_cols:
        x, y = series(c)
        if x:
            ax.plot(x, y, label="train " + ("total" if c == "loss" else c[5:]), lw=1.2)
            values += y
    for c in [c for c in cols if c == "val_loss" or c.startswith("val_loss_")]:
        x, y = series(c)
        if x:
            ax.plot(x, y, "o-", label="val " + ("total" if c == "val_loss" else c[9:]), ms=3)
            values += y
    pos = [v for v in values if v > 0]
    if pos and max(pos) / min(pos) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("loss")
    ax.grid(alpha=0.3)
    if values:
        ax.legend(fontsize=8)


def _metric_panel(ax, cols: list[str], series: Series) -> None:
    """Validation metrics: shares in [0, 1] on the axis, the others (perplexity) on a twin axis."""
    metric_cols = [c for c in cols if c.startswith("val_") and not c.startswith("val_loss")]
    # val_<metric> or val_<head>_<metric>
    bounded = {c for c in metric_cols if any(c.endswith(m) and METRICS[m].bounded for m in METRICS)}
    own_scale = [c for c in metric_cols if c not in bounded]
    drawn = False
    for c in [c for c in metric_cols if c in bounded]:
        x, y = series(c)
        if x:
            ax.plot(x, y, "o-", label=c[4:], ms=3)
            drawn = True
    if drawn:
        ax.set_ylim(0, 1.02)
    twin = ax.twinx() if (own_scale and drawn) else ax
    for c in own_scale:
        x, y = series(c)
        if x:
            twin.plot(x, y, "s--", label=c[4:], ms=3, color="tab:red")
            twin.set_ylabel(", ".join(sorted({m for m in METRICS for c in own_scale if c.endswith(m)})))
            drawn = True
    ax.set_xlabel("step")
    ax.set_title("validation")
    ax.grid(alpha=0.3)
    if not drawn:
        ax.text(0.5, 0.5, "no validation metric", ha="center", va="center", transform=ax.transAxes)
        return
    handles, labels = ax.get_legend_handles_labels()
    if twin is not ax:
        h2, l2 = twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=8)
