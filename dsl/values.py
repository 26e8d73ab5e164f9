"""The values elaboration computes with, and how a value is written back as spec text.

A value is a compile-time constant (int, float, bool, str, None, a tuple or list of
them), a `Ref` to a graph op (a tensor or a runtime size), a `DimVal` (a symbolic input
dim, made into a `size(x, i)` op the first time it is used), an `InitSpec` or a
`LayerPath` (the values of `init=` and `tie=`), or `ERR` after a reported error — ERR
flows through silently, so one mistake gives one message.
"""
from __future__ import annotations

import keyword
import threading
from itertools import compress

from .ir import Ref, SliceVal
from .tables import MODULE_ATTRIBUTES


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


# A compile-time list may hold 10,000 items and be looked at in every iteration of a loop:
# its items are walked at C speed (map, compress), only nested lists are recursed into, and
# what was found about a long one is remembered (holding it, so its id is not reused).
_SEQS = frozenset({tuple, list})
_NOT_CONST = frozenset({Ref, DimVal, _Err})
_LONG = 64  # items from which a list's facts are remembered
_KEEP = 256  # long lists remembered, the oldest forgotten first
_facts: dict[int, tuple[object, bool, bool]] = {}  # id -> (the list, is_const, has_err)
_facts_lock = threading.Lock()


def nested(v):
    """The lists and tuples directly inside list or tuple `v`, found without a Python loop."""
    return compress(v, map(_SEQS.__contains__, map(type, v)))


def _seq_facts(v) -> tuple[bool, bool]:
    """(is_const, has_err) of a list or tuple; a list shared inside it (`a = [a, a]`) is
    looked at once."""
    known: dict[int, tuple[bool, bool]] = {}
    stack = [(v, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in known:
            continue
        if not ready:
            hit = _remembered(node)
            if hit is not None:
                known[id(node)] = hit
                continue
            stack.append((node, True))
            stack.extend((x, False) for x in nested(node) if id(x) not in known)
            continue
        types = set(map(type, node))
        const, err = not types & _NOT_CONST, _Err in types
        if SliceVal in types:
            const = const and all(is_const(x) for x in node if isinstance(x, SliceVal))
        for x in nested(node):
            c, e = known[id(x)]
            const, err = const and c, err or e
        known[id(node)] = (const, err)
        if len(node) >= _LONG:
            with _facts_lock:
                _facts[id(node)] = (node, const, err)
                if len(_facts) > _KEEP:
                    del _facts[next(iter(_facts))]
    return known[id(v)]


def _remembered(v) -> tuple[bool, bool] | None:
    if len(v) < _LONG:
        return None
    with _facts_lock:
        hit = _facts.get(id(v))
    return (hit[1], hit[2]) if hit is not None and hit[0] is v else None


def is_const(v) -> bool:
    """Known at compile time: nothing in it is a tensor, a runtime size or an error."""
    if isinstance(v, (Ref, DimVal, _Err)):
        return False
    if type(v) in _SEQS:
        return _seq_facts(v)[0]
    if isinstance(v, (tuple, list)):
        return all(is_const(x) for x in v)
    if isinstance(v, SliceVal):
        return all(is_const(x) for x in (v.lo, v.hi, v.step))
    return True


def has_err(v) -> bool:
    if v is ERR:
        return True
    if type(v) in _SEQS:
        return _seq_facts(v)[1]
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
    """Why `name` cannot name a layer or group: every path part becomes an attribute of the
    PyTorch module, so neither a Python keyword (`self.class` is no Python) nor an attribute
    modules already have (`float`, `train`, `graph`) will do. None when it is fine."""
    if keyword.iskeyword(name):
        return f"'{name}' is a Python keyword and cannot name a layer or group (it becomes an attribute in PyTorch)"
    if name in MODULE_ATTRIBUTES:
        return (f"'{name}' cannot name a layer or group: PyTorch modules have an attribute '{name}' "
                "(e.g. .float(), .train(), .to()); pick another name")
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
