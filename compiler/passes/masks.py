"""Proving that a mask built inside a graph is the causal mask.

A mask made from a factory and the triangle ops, `tril(ones(T, T)) == 0` or
`triu(full((T, T), -inf), diagonal=1)`, has at (row i, column j) a value that depends
only on the diagonal offset k = j - i, and changes only at the diagonals its tril/triu
calls name. So it is enough to evaluate it at every k from two below the smallest such
diagonal to two above the largest (0 and 1 included): beyond them it is constant. That
turns "this mask is causal for every T" into a finite check, without guessing sizes.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from typing import Callable

import torch
from torch import fx

_FILL = {torch.ones: 1.0, torch.zeros: 0.0}
FACTORIES = {torch.ones, torch.zeros, torch.full, torch.arange, torch.empty, torch.rand, torch.randn}


@dataclass(frozen=True)
class Triangle:
    """A (rows, cols) matrix whose entry at diagonal offset k = col - row is value(k)."""
    rows: object  # the fx node or int naming the number of rows
    cols: object
    value: Callable[[int], float]
    diagonals: frozenset  # the offsets where value may change
    boolean: bool = False  # a bool tensor (masked_fill takes no other)


def _arg(n: fx.Node, i: int, name: str, default):
    return n.args[i] if len(n.args) > i else n.kwargs.get(name, default)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def triangle(n) -> Triangle | None:
    """The Triangle a mask node computes, or None if it is not built that way."""
    if not isinstance(n, fx.Node) or n.op not in ("call_function", "call_method"):
        return None
    t = n.target
    if n.op == "call_function" and t in _FILL:
        size = n.args[0] if len(n.args) == 1 and isinstance(n.args[0], (tuple, list)) else n.args
        if len(size) != 2:
            return None
        fill = _FILL[t]
        return Triangle(size[0], size[1], lambda k: fill, frozenset(), n.kwargs.get("dtype") is torch.bool)
    if n.op == "call_function" and t is torch.full:
        size, fill = _arg(n, 0, "size", None), _arg(n, 1, "fill_value", None)
        if not isinstance(size, (tuple, list)) or len(size) != 2 or not _number(fill):
            return None
        return Triangle(size[0], size[1], lambda k: float(fill), frozenset(), n.kwargs.get("dtype") is torch.bool)
    if t in (torch.tril, torch.triu, "tril", "triu"):
        inner = triangle(n.args[0])
        d = _arg(n, 1, "diagonal", 0)
        if inner is None or not isinstance(d, int) or isinstance(d, bool):
            return None
        f = inner.value
        keep = (lambda k: k <= d) if t in (torch.tril, "tril") else (lambda k: k >= d)
        return Triangle(inner.rows, inner.cols, lambda k: f(k) if keep(k) else 0.0, inner.diagonals | {d - 1, d},
                        inner.boolean)
    if t in (operator.eq, operator.ne) and _number(n.args[1]):
        inner, c = triangle(n.args[0]), n.args[1]
        if inner is None:
            return None
        f, want = inner.value, t is operator.eq
        return Triangle(inner.rows, inner.cols, lambda k: float((f(k) == c) == want), inner.diagonals, True)
    if t in (torch.logical_not, "logical_not"):
        inner = triangle(n.args[0])
        if inner is None:
            return None
        f = inner.value
        return Triangle(inner.rows, inner.cols, lambda k: float(not f(k)), inner.diagonals, True)
    if t == "bool":
        inner = triangle(n.args[0])
        if inner is None:
            return None
        f = inner.value
        return Triangle(inner.rows, inner.cols, lambda k: float(f(k) != 0), inner.diagonals, True)
    return None


def _offsets(tri: Triangle):
    ds = tri.diagonals | {0, 1}
    return range(min(ds) - 2, max(ds) + 3)


def masks_future(tri: Triangle) -> bool:
    """A bool mask, True where the column is past the row (k > 0) and only there: masked_fill's
    causal mask."""
    return tri.boolean and all(bool(tri.value(k)) == (k > 0) for k in _offsets(tri))


def adds_causal(tri: Triangle) -> bool:
    """-inf where k > 0 and 0 elsewhere: the additive causal mask (a float one)."""
    return not tri.boolean and all(tri.value(k) == (-math.inf if k > 0 else 0.0) for k in _offsets(tri))


def is_given(n, limit: int = 64) -> bool:
    """A mask the block was given: computed from its inputs, with no factory on the way.
    (A mask built from sizes is either provably causal or left alone.)"""
    seen, todo = set(), [n]
    while todo:
        cur = todo.pop()
        if not isinstance(cur, fx.Node) or cur in seen:
            continue
        seen.add(cur)
        if len(seen) > limit or cur.op in ("call_module", "get_attr"):
            return False
        if cur.op == "call_function" and cur.target in FACTORIES:
            return False
        todo.extend(cur.all_input_nodes)
    return any(c.op == "placeholder" for c in seen)
