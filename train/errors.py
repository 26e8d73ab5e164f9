"""The trainer's own error (data, config, checkpoint and run-folder errors live with their code)."""
from __future__ import annotations

from ..dsl.errors import NetspecError


class TrainError(NetspecError):
    """A run that cannot start (e.g. resuming a folder without a checkpoint). User-facing message."""
