"""Checks before a run allocates or writes anything: the model's size against `max_params`
and the machine's memory, the run folder's writability and free space.

The CLI counts parameters on the meta device (`netspec.analyze`) before building the model,
so a slip like `--set n_embd=100000` is one line, not minutes of swapping; `train()`
checks the built model again before it allocates the optimizer. Memory is estimated for
fp32 weights, their gradients and the optimizer's state (AdamW: two moments; SGD: the
momentum buffer); activations come on top and depend on the batch, so a model that passes
can still run out of memory, but one that fails cannot fit.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..dsl.errors import NetspecError
from .runfolder import RunError

FP32 = 4  # bytes per parameter


class SizeError(NetspecError):
    """A model too large for the cap or for the machine. The message is user-facing."""


def training_bytes(num_params: int, cfg) -> int:
    """fp32 weights + gradients + optimizer state of `num_params` parameters."""
    moments = 2 if cfg.optimizer == "adamw" else (1 if cfg.momentum > 0 else 0)
    return num_params * FP32 * (2 + moments)


def checkpoint_bytes(num_params: int, cfg, resume: bool = False, best: bool = True) -> int:
    """Disk a run folder still needs: last/ (weights + optimizer state) and best/ (weights; a
    GAN keeps none), each twice while a new one replaces the old (a resumed run has one of each
    already)."""
    moments = 2 if cfg.optimizer == "adamw" else (1 if cfg.momentum > 0 else 0)
    last, best_bytes = num_params * FP32 * (1 + moments), num_params * FP32 if best else 0
    return last + best_bytes if resume else 2 * (last + best_bytes)


def human(n: float) -> str:
    """Bytes in the unit that reads best: 987.3 KB, 14.2 GB."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def available_memory(device: torch.device) -> int | None:
    """Bytes free for a new allocation on `device` (None: unknown)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    avail = _meminfo_available()
    limit = _cgroup_free()  # a container's own cap is often far below the machine's
    found = [v for v in (avail, limit) if v is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _cgroup_free() -> int | None:
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def check_size(name: str, num_params: int, cfg, device: torch.device) -> None:
    """Raise SizeError when the model exceeds cfg.max_params or cannot fit the device's memory."""
    if cfg.max_params and num_params > cfg.max_params:
        raise SizeError(f"{name} has {num_params:,} parameters, more than max_params {cfg.max_params:,}; "
                        "check --set, or raise --max-params (0: no cap)")
    # torchrun's processes on one machine share its memory, each with a copy (GPUs: one each)
    copies = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1) if device.type == "cpu" else 1
    need = training_bytes(num_params, cfg) * copies
    have = available_memory(device)
    if have is not None and need > have:
        per = f" ({copies} processes)" if copies > 1 else ""
        raise SizeError(f"{name} ({num_params:,} parameters) needs {human(need)} for fp32 weights + "
                        f"{cfg.optimizer} optimizer{per}, {human(have)} available on {device.type}")


def check_folder(out: Path, num_params: int, cfg, resume: bool, best: bool = True) -> None:
    """The run folder can be written and holds room for the checkpoints (best: a best/ too);
    raises RunError."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise RunError(f"cannot write into run folder '{out}': {e.strerror or e}") from None
    need = checkpoint_bytes(num_params, cfg, resume, best)
    free = shutil.disk_usage(out).free
    if free < need:
        raise RunError(f"run folder '{out}' has {human(free)} free; the checkpoints of a "
                       f"{num_params:,}-parameter model need {human(need)}")
