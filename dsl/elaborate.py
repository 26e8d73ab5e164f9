"""Elaboration: a block or model definition plus parameter values -> `BlockGraph`.

Statements run in order, threading the *flow* (the value the next step applies to).
Loops unroll, conditionals pick a branch, names with `{i}` holes are filled in;
block instantiations with equal parameters are elaborated once and shared. Every
problem goes to `Diagnostics` with its span, and elaboration carries on, so a user
sees all of them in one run.
"""
from __future__ import annotations

from . import ast as A
from .errors import Diagnostics, Span, did_you_mean
from .exprs import ERR, ExprEvaluator, has_err, is_const
from .ir import BlockGraph
from .tables import CONSTANTS
from .loader import DefEntry, ModuleNamespace, Program  # noqa: F401



def _freeze(v):
    if isinstance(v, list):
        return ("__list__",) + tuple(_freeze(x) for x in v)
    if isinstance(v, tuple):
        return tuple(_freeze(x) for x in v)
    return v


class Elaborator:
    def __init__(self, program: Program, diags: Diagnostics):
        self.program = program
        self.diags = diags
        self.cache: dict[tuple, BlockGraph] = {}
        self.stack: list[tuple[A.Def, Span]] = []

    def model(self, defn: A.Def, overrides: dict) -> BlockGraph | None:
        entry, alias_args = self.resolve(DefEntry(defn, self.program.main))
        if entry is None:
            return None
        known = {p.name for p in entry.defn.params}
        args = list(alias_args)
        for k, v in overrides.items():
            if k not in known:
                self.diags.error(f"model '{defn.name}' has no parameter '{k}'{did_you_mean(k, known)}; "
                                 f"parameters: {', '.join(sorted(known)) or 'none'}", None)
            else:
                args = [a for a in args if a[0] != k] + [(k, v, None)]
        params = self.bind_params(entry, args, defn.span)
        if params is None:
            return None
        return self.instantiate(entry, params, defn.span if defn.alias else None, name=defn.name, kind=defn.kind)

    def resolve(self, entry: DefEntry, seen=()):
        """Follow `model A = B(args)` aliases: (the def with a body, keyword args as new defaults)."""
        d = entry.defn
        if d.alias is None:
            return entry, []
        if d in seen:
            self.diags.error(f"'{d.name}' is defined in terms of itself", d.span)
            return None, []
        ref, args = d.alias
        target = lookup_def(self.program, entry.module, ".".join(n.id for n in ref))
        if not isinstance(target, DefEntry):
            self.diags.error(f"unknown block or model '{'.'.join(n.id for n in ref)}'", ref[0].span)
            return None, []
        base, base_args = self.resolve(target, seen + (d,))
        if base is None:
            return None, []
        scope = _ConstScope(self.diags, {})
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
        scratch = _ConstScope(self.diags, params)
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
        d = entry.defn
        key = (id(d), name, kind, tuple((k, _freeze(v)) for k, v in params.items()))
        if key in self.cache:
            return self.cache[key]
        if any(sd is d for sd, _ in self.stack):
            self.diags.error(f"{d.kind} '{d.name}' instantiates itself", call_span)
            return None
        self.stack.append((d, call_span))
        try:
            doc = d.doc or (entry.module.doc if (kind or d.kind) == "model" else None)
            block = BlockGraph(name or d.name, kind or d.kind, dict(params), d.span, doc=doc)
            _Body(self, entry, block).run()
        finally:
            self.stack.pop()
        self.cache[key] = block
        return block

    def notes(self):
        """'instantiated from' notes for errors inside blocks defined elsewhere."""
        out = []
        for d, span in reversed(self.stack):
            if span is not None:
                out.append((span, f"in {d.kind} '{d.name}' instantiated here"))
        return out


def lookup_def(program: Program, module: A.Module, dotted: str):
    """A DefEntry (or ModuleNamespace) visible as `dotted` in `module`, else None."""
    ns = program.namespaces[module.file]
    parts = dotted.split(".")
    cur = ns.names.get(parts[0])
    for p in parts[1:]:
        cur = cur.names.get(p) if isinstance(cur, ModuleNamespace) else None
    return cur


class _ConstScope(ExprEvaluator):
    """Evaluates parameter defaults: constants only, earlier parameters visible."""

    def __init__(self, diags, env):
        self.diags, self.env = diags, env

    def lookup_value(self, name, span):
        if name in self.env:
            return self.env[name]
        if name in CONSTANTS:
            return CONSTANTS[name]
        self.diags.error(f"undefined name '{name}'{did_you_mean(name, self.env)}", span)
        return ERR

    def add_call(self, *a, **k):
        self.diags.error("parameter defaults must be compile-time values", a[4])
        return ERR

    def call_function(self, name, args, span, **k):
        self.diags.error(f"'{name}' works on tensors; parameter values must be compile-time", span)
        return ERR

    def find_def(self, name):
        return None


class _Diags:
    """Adds 'instantiated here' notes to every error raised inside a block body."""

    def __init__(self, diags: Diagnostics, notes):
        self.d, self.notes = diags, notes

    def error(self, msg, span, notes=()):
        return self.d.error(msg, span, list(notes) + self.notes)

    def warning(self, msg, span, notes=()):
        return self.d.warning(msg, span, list(notes) + self.notes)


from .body import _Body  # noqa: E402  (the statement walker builds on the pieces above)
