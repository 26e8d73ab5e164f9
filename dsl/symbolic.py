"""Numbers that remember how they were computed from parameters, for `netspec compile`.

Ejected code should size its layers from the model's parameters (`nn.Linear(n_embd,
3 * n_embd)`), not from the numbers of one setting. So while `tracing()`, each block's
numeric parameters enter its body as a `Sym` (an int) or `SymFloat` (a float): the same
number, carrying the expression that made it from the block's parameters. Arithmetic on
them keeps the expression; everything else in netspec sees the plain number, so the graph,
its checks and its shapes are exactly what they would be. Only inside `spelling(...)` does
`repr` write the expression instead of the number: that is where the ejector writes code.

A parameter that *decides* something (a loop count, a branch, an index, a name) cannot
become an argument of the ejected code, whose layers are written out for that decision:
the places that decide call `decide(value)`, and the parameters behind it are `fixed`.
Asserts only check, so they run under `checking()` and fix nothing. What the trace misses
(a number read through C, say) the ejector catches by generating twice: see
compiler/eject.py.
"""
from __future__ import annotations

import ast
import contextlib
import contextvars
import math
import operator
from collections.abc import Callable

BINARY: dict[str, tuple[Callable, type]] = {
    "+": (operator.add, ast.Add), "-": (operator.sub, ast.Sub), "*": (operator.mul, ast.Mult),
    "/": (operator.truediv, ast.Div), "//": (operator.floordiv, ast.FloorDiv), "%": (operator.mod, ast.Mod),
    "**": (operator.pow, ast.Pow)}
# compile-time functions (dsl/tables.py FOLD) an expression may keep, as ejected code writes them
FUNCTIONS = {"sqrt": "math.sqrt", "exp": "math.exp", "log": "math.log", "sin": "math.sin", "cos": "math.cos",
             "abs": "abs", "min": "min", "max": "max", "int": "int", "float": "float", "round": "round"}


class Trace:
    """What one traced elaboration learned: the parameters that decided something, as
    (owner, name), owner being the id of the BlockGraph whose parameter it is."""

    def __init__(self) -> None:
        self.fixed: set[tuple[int, str]] = set()
        self.checking = 0


_TRACE: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("netspec_trace", default=None)
_SPELLING: contextvars.ContextVar[dict | None] = contextvars.ContextVar("netspec_spelling", default=None)


@contextlib.contextmanager
def tracing():
    """Elaborate with symbolic parameters; yields the Trace."""
    trace = Trace()
    token = _TRACE.set(trace)
    try:
        yield trace
    finally:
        _TRACE.reset(token)


@contextlib.contextmanager
def checking():
    """Comparisons made here only check (an assert): they decide nothing."""
    trace = _TRACE.get()
    if trace is not None:
        trace.checking += 1
    try:
        yield
    finally:
        if trace is not None:
            trace.checking -= 1


@contextlib.contextmanager
def spelling(names: dict[tuple[int, str], str]):
    """Inside, repr() of a symbolic number is its expression, each parameter (owner, name)
    written as `names` says (`n_embd`, `self.n_embd`). A parameter `names` lacks is written
    as its number and recorded in the yielded dict's "missing" set ("used" holds the spelled ones)."""
    missing: set = set()
    token = _SPELLING.set({"names": names, "used": set(), "missing": missing})
    try:
        yield _SPELLING.get()
    finally:
        _SPELLING.reset(token)


def _key(owner: int, name: str) -> str:
    return f"{owner}:{name}"


class _Renamer(ast.NodeTransformer):
    def __init__(self, spelling: dict, values: dict):
        self.spelling, self.values = spelling, values

    def visit_Name(self, node: ast.Name):
        if ":" not in node.id:
            return node
        owner, name = node.id.split(":", 1)
        key = (int(owner), name)
        text = self.spelling["names"].get(key)
        if text is None:
            self.spelling["missing"].add(key)
            return ast.Constant(self.values[key])
        self.spelling["used"].add(key)
        return ast.parse(text, mode="eval").body


class _Symbolic:
    """Shared by Sym and SymFloat: `tree` (an ast expression over parameters named
    "owner:name") and `params` ((owner, name) -> the number each stood for)."""

    tree: ast.expr
    params: dict

    def __repr__(self) -> str:
        spell = _SPELLING.get()
        if spell is None:
            return self._plain_repr()
        return ast.unparse(_Renamer(spell, self.params).visit(_deep(self.tree)))

    def __str__(self) -> str:
        return self._plain_repr()

    def __reduce__(self):
        return (_make, (plain(self), self.tree, self.params))


class Sym(_Symbolic, int):
    def __new__(cls, value, tree=None, params=None):
        obj = int.__new__(cls, value)
        obj.tree = tree if tree is not None else ast.Constant(int(value))
        obj.params = params or {}
        return obj

    def _plain_repr(self) -> str:
        return int.__repr__(self)


class SymFloat(_Symbolic, float):
    def __new__(cls, value, tree=None, params=None):
        obj = float.__new__(cls, value)
        obj.tree = tree if tree is not None else ast.Constant(float(value))
        obj.params = params or {}
        return obj

    def _plain_repr(self) -> str:
        return float.__repr__(self)


def _deep(node):
    """A copy of an expression tree (the renamer rewrites it in place)."""
    if isinstance(node, ast.AST):
        new = type(node)()
        for f, v in ast.iter_fields(node):
            setattr(new, f, [_deep(x) for x in v] if isinstance(v, list) else _deep(v))
        return new
    return node


def _make(value, tree, params):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return value  # inf and nan are written as numbers; no expression makes them
    return (Sym if isinstance(value, int) else SymFloat)(value, tree, params)


def is_symbolic(v) -> bool:
    return isinstance(v, _Symbolic)


def plain(v):
    """The number a (possibly symbolic) value stands for; other values as they are."""
    if isinstance(v, Sym):
        return int(v)
    if isinstance(v, SymFloat):
        return float(v)
    return v


def _tree(v) -> ast.expr:
    if isinstance(v, _Symbolic):
        return _deep(v.tree)
    # a negative number as `-(3)`, so that unparse puts `(-3) ** n` in brackets
    return ast.UnaryOp(ast.USub(), ast.Constant(-v)) if v < 0 else ast.Constant(v)


def _params(*vs) -> dict:
    out: dict = {}
    for v in vs:
        if isinstance(v, _Symbolic):
            out.update(v.params)
    return out


def binary(symbol: str, a, b):
    """a <symbol> b for numbers of which one at least is symbolic."""
    fn, node = BINARY[symbol]
    value = fn(plain(a), plain(b))
    return _make(value, ast.BinOp(_tree(a), node(), _tree(b)), _params(a, b))


def unary(symbol: str, v):
    fn, node = {"-": (operator.neg, ast.USub), "+": (operator.pos, ast.UAdd)}[symbol]
    return _make(fn(plain(v)), ast.UnaryOp(node(), _tree(v)), _params(v))


def call(name: str, args: list, fn: Callable):
    """A compile-time function (FOLD) on numbers, one at least symbolic; a function that
    FUNCTIONS cannot write (range, len) decides on its arguments instead."""
    value = fn(*[plain(a) for a in args])
    if name not in FUNCTIONS or not all(isinstance(a, (int, float)) for a in args):
        decide(*args)
        return value
    path = FUNCTIONS[name].split(".")
    func: ast.expr = ast.Name(path[0], ast.Load())
    for part in path[1:]:
        func = ast.Attribute(func, part, ast.Load())
    return _make(value, ast.Call(func, [_tree(a) for a in args], []), _params(*args))


def local(owner: int, name: str, value):
    """Parameter `name` of the block `owner`, as its body sees it while tracing: symbolic
    when it is a number, else unchanged."""
    if _TRACE.get() is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return value
    return _make(plain(value), ast.Name(_key(owner, name), ast.Load()), {(owner, name): plain(value)})


def decide(*values) -> None:
    """These values chose something the ejected code writes out (a branch, a count): the
    parameters behind them stay fixed."""
    trace = _TRACE.get()
    if trace is None or trace.checking:
        return
    stack = list(values)
    while stack:
        v = stack.pop()
        if isinstance(v, _Symbolic):
            trace.fixed.update(v.params)
        elif isinstance(v, (list, tuple)):
            stack.extend(v)


def _method(symbol: str, reflected: bool):
    def method(self, other):
        if isinstance(other, bool) or not isinstance(other, (int, float)):
            return NotImplemented
        return binary(symbol, other, self) if reflected else binary(symbol, self, other)
    return method


for _symbol, _name in (("+", "add"), ("-", "sub"), ("*", "mul"), ("/", "truediv"), ("//", "floordiv"),
                       ("%", "mod"), ("**", "pow")):
    for _cls in (Sym, SymFloat):
        setattr(_cls, f"__{_name}__", _method(_symbol, False))
        setattr(_cls, f"__r{_name}__", _method(_symbol, True))
for _cls in (Sym, SymFloat):
    _cls.__neg__ = lambda self: unary("-", self)
    _cls.__pos__ = lambda self: self
