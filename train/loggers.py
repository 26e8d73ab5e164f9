"""The logs a run can keep beside metrics.csv (`log:` in the run config, `--log NAME`).

One row per log: its name, the module and class that write it, and the extra that
installs what it needs. A log receives every metrics.csv row (`row`), the model and a
validation batch at the start (`start`) and after each evaluation (`evaluated`), and is
made durable before every checkpoint (`sync`). Modules load only when a run asks for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module


class RunLog:
    """What the trainer calls on every log of a run (rank 0); a log overrides what it uses."""

    def start(self, model, warn) -> None:
        """Training begins (or resumes): `model` is the raw module, `warn(text)` prints a warning."""

    def row(self, step: int, row: dict) -> None:
        """A metrics.csv row: step, losses, lr, speed, and validation columns on eval steps."""

    def evaluated(self, step: int, model, data) -> None:
        """A validation pass just ended at `step` (samples of the model's outputs go here)."""

    def sync(self) -> None:
        """Make everything logged so far durable: a checkpoint of this step follows."""

    def close(self) -> None:
        """The run ends, however it ends."""


@dataclass(frozen=True)
class Logger:
    module: str  # module of netspec.train that defines it
    cls: str  # the class, built as cls(run folder, ModelInfo, Data, resume_step)
    needs: str  # the module it writes with (extras.OPTIONAL names the extra that brings it)
    doc: str  # one line, for --help and the docs


# name -> its writer
LOGGERS: dict[str, Logger] = {
    "tensorboard": Logger("tblog", "TensorBoardLog", "tensorboard",
                          "TensorBoard event files in RUN/tensorboard: scalars, the model graph, samples"),
}


def check_installed(names) -> None:
    """Raise MissingExtraError, before a run starts, when a log's module is not installed."""
    from .extras import require

    for name in names:
        require(LOGGERS[name].needs)


def logger_class(name: str):
    row = LOGGERS[name]
    return getattr(import_module(f".{row.module}", __package__), row.cls)
