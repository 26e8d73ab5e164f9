"""A test hook: kill the process at a named point of the save sequence.

`NETSPEC_TEST_KILL=STAGE@STEP` makes the training process SIGKILL itself when the save
sequence reaches STAGE while saving step STEP (`last:state@8`: the last checkpoint's
state.pt is written to its temporary folder at step 8, nothing renamed yet). The tests
kill a run at every stage this way and check that `--resume` still ends with the same
weights and metrics.csv as a run never killed. STAGES lists the points in the order a
save passes them; unset (always, outside tests) the hook costs one dict look-up.
"""
from __future__ import annotations

import os
import signal

ENV = "NETSPEC_TEST_KILL"

# Where a save can be killed, in order. `csv` is metrics.csv made durable before a
# checkpoint; `<ckpt>:<file>` a file written into the checkpoint's temporary folder;
# `:manifest` the folder complete; `:retire` the old checkpoint renamed aside;
# `:commit` the new one renamed into place; `:cleanup` the old one deleted.
# `csv:truncate` is the resume's rewrite of metrics.csv, written but not yet renamed.
STAGES = (
    "best:model.safetensors", "best:manifest", "best:retire", "best:commit", "best:cleanup",
    "csv", "last:model.safetensors", "last:state.pt", "last:manifest", "last:retire", "last:commit",
    "last:cleanup", "curves", "csv:truncate",
)


def point(stage: str, step: int) -> None:
    """SIGKILL this process if NETSPEC_TEST_KILL names `stage` at `step`."""
    want = os.environ.get(ENV)
    if want and want == f"{stage}@{step}":
        os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
