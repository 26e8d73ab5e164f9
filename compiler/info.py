"""What a built model says about itself: its inputs, heads and parameters.

`compiler.build` attaches a `ModelInfo` to every GraphModule it returns as
`model.netspec`; the trainer, `summary` and the CLI read it instead of
re-parsing the spec. Plain data, no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class InputInfo:
    name: str  # argument name of forward(), in declaration order
    dtype: str  # torch dtype name: "float32", "int64", "bool", ...
    dims: tuple  # per dim: an int, or the symbolic name ("B", "T")
    shape: tuple[int, ...]  # the default concrete shape used for checks and shape inference


@dataclass(frozen=True)
class HeadInfo:
    name: str  # key of the head in forward()'s result
    task: str | None  # "classify", "lm", "segment", "reconstruct", "regress" or None (no loss)
    weight: float = 1.0  # weight of this head's loss in the total
    target: str | None = None  # reconstruct: the input it reproduces (default: the first input)
    shape: tuple[int, ...] | None = None  # inferred output shape at the default input shape
    args: dict = field(default_factory=dict)  # any further task arguments written in the spec


@dataclass(frozen=True)
class ModelInfo:
    name: str  # model name in the spec
    source: str  # path of the spec file ("<string>" for text)
    params: dict[str, Any]  # resolved model parameters (defaults overridden by --set)
    inputs: tuple[InputInfo, ...]
    heads: tuple[HeadInfo, ...]
    # forward(*inputs) returns a tensor when the model has one head, else a dict head -> tensor.
    files: tuple[str, ...] = ()  # absolute paths of every spec file read: the main file, then its imports
    search_path: tuple[str, ...] = ()  # import folders after the importer's own (extra paths,
    # $NETSPEC_PATH, the stdlib), absolute: with `files`, what a copy of the spec needs to load alike

    @property
    def single_head(self) -> bool:
        return len(self.heads) == 1
