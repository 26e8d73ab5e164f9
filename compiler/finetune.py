"""Naming parts of a built model for fine-tuning: which parameters a PATTERN selects, freezing them.

A PATTERN is a glob (`fnmatch`: `*`, `?`, `[0-5]`) over the model's module paths and
parameter names, as its state_dict spells them: `fc`, `layer4`, `transformer.h.1[01]`,
`*.bn*`, `fc.bias`. A pattern that matches a module selects every parameter under it;
several patterns may be given, or one with commas (`layer1,layer2`). A pattern that selects
nothing is an error naming the model's top-level modules, so a typo never passes silently.

    freeze(model, ["conv1", "layer*"])       # requires_grad=False, as `frozen=true` in a spec
    keys = select(model, ["fc"])             # {"fc.weight", "fc.bias"}

`load_weights(..., reinit=patterns)` (weights.py) leaves the selected keys at their fresh
initialisation; `netspec train --freeze / --reinit` and `netspec summary --freeze` use these.
"""
from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from torch import nn

from ..dsl.errors import NetspecError, did_you_mean


class PatternError(NetspecError):
    """A PATTERN that selects nothing in the model (the message lists what there is)."""


def split_patterns(patterns: Iterable[str] | str | None) -> list[str]:
    """["a,b", "c"] -> ["a", "b", "c"]; blanks dropped."""
    if patterns is None:
        return []
    if isinstance(patterns, str):
        patterns = [patterns]
    return [p.strip() for item in patterns for p in item.split(",") if p.strip()]


def _prefixes(key: str) -> list[str]:
    """'layer1.0.conv1.weight' -> ['layer1', 'layer1.0', 'layer1.0.conv1', 'layer1.0.conv1.weight']."""
    parts = key.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def matches(pattern: str, key: str) -> bool:
    """Whether `pattern` selects the parameter or buffer `key`: it matches the key or a module above it."""
    return any(fnmatchcase(p, pattern) for p in _prefixes(key))


def select_keys(keys: Iterable[str], patterns: Iterable[str] | str | None, *, model: str = "the model",
                flag: str = "pattern") -> set[str]:
    """The keys that any pattern selects. Raises PatternError for a pattern that selects none."""
    keys = list(keys)
    chosen: set[str] = set()
    for pattern in split_patterns(patterns):
        hits = {k for k in keys if matches(pattern, k)}
        if not hits:
            tops = sorted({k.split(".")[0] for k in keys})
            raise PatternError(f"{flag} '{pattern}' matches nothing in {model}"
                               f"{did_you_mean(pattern, tops)}; its top-level modules: {', '.join(tops)}")
        chosen |= hits
    return chosen


def select(model: nn.Module, patterns: Iterable[str] | str | None, *, flag: str = "pattern") -> set[str]:
    """Names (state_dict keys: parameters and buffers) of `model` that the patterns select."""
    return select_keys(model.state_dict().keys(), patterns, model=_name(model), flag=flag)


def freeze(model: nn.Module, patterns: Iterable[str] | str | None, *, flag: str = "freeze pattern") -> list[str]:
    """Stop training the parameters the patterns select (requires_grad=False); returns their names.
    Buffers (BatchNorm's running statistics) are not parameters: they still update in train mode."""
    chosen = select(model, patterns, flag=flag)
    names = []
    for name, p in model.named_parameters(remove_duplicate=False):
        if name in chosen:
            p.requires_grad_(False)
            names.append(name)
    return names


def trainable_counts(model: nn.Module) -> tuple[int, int]:
    """(trainable, frozen) parameter counts; a tied Parameter counts once."""
    trainable = frozen = 0
    for p in model.parameters():
        if p.requires_grad:
            trainable += p.numel()
        else:
            frozen += p.numel()
    return trainable, frozen


def _name(model: nn.Module) -> str:
    info = getattr(model, "netspec", None)
    return info.name if info is not None else type(model).__name__
