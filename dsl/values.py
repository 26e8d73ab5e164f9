"""The values elaboration computes with, and how a value is written back as spec text.

A value is a compile-time constant (int, float, bool, str, None, a tuple or list of
them), a `Ref` to a graph op (a tensor or a runtime size), a `DimVal` (a symbolic input
dim, made into a `size(x, i)` op the first time it is used), an `InitSpec` or a
`LayerPath` (the values of `init=` and `tie=`), or `ERR` after a reported error — ERR
flows through silently, so one mistake gives one message.
"""
from __future__ import annotations

import keyword

from .ir import Ref, SliceVal


class _Err:
    def __repr__(self) -> str:
        return "ERR"


ERR = _Err()


class DimVal:
    """A symbolic dim of an input (`T` in `input idx: long[B, T]`); `ref` is its size op once made."""

    __slots__ = ("input", "axis", "symbol", "ref")

    def __init__(self, input_id: str, axis: int, symbol: str):
        self.input, self.axis, self.symbol, self.ref = input_id, axis, symbol, None


class LayerPath:
    """The value of `tie=transformer.wte`: a layer named by its path in the block."""

    __slots__ = ("path",)

    def __init__(self, path: str):
        self.path = path

    def __repr__(self) -> str:
        return self.path


def is_const(v) -> bool:
    """Known at compile time: nothing in it is a tensor, a runtime size or an error."""
    if isinstance(v, (Ref, DimVal, _Err)):
        return False
    if isinstance(v, (tuple, list)):
        return all(is_const(x) for x in v)
    if isinstance(v, SliceVal):
        return all(is_const(x) for x in (v.lo, v.hi, v.step))
    return True


def has_err(v) -> bool:
    if v is ERR:
        return True
    if isinstance(v, (tuple, list)):
        return any(has_err(x) for x in v)
    return False


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_name(text: str) -> bool:
    """An ASCII identifier: what a layer label, module path part or bound name may be
    (it becomes a Python attribute, a state_dict key part and a diagram id)."""
    return text.isascii() and text.isidentifier()


def keyword_message(name: str) -> str | None:
    """Why `name` cannot name a layer or group, when it is a Python keyword (`class`, `lambda`):
    every path part becomes an attribute of the PyTorch module (`self.class` is no Python)."""
    if keyword.iskeyword(name):
        return f"'{name}' is a Python keyword and cannot name a layer or group (it becomes an attribute in PyTorch)"
    return None


def format_value(v) -> str:
    """A value as a spec writes it: true, 0.1, "relu", [2, 2], (3, 3)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple):
        return "(" + ", ".join(format_value(x) for x in v) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    if isinstance(v, Ref):
        return v.node or "?"
    return str(v)


def format_args(pos, kw) -> str:
    """Call arguments as a spec writes them: (4, dim=-1)."""
    parts = [format_value(v) for v in pos] + [f"{k}={format_value(v)}" for k, v in kw.items()]
    return "(" + ", ".join(parts) + ")"
