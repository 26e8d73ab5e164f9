"""Checkpoints of a run folder: `model.safetensors` (weights) and `state.pt` (everything else).

Weights go through `safetensors.torch.save_model` / `load_model`, which drop
tensors that share storage (tied embeddings) on save and restore the tie on
load. `state.pt` holds optimizer, schedule, AMP scaler, RNG states (torch,
CUDA, numpy, python -- per rank under torchrun), step and data position, all
as plain tensors / numbers so it loads with `torch.load(weights_only=True)`.
Files are written to a temporary name and renamed, so a crash mid-save
leaves the previous checkpoint intact.
"""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_model, save_model

from ..dsl.errors import NetspecError
from .extras import require

np = require("numpy")

WEIGHTS = "model.safetensors"
STATE = "state.pt"


class CheckpointError(NetspecError):
    """A run folder without (readable) checkpoint files. The message is user-facing."""


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module under DistributedDataParallel and torch.compile wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(str(tmp))
    os.replace(tmp, path)


def save_weights(model: torch.nn.Module, path: str | Path, metadata: dict[str, str] | None = None) -> None:
    path = Path(path)
    _atomic(path, lambda p: save_model(unwrap(model), p, metadata=dict(metadata or {})))


def load_weights_file(model: torch.nn.Module, path: str | Path, strict: bool = True) -> None:
    """Load a model.safetensors written by `save_weights` (or a run folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"no weights at '{path}'")
    try:
        device = next(iter(unwrap(model).parameters())).device
    except StopIteration:
        device = torch.device("cpu")
    try:
        load_model(unwrap(model), str(path), strict=strict, device=str(device))
    except RuntimeError as e:
        raise CheckpointError(f"weights in '{path}' do not fit the model: {e}")


# --------------------------------------------------------------------------
# RNG


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        # numpy's state as plain ints so state.pt stays loadable with weights_only=True
        "numpy": [np_state[0], [int(v) for v in np_state[1]], int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu() if isinstance(state["torch"], torch.Tensor) else state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, (tuple, list)) else x


# --------------------------------------------------------------------------


def save_checkpoint(run_dir: str | Path, model: torch.nn.Module, state: dict[str, Any],
                    metadata: dict[str, str] | None = None) -> None:
    """Write weights and training state into run_dir (state: optimizer, step, loader, rng, ...)."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_weights(model, run_dir / WEIGHTS, metadata)
        _atomic(run_dir / STATE, lambda p: torch.save(state, p))
    except OSError as e:  # a full disk, a folder made read-only: the user's to fix
        raise CheckpointError(f"cannot write the checkpoint into '{run_dir}': {e.strerror or e}")


def load_state(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / STATE
    if not path.is_file():
        raise CheckpointError(f"'{run_dir}' has no {STATE} to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user problem
        raise CheckpointError(f"cannot read '{path}': {e}")
