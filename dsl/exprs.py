"""Evaluating expressions during elaboration, through a small explicit interface.

`Evaluator(scope).ev(expr)` computes a value (see dsl/values.py): constants fold,
operations on tensors become graph ops. Everything it needs from where the expression
stands is the `Scope` protocol: what a name means, and how to add an op. A block body
(dsl/state.py) gives tensors; a parameter default (dsl/elaborate.py) gives none.
"""
from __future__ import annotations

from typing import Protocol

from . import ast as A
from . import symbolic
from .errors import Reporter, Span, did_you_mean
from .folding import FoldError, Sizes, fold_binary, fold_call, fold_unary
from .ir import InitSpec, SliceVal
from .registry import METHODS, REGISTRY
from .tables import BINARY, COMPARISONS, FOLD, UNARY
from .values import ERR, LayerPath, has_err, is_const, is_int, is_name


class Scope(Protocol):
    """What an expression needs from where it is evaluated."""

    diags: Reporter

    def bound(self, name: str) -> bool:
        """`name` has a value here (a parameter, a loop variable, a tensor)."""

    def lookup(self, name: str, span: Span):
        """The value of `name`; ERR after reporting that it has none."""

    def is_block(self, name: str) -> bool:
        """`name` is a block or model visible here (so calling it as a function is a mistake)."""

    def is_runtime(self, value) -> bool:
        """`value` is a run-time flag of the module (`training`) that may choose between values."""

    def add_call(self, kind: str, target: str, args: tuple, kwargs: dict, span: Span, *, label: str = "",
                 flow_input: str | None = None, id_hint: str | None = None):
        """A new op computing target(*args, **kwargs): its Ref, or ERR where tensors cannot be."""

    def call_function(self, name: str, args: list, span: Span, *, id_hint: str | None = None,
                      flow_input: str | None = None):
        """Apply the registry function `name` to evaluated (keyword, value, span) arguments."""


class Evaluator:
    def __init__(self, scope: Scope, sizes: Sizes | None = None):
        self.scope = scope
        self.diags = scope.diags
        # compile-time values are checked against the limits as they are made (one per elaboration)
        self.sizes = sizes if sizes is not None else Sizes()

    def checked(self, v, e):
        """A list or tuple just built, within the size limits (else ERR, reported at `e`)."""
        if has_err(v):
            return ERR
        try:
            return self.sizes.check(v, f"this {type(v).__name__}", e.span)
        except FoldError as ex:
            self.diags.error(str(ex), e.span)
            return ERR

    def ev(self, e):
        return getattr(self, "ev_" + type(e).__name__)(e)

    def name_text(self, name: A.Name, index_ok: bool = False):
        """The text of a (possibly templated) name, `layer{i + 1}` -> "layer2", or ERR.
        `index_ok`: a label, which the caller checks (it may also be a number: `{i}:` -> "0")."""
        if len(name.parts) == 1 and isinstance(name.parts[0], str):
            return name.parts[0]
        out = []
        for p in name.parts:
            if isinstance(p, str):
                out.append(p)
                continue
            v = self.ev(p)
            if v is ERR:
                return ERR
            if not (isinstance(v, str) or is_int(v)):
                self.diags.error(f"'{{...}}' in a name must be an integer or a string, got {v!r}", p.span)
                return ERR
            symbolic.decide(v)
            out.append(str(v))
        text = "".join(out)
        if not (index_ok or is_name(text)):  # names become module paths, Python attributes, diagram ids
            self.diags.error(f"'{name.id}' makes {text[:80]!r}, which is not a name (letters, digits and '_', "
                             "not starting with a digit)", name.span)
            return ERR
        return text

    def ev_args(self, args: tuple[A.Arg, ...], own: frozenset = frozenset()) -> list:
        """Call arguments as (keyword or None, value, span). `init=` and `tie=` name an
        initializer and a layer, unless the callee has an argument of that name (`own`)."""
        out = []
        for a in args:
            if a.name in own:
                v = self.ev(a.value)
            elif a.name in ("init", "bias_init"):
                v = self.ev_init(a.value)
            elif a.name == "tie":
                v = self.ev_path(a.value)
            else:
                v = self.ev(a.value)
            out.append((a.name, v, a.span))
        return out

    def ev_init(self, e):
        """init=normal(0.02) names an initializer; its arguments are ordinary expressions."""
        if isinstance(e, A.Name) and len(e.parts) == 1 and not self.scope.bound(e.id):
            return InitSpec(e.id)
        if isinstance(e, A.Call) and isinstance(e.func, A.Name):
            args = [(a.name, self.ev(a.value)) for a in e.args]
            if any(has_err(v) or not is_const(v) for _, v in args):
                return ERR
            return InitSpec(e.func.id, tuple(v for k, v in args if k is None),
                            tuple(sorted((k, v) for k, v in args if k is not None)))
        return self.ev(e)

    def ev_path(self, e):
        """tie=transformer.wte names a layer by its path (`tie="features.0"` when it is numbered)."""
        if isinstance(e, A.String):
            return LayerPath(e.value)
        parts = []
        while isinstance(e, A.Attr):
            parts.append(e.name)
            e = e.obj
        if isinstance(e, A.Name):
            n = self.name_text(e)
            if n is ERR:
                return ERR
            return LayerPath(".".join([n] + parts[::-1]))
        self.diags.error("tie= takes the name of a layer in this block, e.g. tie=transformer.wte", e.span)
        return ERR

    # ---------- one method per expression node ----------
    def ev_Number(self, e):
        return e.value

    def ev_String(self, e):
        return e.value

    def ev_EllipsisLit(self, e):
        return Ellipsis

    def ev_Name(self, e):
        s = self.name_text(e)
        if s is ERR:
            return ERR
        return self.scope.lookup(s, e.span)

    def ev_TupleLit(self, e):
        return self.checked(tuple(self.ev(x) for x in e.items), e)

    def ev_ListLit(self, e):
        return self.checked([self.ev(x) for x in e.items], e)

    def ev_Slice(self, e):
        return SliceVal(*(self.ev(x) if x is not None else None for x in (e.lo, e.hi, e.step)))

    def ev_IfExp(self, e):
        c = self.ev(e.cond)
        if c is ERR:
            return ERR
        if self.scope.is_runtime(c):  # `x * mask if training else x`: both computed, one chosen when run
            then, orelse = self.ev(e.then), self.ev(e.orelse)
            if has_err(then) or has_err(orelse):
                return ERR
            return self.scope.add_call("select", "select", (c, then, orelse), {}, e.span, label="if training")
        if not is_const(c):
            self.diags.error("the condition of `a if c else b` must be known at compile time "
                             "(or be `training`)", e.cond.span)
            return ERR
        symbolic.decide(c)
        return self.ev(e.then) if c else self.ev(e.orelse)

    def ev_BoolOp(self, e):
        a = self.ev(e.left)
        if a is ERR:
            return ERR
        if not is_const(a):
            self.diags.error(f"'{e.op}' needs compile-time values", e.span)
            return ERR
        symbolic.decide(a)
        if (e.op == "and" and not a) or (e.op == "or" and a):
            return a
        return self.ev(e.right)

    def ev_Unary(self, e):
        v = self.ev(e.operand)
        if has_err(v):
            return ERR
        op = UNARY[e.op]
        if is_const(v):
            try:
                return fold_unary(op, v, self.sizes, e.span)
            except FoldError as ex:
                self.diags.error(str(ex), e.span)
                return ERR
        if e.op == "+":  # +x is x
            return v
        if op.name is None:
            self.diags.error(f"'{e.op}' needs a compile-time value", e.span)
            return ERR
        return self.scope.add_call("function", op.name, (v,), {}, e.span, label=e.op)

    def ev_BinOp(self, e):
        a, b = self.ev(e.left), self.ev(e.right)
        return self.binop(e.op, a, b, e.span)

    def binop(self, symbol: str, a, b, span: Span, flow_input: str | None = None):
        """a <symbol> b: folded when both are constants, else a binop op."""
        if has_err(a) or has_err(b):
            return ERR
        op = BINARY[symbol]
        if is_const(a) and is_const(b):
            try:
                return fold_binary(op, a, b, self.sizes, span)
            except FoldError as ex:
                self.diags.error(str(ex), span)
                return ERR
        return self.scope.add_call("binop", op.name, (a, b), {}, span, label=symbol, flow_input=flow_input)

    def ev_Compare(self, e):
        a, b = self.ev(e.left), self.ev(e.right)
        if has_err(a) or has_err(b):
            return ERR
        op = COMPARISONS[e.op]
        if is_const(a) and is_const(b):
            symbolic.decide(a, b)
            try:
                return op.fn(a, b)
            except TypeError as ex:
                self.diags.error(f"cannot compare {a!r} {e.op} {b!r}: {ex}", e.span)
                return ERR
        if op.name is None:
            self.diags.error(f"'{e.op}' needs compile-time values", e.span)
            return ERR
        return self.scope.add_call("binop", op.name, (a, b), {}, e.span, label=e.op)

    def ev_Index(self, e):
        if isinstance(e.obj, A.Attr) and e.obj.name == "shape" and len(e.items) == 1:
            obj, i = self.ev(e.obj.obj), self.ev(e.items[0])
            if has_err(obj) or has_err(i):
                return ERR
            return self.scope.add_call("function", "size", (obj, i), {}, e.span, label="size")
        obj = self.ev(e.obj)
        items = tuple(self.ev(x) for x in e.items)
        if has_err(obj) or any(has_err(x) for x in items):
            return ERR
        if is_const(obj) and all(is_const(x) for x in items):
            if len(items) != 1:
                self.diags.error("a list takes one index", e.span)
                return ERR
            symbolic.decide(items[0].lo, items[0].hi, items[0].step) if isinstance(items[0], SliceVal) \
                else symbolic.decide(items[0])
            try:
                i = items[0]
                return obj[slice(i.lo, i.hi, i.step)] if isinstance(i, SliceVal) else obj[i]
            except (IndexError, TypeError, KeyError) as ex:
                self.diags.error(f"cannot index {obj!r} with {items[0]!r}: {ex}", e.span)
                return ERR
        idx = items[0] if len(items) == 1 else items
        return self.scope.add_call("getitem", "getitem", (obj, idx), {}, e.span, label="[...]")

    def ev_Attr(self, e):
        obj = self.ev(e.obj)
        if has_err(obj):
            return ERR
        if is_const(obj):
            self.diags.error(f"{obj!r} has no attribute '{e.name}'", e.span)
            return ERR
        if e.name in ("T", "mT"):  # the notes' k.T: swap the last two dims
            return self.scope.add_call("function", "transpose", (obj, -2, -1), {}, e.span, label=".T")
        if e.name == "shape":
            return self.scope.add_call("function", "size", (obj,), {}, e.span, label="shape")
        if e.name in METHODS:
            self.diags.error(f"'{e.name}' is a method: write {e.name}(...)", e.span)
        else:
            self.diags.error(f"tensors have no attribute '{e.name}'"
                             f"{did_you_mean(e.name, list(METHODS) + ['T', 'shape'])}", e.span)
        return ERR

    def ev_Call(self, e):
        func = e.func
        if isinstance(func, A.Attr):  # a method: x.view(B, T, C)
            obj = self.ev(func.obj)
            if has_err(obj):
                return ERR
            if func.name not in METHODS:
                self.diags.error(f"unknown method '{func.name}'{did_you_mean(func.name, METHODS)}", func.span)
                return ERR
            return self.scope.call_function(func.name, [(None, obj, func.obj.span)] + self.ev_args(e.args), e.span)
        if not isinstance(func, A.Name):
            self.diags.error("only functions can be called here", e.span)
            return ERR
        name = self.name_text(func)
        if name is ERR:
            return ERR
        args = self.ev_args(e.args)
        if any(has_err(v) for _, v, _ in args):
            return ERR
        if name in FOLD and all(is_const(v) for _, v, _ in args) and all(k is None for k, _, _ in args):
            try:
                return fold_call(name, [v for _, v, _ in args], self.sizes, e.span)
            except FoldError as ex:
                self.diags.error(str(ex), e.span)
                return ERR
        ldef = REGISTRY.get(name)
        if ldef is not None and ldef.kind == "function":
            return self.scope.call_function(name, args, e.span)
        if ldef is not None or self.scope.is_block(name):
            self.diags.error(f"'{name}' is a layer: apply it as a step on its own line "
                             f"(`my_name: {name}(...)`, or `{name}(...)(x)` for another input)", func.span)
            return ERR
        cands = [n for n, d in REGISTRY.items() if d.kind == "function"] + list(FOLD)
        self.diags.error(f"unknown function '{name}'{did_you_mean(name, cands)}", func.span)
        return ERR
