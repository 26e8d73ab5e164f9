"""The state of one block body being elaborated, and the few operations every statement
uses on it: binding and looking up names, naming ops and layers, adding ops.

`BodyState` holds all of it in named fields; the statement functions (dsl/statements.py)
and step functions (dsl/steps.py) take it as their first argument. It is also the `Scope`
the expression evaluator works through (dsl/exprs.py), and it reaches the elaborator
only through `Instantiator`, for the blocks the body applies.

Names: a labelled layer (`c_attn: Linear(...)`) gets that name as its module path;
inside a named group members are numbered like nn.Sequential (`downsample.0`);
elsewhere anonymous layers are named after their type (`relu`, `relu_1`).
Values: names rebind like Python; a name used before any binding refers forward to
its first binding (which is how cycles can arise, and are reported).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from . import ast as A
from . import limits, symbolic
from .errors import LimitError, Reporter, Span, did_you_mean
from .exprs import Evaluator
from .folding import Sizes
from .ir import BlockGraph, Op, Ref, walk_refs
from .loader import DefEntry, Program
from .registry import REGISTRY
from .schema import bind_schema
from .tables import CONSTANTS, RUNTIME, snake
from .values import ERR, DimVal, format_args, has_err, keyword_message


class Instantiator(Protocol):
    """What a body needs from the elaborator: the blocks it applies, elaborated."""

    program: Program
    values: Sizes  # measures and counts every compile-time value of the elaboration

    def resolve(self, entry: DefEntry) -> tuple[DefEntry | None, list]:
        """Follow `model A = B(args)` aliases: (the def with a body, its keyword arguments)."""

    def bind_params(self, entry: DefEntry, args: list, call_span: Span | None) -> dict | None:
        """Parameter values of a def for call arguments (keyword or None, value, span)."""

    def instantiate(self, entry: DefEntry, params: dict, call_span: Span | None) -> BlockGraph | None:
        """The BlockGraph of a def with these parameters (shared when elaborated before)."""

    def spend_iterations(self, n: int, what: str, span: Span) -> None:
        """Count a loop's iterations before running them (LimitError over the `iterations` limit)."""

    def size(self, block: BlockGraph) -> int:
        """The layers and ops of an elaborated block, every nested instance counted."""


_PATH_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")


@dataclass(eq=False)
class BodyState:
    elab: Instantiator
    entry: DefEntry  # the definition whose body this is, and the file it is in
    block: BlockGraph  # what the body fills in
    diags: Reporter  # adds "instantiated here" notes to every problem
    env: dict  # name -> value: parameters, loop variables, tensors
    forward_names: set[str]  # names bound anywhere in the body: a use before binding refers forward
    explicit: set[str]  # layer labels written in the body: anonymous layers keep clear of them
    flow: Ref | None = None  # the value the next step applies to
    prefix: list[str] = field(default_factory=list)  # the named groups we are inside
    counters: list[int] = field(default_factory=list)  # the Sequential index in each of them
    anon: Counter = field(default_factory=Counter)  # anonymous layer name -> next suffix (relu_1)
    ids: Counter = field(default_factory=Counter)  # op id hint -> next suffix
    paths: dict[str, Span] = field(default_factory=dict)  # layer path -> where it was defined
    forward: list[Ref] = field(default_factory=list)  # forward references, filled in at the end
    bindings: dict[str, list[Ref]] = field(default_factory=dict)  # name -> every tensor bound to it
    ties: list[Op] = field(default_factory=list)  # modules with tie=, resolved at the end
    declared_outputs: bool = False  # an output or head was written (even one that failed)
    runtime_refs: dict[str, Ref] = field(default_factory=dict)  # `training` -> the op that reads it
    loops: int = 0  # how many loops (`for`, `repeat`) the current statement is in
    loop_errors: set = field(default_factory=set)  # (message, span) reported with a layer's path
    size: int = 0  # layers and ops so far, every instance of a nested block counted (the `layers` limit)
    exprs: Evaluator = field(init=False)

    def __post_init__(self):
        self.exprs = Evaluator(self, self.elab.values)

    @classmethod
    def start(cls, elab: Instantiator, entry: DefEntry, block: BlockGraph, diags: Reporter) -> BodyState:
        body = entry.defn.body
        # while ejecting, the body computes with its parameters' names (dsl/symbolic.py)
        env = {k: symbolic.local(id(block), k, v) for k, v in block.params.items()}
        return cls(elab, entry, block, diags, env, static_names(body), labels(body))

    @property
    def defn(self) -> A.Def:
        return self.entry.defn

    def ev(self, e):
        return self.exprs.ev(e)

    def name_text(self, name: A.Name, index_ok: bool = False):
        return self.exprs.name_text(name, index_ok)

    # ---------- names ----------
    def bind(self, name: str, value) -> None:
        self.env[name] = value
        if isinstance(value, Ref):
            self.bindings.setdefault(name, []).append(value)

    def bind_as(self, name: A.Name, value) -> None:
        n = self.name_text(name)
        if n is not ERR:
            self.bind(n, value)

    def find_def(self, dotted: str):
        """The DefEntry (or imported ModuleNamespace) `dotted` names in this file, else None."""
        return self.elab.program.lookup(self.entry.module, dotted)

    def bound(self, name: str) -> bool:
        return name in self.env

    def is_block(self, name: str) -> bool:
        return self.find_def(name) is not None

    def lookup(self, name: str, span: Span):
        if name == "_":
            if self.flow is None:
                self.diags.error("'_' (the current value) is not defined here: nothing flows yet", span)
                return ERR
            return self.flow
        if name in self.env:
            v = self.env[name]
            return self.materialize(v) if isinstance(v, DimVal) else v
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in self.forward_names:
            r = Ref(None, name, span)
            self.forward.append(r)
            return r
        if name in RUNTIME:
            return self.runtime(name, span)
        if self.find_def(name) or name in REGISTRY:
            self.diags.error(f"'{name}' is a layer, not a value: apply it as a step", span)
        else:
            self.diags.error(f"undefined name '{name}'{did_you_mean(name, list(self.env) + list(CONSTANTS))}",
                             span)
        return ERR

    # ---------- ops ----------
    def new_id(self, hint: str, path: str | None = None) -> str:
        hint_path = path.replace(".", "_") if path else None
        if hint_path is not None and hint_path not in self.block.graph:
            return hint_path
        hint = hint.replace(".", "_")
        self.ids[hint] += 1
        n = self.ids[hint]
        while True:
            cand = hint if n == 1 else f"{hint}_{n - 1}"
            # op ids and layer paths share one namespace (shape tables, diagrams): keep them apart
            if cand not in self.block.graph and \
                    (cand == hint_path or (cand not in self.paths and cand not in self.explicit)):
                return cand
            n += 1

    def add_op(self, op: Op) -> Ref:
        self.size += _weight(op, self.elab)
        if self.size > limits.get("layers"):
            raise LimitError("layers", f"{self.defn.kind} '{self.defn.name}' reaches {self.size:,} layers and ops "
                             "here", op.span)
        self.block.graph.add_node(op.id, op=op)
        return Ref(op.id)

    def add_call(self, kind, target, args, kwargs, span, *, label="", flow_input=None, category=None,
                 id_hint=None) -> Ref:
        args = tuple(self.materialize(a) for a in args)
        kwargs = {k: self.materialize(v) for k, v in kwargs.items()}
        if flow_input is None and isinstance(self.flow, Ref) and \
                any(r is self.flow or r.node == self.flow.node for r in walk_refs(args)):
            flow_input = self.flow.node  # the flow is the main path; other inputs are skips
        ldef = REGISTRY.get(target)
        cat = category or (ldef.category if ldef else "merge" if kind == "binop" else "op")
        op = Op(self.new_id(id_hint or target), kind, target, span, args, kwargs, cluster=self.cluster(),
                category=cat, label=label or target, flow_input=flow_input)
        return self.add_op(op)

    def call_function(self, name, args, span, *, id_hint=None, flow_input=None):
        ldef = REGISTRY[name]
        if any(has_err(v) for _, v, _ in args):
            return ERR
        bound = bind_schema(ldef, args, span, self.diags)
        if bound is None:
            return ERR
        pos, kw = bound
        if any(a.name == "training" for a in ldef.schema) and "training" not in kw and \
                len(pos) <= [a.name for a in ldef.schema].index("training"):
            kw["training"] = self.runtime("training", span)  # not given: the module's mode
        kind = "method" if ldef.target.startswith("method:") else "function"
        label = name + (format_args(pos[1:], kw) if pos else "")
        return self.add_call(kind, name, tuple(pos), kw, span, label=label, flow_input=flow_input,
                             id_hint=id_hint or name)

    def is_runtime(self, value) -> bool:
        return isinstance(value, Ref) and any(value.node == r.node for r in self.runtime_refs.values())

    def runtime(self, name: str, span: Span) -> Ref:
        """The op reading a run-time value of the module (`training`), made on first use."""
        if name not in self.runtime_refs:
            op = Op(self.new_id(name), "attr", name, span, cluster=self.cluster(), label=name)
            self.runtime_refs[name] = self.add_op(op)
        return self.runtime_refs[name]

    def materialize(self, v):
        """DimVals become size(x, i) ops the first time a runtime value is needed."""
        if isinstance(v, DimVal):
            if v.ref is None:
                v.ref = self.add_call("function", "size", (Ref(v.input), v.axis), {}, self.op_span(v.input),
                                      label=f"{v.symbol}", id_hint=v.symbol)
            return v.ref
        if isinstance(v, tuple):
            return tuple(self.materialize(x) for x in v)
        if isinstance(v, list):
            return [self.materialize(x) for x in v]
        return v

    def op_span(self, node_id: str) -> Span:
        return self.block.graph.nodes[node_id]["op"].span

    def cluster(self) -> str | None:
        return ".".join(self.prefix) or None

    def module_path(self, label: A.Name | None, type_name: str, span: Span) -> str | None:
        """The module path of a layer step, checking for duplicates."""
        if self.counters:  # inside a named group: Sequential numbering
            index = self.counters[-1]
            self.counters[-1] += 1
        if label is not None:
            local = self.label_text(label)
            if local is ERR:
                return None
        elif self.counters:
            local = str(index)
        else:
            base = snake(type_name.split(".")[-1])
            n = self.anon[base]
            while True:
                local = base if n == 0 else f"{base}_{n}"
                n += 1
                if local not in self.explicit and ".".join(self.prefix + [local]) not in self.paths:
                    break
            self.anon[base] = n
        return self.claim_path(".".join(self.prefix + [local]), span)

    def label_text(self, label: A.Name):
        """A label's text, which must make one part of a module path: a name, or a
        non-negative integer (`0:`, `{i}:`) as nn.Sequential numbers its members. ERR if not."""
        text = self.name_text(label, index_ok=True)
        if text is not ERR and not _PATH_PART.fullmatch(text):
            self.diags.error(f"a label must be a name or a non-negative integer, got '{text}'", label.span)
            return ERR
        return text

    def layer_reporter(self, path: str | None) -> Reporter:
        """Where a layer step reports: inside a loop, its line made several layers, so each
        problem names the layer's path (`proj3: Linear: ...`), once for all iterations."""
        if not self.loops or path is None:
            return self.diags
        return _PathReporter(self, f"{path}: ")

    def claim_path(self, path: str, span: Span) -> str | None:
        """Record a layer (or group) path; None after reporting a duplicate or a Python keyword."""
        bad = keyword_message(path.rsplit(".", 1)[-1])
        if bad:
            self.diags.error(bad, span)
            return None
        if path in self.paths:
            self.diags.error(f"duplicate layer name '{path}' (first defined at {self.paths[path]})", span)
            return None
        self.paths[path] = span
        return path


class _PathReporter:
    def __init__(self, state: BodyState, prefix: str):
        self.state, self.prefix = state, prefix

    def error(self, message: str, span: Span | None, notes=()):
        if (message, span) in self.state.loop_errors:  # the same mistake in another iteration
            return None
        self.state.loop_errors.add((message, span))
        return self.state.diags.error(self.prefix + message, span, notes)

    def warning(self, message: str, span: Span | None, notes=(), **kw):
        return self.state.diags.warning(message, span, notes, **kw)
def _weight(op: Op, elab: Instantiator) -> int:
    """What an op counts against the `layers` limit: a block every layer in it, a module
    with a layer count (LSTM's num_layers: torch builds each) that many, anything else 1."""
    if op.kind == "block" and op.block is not None:
        return elab.size(op.block)
    ldef = REGISTRY.get(op.target) if op.kind == "module" else None
    arg = ldef.extra.get("counts") if ldef is not None else None
    if arg is None:
        return 1
    i = [a.name for a in ldef.schema].index(arg)
    n = op.ctor_args[i] if i < len(op.ctor_args) else op.ctor_kwargs.get(arg, 1)
    return n if isinstance(n, int) and n > 1 else 1


# ---------- what a body binds, read before it runs ----------
def walk(stmts):
    """Every statement, nested ones included, in source order."""
    for s in stmts:
        yield s
        for b in [getattr(s, "body", None), getattr(s, "orelse", None)] + \
                 [b for _, b in getattr(s, "branches", ())]:
            if isinstance(b, tuple):
                yield from walk(b)


def static_names(stmts) -> set[str]:
    """Names bound anywhere in a body (without `{}` holes): targets of forward references."""
    out = set()
    for s in walk(stmts):
        if isinstance(s, A.Step | A.FlowExpr):
            out.update(n.id for n in (s.label, s.bind) if n is not None and len(n.parts) == 1)
        elif isinstance(s, A.Assign):
            out.update(t.id for t in s.targets if len(t.parts) == 1)
        elif isinstance(s, A.Merge) and s.bind is not None and len(s.bind.parts) == 1:
            out.add(s.bind.id)
        elif isinstance(s, A.Input):
            out.add(s.name)
        elif isinstance(s, A.Group) and len(s.label.parts) == 1:
            out.add(s.label.id)
    return out


def labels(stmts) -> set[str]:
    """The labels of every layer step in a body."""
    return {s.label.id for s in walk(stmts) if isinstance(s, A.Step) and s.label is not None}
