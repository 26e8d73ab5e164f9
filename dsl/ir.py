"""The graph IR: one NetworkX DAG per block instantiation, with blocks nested.

Elaboration turns a `Def` plus parameter values into a `BlockGraph`; identical
instantiations (same def, same parameters) share one BlockGraph, so GPT-2's 12
blocks are elaborated, checked and lowered once. Every `Op` keeps the span of the
statement it came from; later stages (shapes, lowering, rendering) read them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .errors import Span


class Ref:
    """A tensor (or runtime int) produced by op `node`. A forward reference starts with
    node=None and `pending` set, and is filled in once its name is bound."""

    __slots__ = ("node", "pending", "span")

    def __init__(self, node: str | None, pending: str | None = None, span: Span | None = None):
        self.node = node
        self.pending = pending
        self.span = span

    def __repr__(self) -> str:
        return f"%{self.node or '?' + str(self.pending)}"


@dataclass(frozen=True)
class SliceVal:
    lo: Any
    hi: Any
    step: Any


@dataclass(frozen=True)
class InitSpec:
    name: str  # normal, zeros, ones, constant, kaiming, xavier, ...
    args: tuple = ()
    kwargs: tuple = ()  # sorted (key, value) pairs, hashable


@dataclass
class Op:
    id: str  # unique within its graph; the fx node name
    kind: str  # input | module | block | function | method | binop | getitem | output | attr | select
    target: str  # registry name, block name, or operator ("add", "matmul", "getitem")
    span: Span
    args: tuple = ()  # tensor inputs for module/block ops; call arguments for functions (may hold Refs)
    kwargs: dict = field(default_factory=dict)
    path: str | None = None  # module path inside the block ("c_attn", "downsample.0")
    cluster: str | None = None  # enclosing named group ("transformer.h"), for diagrams
    category: str = "op"
    label: str = ""  # short text for diagrams and summaries
    # modules: constructor arguments, evaluated; blocks: the child graph
    ctor_args: tuple = ()
    ctor_kwargs: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)  # netspec's own layer options (LSTM's return_state)
    init: dict = field(default_factory=dict)  # "weight"/"bias" -> InitSpec
    tie: tuple[str, Span] | None = None  # module path whose weight this module shares
    frozen: bool = False
    block: "BlockGraph | None" = None
    # blocks: this instance's arguments, as the enclosing body computed them (while ejecting,
    # expressions over its parameters; `block.params` are those of the first equal instance)
    block_args: dict = field(default_factory=dict)
    flow_input: str | None = None  # the op whose value flowed in (a solid edge); others are skips
    doc: str | None = None
    # inputs: dtype and dims; each dim an int or (symbol, default)
    dtype: str | None = None
    dims: tuple | None = None


@dataclass
class Output:
    name: str
    ref: Ref
    span: Span
    task: str | None = None
    task_args: dict = field(default_factory=dict)
    is_head: bool = False
    doc: str | None = None


@dataclass
class BlockGraph:
    name: str  # the def's name
    kind: str  # "block" | "model"
    params: dict  # resolved parameter values
    span: Span  # the def's header
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)  # node id -> {"op": Op}; edge attr "skip": bool
    inputs: list[Op] = field(default_factory=list)
    outputs: list[Output] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)  # named groups: nn.Module containers
    doc: str | None = None
    # named group -> the count of the `repeat` that numbered its members (ejected code builds
    # them in a loop over range(count)); None where two repeats did
    repeats: dict = field(default_factory=dict)

    def op(self, node_id: str) -> Op:
        return self.graph.nodes[node_id]["op"]

    def ops(self):
        """Ops in a topological order (inputs first)."""
        order = {n: i for i, n in enumerate(self.graph.nodes)}  # source order where the edges allow
        for n in nx.lexicographical_topological_sort(self.graph, key=order.__getitem__):
            yield self.graph.nodes[n]["op"]

    @property
    def key(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def walk(self, prefix: str = ""):
        """Yield (path, BlockGraph) for this block and every nested block instance."""
        yield prefix, self
        for op in self.graph.nodes.values():
            op = op["op"]
            if op.kind == "block":
                yield from op.block.walk(f"{prefix}{op.path}.")

    def count_ops(self) -> int:
        total = 0
        for op in self.graph.nodes.values():
            op = op["op"]
            total += op.block.count_ops() if op.kind == "block" else 1
        return total


def walk_refs(value):
    """Every Ref inside a (possibly nested) argument value."""
    if isinstance(value, Ref):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from walk_refs(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from walk_refs(v)
    elif isinstance(value, SliceVal):
        yield from walk_refs((value.lo, value.hi, value.step))
