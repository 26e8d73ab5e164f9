"""Symbolic shapes: what a pass may assume about tensor sizes for *every* input, not one.

A dim is an int (the op fixed it: `view(B, T, 4, 32)` makes dim 2 exactly 4), a `Size`
(a runtime size named by where it was read: dim 1 of input x; `x.size(1)` and every
dim copied from it are the same `Size`) or None (unknown). Two dims are provably equal
when they are the same int or the same `Size`. A shape is a tuple of dims, or None when
even the rank is unknown.

Ranks of block inputs come from the spec's declarations (`input x: [B, T, C]`); sizes
are never taken from the default input sizes a spec was checked at. The rules below are
deliberately few: an op not listed has an unknown shape, which only makes a pass fire
less often, never wrongly.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Union

import torch
import torch.nn.functional as F
from torch import fx, nn

from .. import ops as netspec_ops


@dataclass(frozen=True)
class Size:
    """The runtime size of dim `dim` of the value of fx node `node`."""
    node: str
    dim: int


Dim = Union[int, Size, None]
Shape = Union[tuple, None]  # of Dims

# Tensor -> tensor of the same shape (their first argument is the tensor).
_SAME_FUNCTIONS = {torch.softmax, torch.log_softmax, torch.relu, torch.tanh, torch.sigmoid, torch.exp,
                   torch.log, torch.sqrt, torch.rsqrt, torch.abs, torch.sin, torch.cos, torch.masked_fill,
                   torch.tril, torch.triu, torch.clamp, torch.logical_not, F.gelu, F.silu, F.relu, F.dropout,
                   operator.neg, netspec_ops.causal_mask}
_SAME_METHODS = {"contiguous", "float", "long", "detach", "softmax", "masked_fill", "tril", "triu", "bool", "to"}
_SAME_MODULES = (nn.Dropout, nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softmax, nn.LayerNorm,
                 nn.Identity, nn.LeakyReLU, nn.ELU, nn.Mish, nn.ReLU6, nn.Softplus, nn.RMSNorm)
_ELEMENTWISE = {operator.add, operator.sub, operator.mul, operator.truediv, operator.eq, operator.ne,
                operator.lt, operator.le, operator.gt, operator.ge, torch.add, torch.mul}
_FACTORIES = {torch.ones, torch.zeros}


def same(a, b) -> bool:
    """Provably equal dims (unknown is equal to nothing, not even itself)."""
    return a is not None and b is not None and a == b


def _norm_dim(d, rank):
    if not isinstance(d, int) or isinstance(d, bool) or rank is None:
        return None
    d = d + rank if d < 0 else d
    return d if 0 <= d < rank else None


def _broadcast(a: Shape, b: Shape) -> Shape:
    if a is None or b is None:
        return None
    n = max(len(a), len(b))
    a = (1,) * (n - len(a)) + tuple(a)
    b = (1,) * (n - len(b)) + tuple(b)
    return tuple(x if same(x, y) or y == 1 else y if x == 1 else None for x, y in zip(a, b))


class _Facts:
    def __init__(self, gm: fx.GraphModule):
        self.gm = gm  # its layers: Linear's out_features
        self.shapes: dict[fx.Node, Shape] = {}
        self.values: dict[fx.Node, Dim] = {}  # runtime ints: x.size(1)

    def shape(self, v) -> Shape:
        if isinstance(v, fx.Node):
            return self.shapes.get(v)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return ()  # a Python number broadcasts like a 0-d tensor
        return None

    def value(self, v) -> Dim:
        if isinstance(v, fx.Node):
            return self.values.get(v)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def sizes(self, args) -> Shape:
        """view(B, T, 4, 32) / view((B, T, 4, 32)) / ones(T, T): the dims the arguments name."""
        if len(args) == 1 and isinstance(args[0], (tuple, list)):
            args = tuple(args[0])
        elif len(args) == 1 and isinstance(args[0], fx.Node) and args[0] not in self.values:
            return None  # view(other.shape): one argument naming all the sizes, none known
        out = []
        for a in args:
            v = self.value(a)
            out.append(None if v == -1 else v)
        return tuple(out)

    def visit(self, n: fx.Node) -> None:
        if n.op == "placeholder":
            dims = n.meta.get("netspec_dims")
            if dims is not None:
                self.shapes[n] = tuple(Size(n.name, i) for i in range(len(dims)))
            return
        if n.op == "call_method" and n.target == "size" and len(n.args) == 2:
            s = self.shape(n.args[0])
            d = _norm_dim(n.args[1], len(s)) if s is not None else None
            known = s[d] if d is not None else None
            if known is not None:
                self.values[n] = known
            elif isinstance(n.args[1], int) and n.args[1] >= 0:  # unknown rank: a size of its own
                self.values[n] = Size(n.args[0].name, n.args[1])
            return
        shape = self._tensor_shape(n)
        if shape is not None:
            self.shapes[n] = shape

    def _tensor_shape(self, n: fx.Node) -> Shape:
        args = n.args
        if n.op == "call_function":
            if n.target in _SAME_FUNCTIONS:
                return self.shape(args[0]) if args else None
            if n.target in _ELEMENTWISE and len(args) == 2:
                return _broadcast(self.shape(args[0]), self.shape(args[1]))
            if n.target in (operator.matmul, torch.matmul) and len(args) == 2:
                return self._matmul(self.shape(args[0]), self.shape(args[1]))
            if n.target is torch.transpose:
                return self._transpose(self.shape(args[0]), *args[1:3])
            if n.target in _FACTORIES:
                return self.sizes(args)
            if n.target is torch.full:
                return self.sizes((args[0],)) if args else None
            if n.target is operator.getitem and isinstance(args[0], fx.Node):
                return self._piece(args[0])
            return None
        if n.op == "call_method":
            if n.target in _SAME_METHODS:
                return self.shape(args[0])
            if n.target in ("view", "reshape"):
                return self.sizes(args[1:])
            if n.target == "transpose":
                return self._transpose(self.shape(args[0]), *args[1:3])
            if n.target == "permute":
                s, dims = self.shape(args[0]), args[1:]
                if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
                    dims = tuple(dims[0])
                if s is None or len(dims) != len(s) or any(_norm_dim(d, len(s)) is None for d in dims):
                    return None
                return tuple(s[_norm_dim(d, len(s))] for d in dims)
            return None
        if n.op == "call_module":
            m = self.gm.get_submodule(n.target)
            s = self.shape(args[0]) if args else None
            if isinstance(m, _SAME_MODULES):
                return s
            if type(m) is nn.Linear and s is not None and len(s) >= 1:
                return s[:-1] + (m.out_features,)
            return None
        return None

    def _piece(self, parts: fx.Node) -> Shape:
        """One piece of split(x, size, dim) / chunk(x, n, dim): x's shape, dim `dim` unknown."""
        if parts.op != "call_function" or parts.target not in (torch.split, torch.chunk):
            return None
        s = self.shape(parts.args[0])
        dim = parts.kwargs.get("dim", parts.args[2] if len(parts.args) > 2 else 0)
        d = _norm_dim(dim, len(s)) if s is not None else None
        return None if d is None else s[:d] + (None,) + s[d + 1:]

    @staticmethod
    def _transpose(s: Shape, a, b) -> Shape:
        if s is None:
            return None
        i, j = _norm_dim(a, len(s)), _norm_dim(b, len(s))
        if i is None or j is None:
            return None
        out = list(s)
        out[i], out[j] = out[j], out[i]
        return tuple(out)

    @staticmethod
    def _matmul(a: Shape, b: Shape) -> Shape:
        if a is None or b is None or len(a) < 2 or len(b) < 2:
            return None
        batch = _broadcast(a[:-2], b[:-2])
        return None if batch is None else batch + (a[-2], b[-1])


@dataclass(frozen=True)
class Facts:
    shapes: dict  # fx.Node -> Shape, for the tensor nodes whose rank is known
    values: dict  # fx.Node -> Dim, for the runtime-int nodes (x.size(1))

    def size(self, v) -> Dim:
        """The dim an argument names: an int, or the value of a runtime-int node."""
        if isinstance(v, fx.Node):
            return self.values.get(v)
        return v if isinstance(v, int) and not isinstance(v, bool) else None


def infer(graph: fx.Graph, gm: fx.GraphModule) -> Facts:
    """What is known of every node of `graph` (whose layers live in `gm`) for every input."""
    facts = _Facts(gm)
    for n in graph.nodes:
        facts.visit(n)
    return Facts(facts.shapes, facts.values)
