"""The random generators a run checkpoints: torch's, CUDA's, numpy's and python's global ones.

Initial weights come from the seed; dropout masks and anything else drawn during training
come from these generators, so a checkpoint keeps their states (one per rank under
torchrun) and a resumed run draws exactly what the uninterrupted run would have drawn.
States are plain tensors, lists and numbers, so state.pt loads with
`torch.load(weights_only=True)`.
"""
from __future__ import annotations

import random
from typing import Any

import torch

from .extras import require

np = require("numpy")


def seed_all(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators (initial weights, dropout)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
    """Restore `rng_state()`'s result; raises TypeError / ValueError / KeyError on anything else."""
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
