"""Load the torchvision reference dumps written by `dump_torchvision.py`.

    state_dict, inputs, outputs = load_reference("resnet50")
    model.load_state_dict(state_dict)
    model.eval();  torch.testing.assert_close(model(inputs), outputs["eval"], **TOLERANCE)
    model.train(); torch.testing.assert_close(model(inputs), outputs["train"], **TOLERANCE)

`state_dict` is ordered as torchvision's own; `outputs` maps a mode
("eval", and "train" for ResNets) to torchvision's output for `inputs`.
Load the state dict again before the train-mode run if the eval run could
have touched it (it does not: eval mode changes no buffer), and compare the
BatchNorm buffers after the train-mode forward with `post_train_buffers`.

The dumps live in .cache/ref (or $NETSPEC_REF_CACHE); `make test` writes
them. When they are missing this fails the test instead of skipping it, so
a CI run cannot pass without having compared against torchvision.
"""
from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

NAMES = ("alexnet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")

# The dumps come from another torch build (2.14.1 CUDA wheel, run on CPU).
# The references match them bit for bit today; the slack lets a model that
# sums in another order (a fused op, a compiled graph) pass through 150
# layers, and is far below what a wrong layer, eps or stride gives.
TOLERANCE = dict(rtol=1e-4, atol=1e-5)

_REPO = Path(__file__).resolve().parents[2]


def cache_dir() -> Path:
    return Path(os.environ.get("NETSPEC_REF_CACHE", _REPO / ".cache" / "ref"))


def _missing(path: Path) -> None:
    pytest.fail(
        f"torchvision reference dump {path} is missing. Run `make ref` (or `make test`), which "
        "creates .venv-ref (torch 2.14.1 + torchvision 0.29.1) and runs "
        "tests/reference/dump_torchvision.py.",
        pytrace=False,
    )


def _paths(name: str) -> tuple[Path, Path]:
    if name not in NAMES:
        raise KeyError(f"no torchvision reference named {name!r}; known: {NAMES}")
    base = cache_dir()
    st, js = base / f"{name}.safetensors", base / f"{name}.json"
    for p in (st, js, base / "stamp"):
        if not p.exists():
            _missing(p)
    return st, js


def reference_meta(name: str) -> dict:
    """The dump's json: versions, seed, input_shape, modes, num_params, state_keys."""
    return json.loads(_paths(name)[1].read_text())


def _load(name: str, wanted) -> dict[str, torch.Tensor]:
    # safe_open reads only the tensors asked for: the files are up to 240 MB.
    with safe_open(str(_paths(name)[0]), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys() if wanted(k)}


def load_reference(name: str) -> tuple[OrderedDict[str, torch.Tensor], torch.Tensor, dict[str, torch.Tensor]]:
    """(state_dict in torchvision's key order, input batch, {mode: output}) of one dumped model."""
    meta = reference_meta(name)
    tensors = _load(name, lambda k: not k.startswith("post_train."))
    state = OrderedDict((k, tensors[f"state.{k}"]) for k in meta["state_keys"])
    outputs = {mode: tensors[f"output.{mode}"] for mode in meta["modes"]}
    return state, tensors["input"], outputs


def post_train_buffers(name: str) -> dict[str, torch.Tensor]:
    """BatchNorm buffers (running_mean, running_var, num_batches_tracked) after one train-mode forward."""
    prefix = "post_train."
    return {k[len(prefix):]: v for k, v in _load(name, lambda k: k.startswith(prefix)).items()}
