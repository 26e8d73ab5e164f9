"""The best checkpoint and early stopping: one validation metric, followed eval by eval.

The metric is a validation column of metrics.csv (`val_accuracy`, `val_logits_iou`,
`val_loss`): `best_metric` of the run config, by default the first trained head's first
metric (its validation loss when its task has none); config.yaml records the one chosen.
Whether larger is better comes from the METRICS table (losses: smaller). Each time the
metric improves on its best, the trainer saves `best/`; `early_stop: N` ends the run after
N evals in a row without improvement. The record travels in the last checkpoint, so a
resumed run goes on comparing against the same best.
"""
from __future__ import annotations

import difflib
import math

from .config import ConfigError
from .metrics import METRICS
from .runlog import val_metric_columns


def resolve_metric(info, wanted: str | None) -> str:
    """The metrics.csv column the run follows: `wanted`, checked, or the default."""
    cols = val_metric_columns(info)
    if wanted is None:
        return next(iter(cols))
    if wanted not in cols:
        close = difflib.get_close_matches(wanted, list(cols), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"best_metric: {info.name} has no validation column '{wanted}'{hint}; "
                          f"its columns: {', '.join(cols)}")
    return wanted


def higher_is_better(info, column: str) -> bool:
    metric = val_metric_columns(info)[column]
    return metric != "loss" and METRICS[metric].higher


class Best:
    """The best value of one metric so far, the step it came at, and evals since."""

    def __init__(self, metric: str, higher: bool, patience: int):
        self.metric, self.higher, self.patience = metric, higher, patience
        self.value: float | None = None
        self.step: int | None = None
        self.stale = 0  # evals since the last improvement

    def update(self, value: float, step: int) -> bool:
        """Record an eval; True when it is a new best (NaN never is)."""
        better = math.isfinite(value) and (self.value is None or
                                           (value > self.value if self.higher else value < self.value))
        if better:
            self.value, self.step, self.stale = value, step, 0
        else:
            self.stale += 1
        return better

    @property
    def exhausted(self) -> bool:
        """early_stop evals in a row brought no improvement."""
        return self.patience > 0 and self.stale >= self.patience

    def describe(self) -> str:
        if self.value is None:
            return f"no finite {self.metric} yet"
        return f"best {self.metric} {self.value:.6g} at step {self.step}"

    def state_dict(self) -> dict:
        return {"metric": self.metric, "value": self.value, "step": self.step, "stale": self.stale}

    def load_state_dict(self, state: dict | None) -> None:
        """A checkpoint's record; one for another metric (best_metric changed) starts afresh."""
        if not isinstance(state, dict) or state.get("metric") != self.metric:
            return
        value, step, stale = state.get("value"), state.get("step"), state.get("stale", 0)
        self.value = float(value) if isinstance(value, (int, float)) else None
        self.step = int(step) if isinstance(step, int) else None
        self.stale = int(stale) if isinstance(stale, int) else 0
