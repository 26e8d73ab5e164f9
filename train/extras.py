"""The modules only training needs, and the one clear error when they are missing.

`netspec check`, `render`, `summary` and `compile` need torch and the required
dependencies only; training also needs the extras of `pip install 'netspec-nn[train]'`.
Every module of `netspec.train` imports them through `require`, so a missing one is
a `MissingExtraError` (a NetspecError) naming the install command, on the command
line and in Python alike, never a bare ModuleNotFoundError. Modules that only some
runs use (TensorBoard) come with extras of their own (OPTIONAL), named the same way.
"""
from __future__ import annotations

from importlib import import_module
from types import ModuleType

from ..dsl.errors import NetspecError

INSTALL = "pip install 'netspec-nn[train]'"

# import name -> (distribution on PyPI, what training uses it for); pyproject.toml's
# `train` extra lists the same distributions.
EXTRAS: dict[str, tuple[str, str]] = {
    "numpy": ("numpy", "data pipelines and checkpoints"),
    "yaml": ("pyyaml", "run configs"),
    "sklearn": ("scikit-learn", "the digits data"),
    "matplotlib": ("matplotlib", "curves.png"),
    "PIL": ("pillow", "image folders"),
}


# import name -> (distribution, what needs it, the extra that brings it): modules that only
# some runs use, in extras of their own
OPTIONAL: dict[str, tuple[str, str, str]] = {
    "tensorboard": ("tensorboard", "--log tensorboard", "tensorboard"),
}


class MissingExtraError(NetspecError):
    """A module of the training extras is not installed. The message names the install command."""


def missing_message(root: str) -> str:
    """The one line shown when import name `root` (a key of EXTRAS or OPTIONAL) is missing."""
    if root in OPTIONAL:
        dist, use, extra = OPTIONAL[root]
        return f"{use} needs {dist}, which the {extra} extra brings: pip install 'netspec-nn[{extra}]'"
    dist, use = EXTRAS[root]
    return f"training needs {dist} ({use}), which the training extras bring: {INSTALL}"


def require(module: str) -> ModuleType:
    """Import `module` (`numpy`, `matplotlib.pyplot`, ...) from the training extras, or
    raise MissingExtraError naming the install command."""
    root = module.split(".")[0]
    if root not in EXTRAS and root not in OPTIONAL:
        raise ValueError(f"{root} is not a module of the training extras")  # a bug of ours
    try:
        return import_module(module)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != root:  # the extra is there but broken inside: not ours to hide
            raise
        raise MissingExtraError(missing_message(root)) from None
