"""Evaluating expressions during elaboration.

A value is a compile-time constant (int, float, bool, str, None, tuple/list), a `Ref`
to a graph op (a tensor or a runtime size), a `DimVal` (a symbolic input dim, made
into a `size(x, i)` op the first time it is used), or `ERR` after a reported error —
ERR flows through silently so one mistake gives one message.
"""
from __future__ import annotations

from . import ast as A
from .errors import did_you_mean
from .ir import Ref, SliceVal
from .registry import METHODS, REGISTRY
from .tables import BINARY, COMPARISONS, FOLD, UNARY


class _Err:
    def __repr__(self) -> str:
        return "ERR"


ERR = _Err()



class DimVal:
    """A symbolic dim of an input (`T` in `input idx: long[B, T]`)."""

    __slots__ = ("input", "axis", "symbol", "ref")

    def __init__(self, input_id: str, axis: int, symbol: str):
        self.input, self.axis, self.symbol, self.ref = input_id, axis, symbol, None


def is_const(v) -> bool:
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


class ExprEvaluator:
    """Mixed into the body builder, which provides env, flow, diags, add_op, lookup hooks."""

    def name_text(self, name: A.Name):
        """The text of a (possibly templated) name, or ERR."""
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
            if not (isinstance(v, (int, str)) and not isinstance(v, bool)):
                self.diags.error(f"'{{...}}' in a name must be an integer or a string, got {v!r}", p.span)
                return ERR
            out.append(str(v))
        return "".join(out)

    def ev(self, e):
        meth = getattr(self, "ev_" + type(e).__name__)
        return meth(e)

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
        return self.lookup_value(s, e.span)

    def ev_TupleLit(self, e):
        return tuple(self.ev(x) for x in e.items)

    def ev_ListLit(self, e):
        return [self.ev(x) for x in e.items]

    def ev_Slice(self, e):
        return SliceVal(*(self.ev(x) if x is not None else None for x in (e.lo, e.hi, e.step)))

    def ev_IfExp(self, e):
        c = self.ev(e.cond)
        if c is ERR:
            return ERR
        if not is_const(c):
            self.diags.error("the condition of `a if c else b` must be known at compile time", e.cond.span)
            return ERR
        return self.ev(e.then) if c else self.ev(e.orelse)

    def ev_BoolOp(self, e):
        a = self.ev(e.left)
        if a is ERR:
            return ERR
        if not is_const(a):
            self.diags.error(f"'{e.op}' needs compile-time values", e.span)
            return ERR
        if (e.op == "and" and not a) or (e.op == "or" and a):
            return a
        return self.ev(e.right)

    def ev_Unary(self, e):
        v = self.ev(e.operand)
        if has_err(v):
            return ERR
        if is_const(v):
            try:
                return UNARY[e.op].fn(v)
            except TypeError:
                self.diags.error(f"bad operand for unary '{e.op}': {v!r}", e.span)
                return ERR
        if e.op == "not":
            self.diags.error("'not' needs a compile-time value", e.span)
            return ERR
        return v if e.op == "+" else self.add_call("function", UNARY[e.op].name, (v,), {}, e.span, label=e.op)

    def ev_BinOp(self, e):
        a, b = self.ev(e.left), self.ev(e.right)
        return self.binop(e.op, a, b, e.span)

    def binop(self, op, a, b, span, flow_input=None):
        if has_err(a) or has_err(b):
            return ERR
        name, fn = BINARY[op].name, BINARY[op].fn
        if is_const(a) and is_const(b):
            try:
                return fn(a, b)
            except (TypeError, ZeroDivisionError, ValueError, OverflowError) as ex:
                self.diags.error(f"cannot compute {a!r} {op} {b!r}: {ex}", span)
                return ERR
        return self.add_call("binop", name, (a, b), {}, span, label=op, flow_input=flow_input)

    def ev_Compare(self, e):
        a, b = self.ev(e.left), self.ev(e.right)
        if has_err(a) or has_err(b):
            return ERR
        name, fn = COMPARISONS[e.op].name, COMPARISONS[e.op].fn
        if is_const(a) and is_const(b):
            try:
                return fn(a, b)
            except TypeError as ex:
                self.diags.error(f"cannot compare {a!r} {e.op} {b!r}: {ex}", e.span)
                return ERR
        if name is None:
            self.diags.error(f"'{e.op}' needs compile-time values", e.span)
            return ERR
        return self.add_call("binop", name, (a, b), {}, e.span, label=e.op)

    def ev_Index(self, e):
        if isinstance(e.obj, A.Attr) and e.obj.name == "shape" and len(e.items) == 1:
            obj, i = self.ev(e.obj.obj), self.ev(e.items[0])
            if has_err(obj) or has_err(i):
                return ERR
            return self.add_call("function", "size", (obj, i), {}, e.span, label="size")
        obj = self.ev(e.obj)
        items = tuple(self.ev(x) for x in e.items)
        if has_err(obj) or any(has_err(x) for x in items):
            return ERR
        if is_const(obj) and all(is_const(x) for x in items):
            if len(items) != 1:
                self.diags.error("a list takes one index", e.span)
                return ERR
            try:
                i = items[0]
                return obj[slice(i.lo, i.hi, i.step)] if isinstance(i, SliceVal) else obj[i]
            except (IndexError, TypeError, KeyError) as ex:
                self.diags.error(f"cannot index {obj!r} with {items[0]!r}: {ex}", e.span)
                return ERR
        idx = items[0] if len(items) == 1 else items
        return self.add_call("getitem", "getitem", (obj, idx), {}, e.span, label="[...]")

    def ev_Attr(self, e):
        obj = self.ev(e.obj)
        if has_err(obj):
            return ERR
        if is_const(obj):
            self.diags.error(f"{obj!r} has no attribute '{e.name}'", e.span)
            return ERR
        if e.name in ("T", "mT"):  # the notes' k.T: swap the last two dims
            return self.add_call("function", "transpose", (obj, -2, -1), {}, e.span, label=".T")
        if e.name == "shape":
            return self.add_call("function", "size", (obj,), {}, e.span, label="shape")
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
            return self.call_function(func.name, [(None, obj, func.obj.span)] + self.ev_args(e.args), e.span)
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
                return FOLD[name](*[v for _, v, _ in args])
            except (TypeError, ValueError, OverflowError) as ex:
                self.diags.error(f"{name}(...) failed: {ex}", e.span)
                return ERR
        ldef = REGISTRY.get(name)
        if ldef is not None and ldef.kind == "function":
            return self.call_function(name, args, e.span)
        if ldef is not None or self.find_def(name) is not None:
            self.diags.error(f"'{name}' is a layer: apply it as a step on its own line "
                             f"(`my_name: {name}(...)`, or `{name}(...)(x)` for another input)", func.span)
            return ERR
        cands = [n for n, d in REGISTRY.items() if d.kind == "function"] + list(FOLD)
        self.diags.error(f"unknown function '{name}'{did_you_mean(name, cands)}", func.span)
        return ERR

    def ev_args(self, args):
        return [(a.name, self.ev(a.value), a.span) for a in args]


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
