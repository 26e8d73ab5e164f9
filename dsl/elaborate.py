"""Elaboration: a block or model definition plus parameter values -> `BlockGraph`.

The `Elaborator` owns instantiation: it matches arguments to parameters, follows `model
A = B(args)` aliases, elaborates each distinct instantiation once (equal parameters share
one BlockGraph), and remembers where each was instantiated, for the notes of problems
inside it. The body itself runs in dsl/statements.py. Every problem goes to
`Diagnostics` with its span and elaboration carries on, so a user sees all of them in
one run; the structural checks run afterwards, over `instances` (dsl/frontend.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ast as A
from . import limits
from .errors import Diagnostics, LimitError, Reporter, Span, did_you_mean
from .exprs import Evaluator
from .folding import Sizes
from .ir import BlockGraph
from .loader import DefEntry, Program
from .state import BodyState
from .statements import run_body
from .tables import CONSTANTS
from .values import ERR, format_value, has_err, is_const, nested


def _freeze(v):
    if isinstance(v, (list, tuple)):
        flat = next(nested(v), None) is None  # a long flat list is copied at C speed
        items = tuple(v) if flat else tuple(_freeze(x) for x in v)
        return ("__list__",) + items if isinstance(v, list) else items
    return v


@dataclass
class Instance:
    """One distinct BlockGraph an elaboration made."""

    block: BlockGraph
    notes: list[tuple[Span, str]]  # where it was instantiated ("in block 'B' instantiated here")
    had_errors: bool  # errors were reported while elaborating it (checks skip their echoes)


class Elaborator:
    def __init__(self, program: Program, diags: Diagnostics):
        self.program = program
        self.diags = diags
        self.cache: dict[tuple, BlockGraph] = {}
        self.stack: list[tuple[A.Def, Span | None]] = []  # the instantiations under way, outermost first
        self.instances: list[Instance] = []  # every distinct BlockGraph made, inner blocks first
        self.iterations = 0  # loop iterations run so far, all bodies together (the `iterations` limit)
        self.sizes: dict[int, int] = {}  # id(BlockGraph) -> its layers and ops, every nested instance counted
        self.values = Sizes()  # every compile-time value of this elaboration, measured and counted

    def spend_iterations(self, n: int, what: str, span: Span) -> None:
        """Count a loop's `n` iterations before running them; LimitError when over the limit."""
        if self.iterations + n > limits.get("iterations"):
            raise LimitError("iterations", what if not self.iterations else
                             f"{what} (after {self.iterations:,} others)", span)
        self.iterations += n

    def size(self, block: BlockGraph) -> int:
        """The layers and ops of an elaborated block, every nested instance counted."""
        return self.sizes.get(id(block), 1)

    def model(self, defn: A.Def, overrides: dict) -> BlockGraph | None:
        """The BlockGraph of model `defn` of the main file, with `overrides` (--set) applied."""
        entry, alias_args = self.resolve(DefEntry(defn, self.program.main))
        if entry is None:
            return None
        known = {p.name for p in entry.defn.params}
        args = list(alias_args)
        fits = True
        for k, v in overrides.items():
            if k not in known:
                self.diags.error(f"model '{defn.name}' has no parameter '{k}'{did_you_mean(k, known)}; "
                                 f"parameters: {', '.join(sorted(known)) or 'none'}", None)
            elif self._override_fits(defn, entry, alias_args, k, v):
                args = [a for a in args if a[0] != k] + [(k, v, None)]
            else:
                fits = False
        if not fits:  # one error per bad flag, not one per use of its parameter
            return None
        params = self.bind_params(entry, args, defn.span)
        if params is None:
            return None
        return self.instantiate(entry, params, defn.span if defn.alias else None, name=defn.name, kind=defn.kind)

    def _override_fits(self, defn: A.Def, entry: DefEntry, alias_args, key: str, value) -> bool:
        """A `--set` word that is no value (`d=abc` is the string 'abc') fits only a parameter
        whose default is a string or unknown; else one error names the flag and the default."""
        if not isinstance(value, str):
            return True
        default = next((v for k, v, _ in alias_args if k == key), None)
        if default is None:
            param = next(p for p in entry.defn.params if p.name == key)
            if param.default is not None:
                default = const_value(param.default, Diagnostics())  # defaults using others: unknown (ERR)
        kinds = ((bool, "true or false"), ((int, float), "a number"), ((list, tuple), "a list"))
        wanted = next((what for t, what in kinds if isinstance(default, t) and default is not ERR), None)
        if wanted is None:
            return True
        self.diags.error(f"--set {key}={value}: parameter '{key}' of model '{defn.name}' takes {wanted} "
                         f"(default {format_value(default)}), got '{value}'", None)
        return False

    def resolve(self, entry: DefEntry, seen=()):
        """Follow `model A = B(args)` aliases: (the def with a body, keyword args as new defaults)."""
        d = entry.defn
        if d.alias is None:
            return entry, []
        if d in seen:
            self.diags.error(f"'{d.name}' is defined in terms of itself", d.span)
            return None, []
        ref, args = d.alias
        target = self.program.lookup(entry.module, ".".join(n.id for n in ref))
        if not isinstance(target, DefEntry):
            self.diags.error(f"unknown block or model '{'.'.join(n.id for n in ref)}'", ref[0].span)
            return None, []
        base, base_args = self.resolve(target, seen + (d,))
        if base is None:
            return None, []
        scope = Evaluator(ConstScope(self.diags, {}), self.values)
        mine = []
        for a in args:
            if a.name is None:
                self.diags.error(f"'{d.name} = {base.defn.name}(...)' takes keyword arguments (name=value)", a.span)
                return None, []
            v = scope.ev(a.value)
            if v is ERR:
                return None, []
            mine.append((a.name, v, a.span))
        names = {k for k, _, _ in mine}
        return base, [a for a in base_args if a[0] not in names] + mine

    def bind_params(self, entry: DefEntry, args, call_span) -> dict | None:
        """Match call arguments to a def's parameters; defaults may use earlier parameters."""
        d = entry.defn
        names = [p.name for p in d.params]
        given: dict[str, object] = {}
        ok = True
        pos = [(v, s) for k, v, s in args if k is None]
        if len(pos) > len(names):
            self.diags.error(f"{d.kind} '{d.name}' takes {len(names)} argument(s) ({', '.join(names)}), "
                             f"got {len(pos)}", pos[len(names)][1] or call_span)
            ok = False
        for (v, s), n in zip(pos, names):
            given[n] = v
        for k, v, s in args:
            if k is None:
                continue
            if k not in names:
                self.diags.error(f"{d.kind} '{d.name}' has no parameter '{k}'{did_you_mean(k, names)}",
                                 s or call_span)
                ok = False
            elif k in given and s is not None:
                self.diags.error(f"'{k}' given twice", s)
                ok = False
            else:
                given[k] = v
        if any(has_err(v) for v in given.values()):
            return None
        for k, v in given.items():
            if not is_const(v):
                self.diags.error(f"argument '{k}' of {d.kind} '{d.name}' must be known at compile time "
                                 f"(block parameters are numbers, strings, lists; tensors flow in as inputs)",
                                 call_span)
                ok = False
        if not ok:
            return None
        params: dict = {}
        scratch = Evaluator(ConstScope(self.diags, params), self.values)
        for p in d.params:
            if p.name in given:
                params[p.name] = given[p.name]
            elif p.default is not None:
                v = scratch.ev(p.default)
                if v is ERR:
                    return None
                params[p.name] = v
            else:
                self.diags.error(f"{d.kind} '{d.name}' missing required argument '{p.name}'", call_span or p.span)
                return None
        return params

    def instantiate(self, entry: DefEntry, params: dict, call_span: Span | None, *, name: str | None = None,
                    kind: str | None = None) -> BlockGraph | None:
        """The BlockGraph of `entry` with these parameters; elaborated the first time only."""
        d = entry.defn
        key = (id(d), name, kind, tuple((k, _freeze(v)) for k, v in params.items()))
        if key in self.cache:
            return self.cache[key]
        if any(sd is d for sd, _ in self.stack):
            self.diags.error(f"{d.kind} '{d.name}' instantiates itself", call_span)
            return None
        if len(self.stack) >= limits.get("nesting"):  # each level is Python recursion
            raise LimitError("nesting", f"{d.kind} '{d.name}' is instantiated {len(self.stack)} blocks deep",
                             call_span or d.span)
        self.stack.append((d, call_span))
        errors_before = self.diags.error_count
        try:
            doc = d.doc or (entry.module.doc if (kind or d.kind) == "model" else None)
            block = BlockGraph(name or d.name, kind or d.kind, dict(params), d.span, doc=doc)
            notes = self.notes()
            body = BodyState.start(self, entry, block, self.diags.with_notes(notes))
            run_body(body)
        finally:
            self.stack.pop()
        self.sizes[id(block)] = body.size
        self.cache[key] = block
        self.instances.append(Instance(block, notes, self.diags.error_count != errors_before))
        return block

    def notes(self) -> list[tuple[Span, str]]:
        """'instantiated here' notes for errors inside blocks defined elsewhere."""
        out = []
        for d, span in reversed(self.stack):
            if span is not None:
                out.append((span, f"in {d.kind} '{d.name}' instantiated here"))
        return out


class ConstScope:
    """Where parameter defaults and alias arguments are evaluated: constants only, the
    parameters bound so far visible, no tensors."""

    def __init__(self, diags: Reporter, env: dict):
        self.diags, self.env = diags, env

    def bound(self, name: str) -> bool:
        return name in self.env

    def lookup(self, name: str, span: Span):
        if name in self.env:
            return self.env[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        self.diags.error(f"undefined name '{name}'{did_you_mean(name, self.env)}", span)
        return ERR

    def is_block(self, name: str) -> bool:
        return False

    def is_runtime(self, value) -> bool:
        return False

    def add_call(self, kind, target, args, kwargs, span, **_):
        self.diags.error("parameter defaults must be compile-time values", span)
        return ERR

    def call_function(self, name, args, span, **_):
        self.diags.error(f"'{name}' works on tensors; parameter values must be compile-time", span)
        return ERR


def const_value(expr: A.Expr, diags: Reporter, env: dict | None = None):
    """A compile-time expression's value (`--set` values, parameter defaults), or ERR."""
    return Evaluator(ConstScope(diags, env if env is not None else {})).ev(expr)
