"""Folding constants without unbounded work: the size of a result is known before it is made.

A spec computes at compile time (`d // heads`, `[d_in] + hidden`, `range(n)`), and Python
would happily compute `"a" * 10**10`, `2**2**2**2**2**2` or `range(10**12)` until memory
runs out. Here every fold checks, before computing, that its result stays within the
limits (dsl/limits.py): integers within `int_bits`, values within `elements` (nested
lists counted in full, shared ones too: `a = [a, a]` doubles) and `depth`. A refused fold
raises `FoldError` with the message the evaluator reports at the expression.

    sizes = Sizes()
    fold_binary(BINARY["*"], "ab", 3, sizes)        -> "ababab"
    fold_binary(BINARY["*"], "a", 10**10, sizes)    -> FoldError('"a" * 10000000000: over the limit ...')
"""
from __future__ import annotations

import reprlib
from collections import OrderedDict
from itertools import compress

from . import limits, symbolic
from .errors import LimitError
from .tables import FOLD, Operator
from .values import nested

_DEEP = frozenset({tuple, list, str})  # items that may count as more than one element


class FoldError(Exception):
    """A fold that is refused (over a limit) or fails (Python's own error, worded)."""


class _Lazy:
    """Text for a message, written only if the message is (a long list is not shown for nothing)."""

    def __init__(self, make):
        self.make = make

    def __str__(self) -> str:
        return self.make()


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _seq(v) -> bool:
    return isinstance(v, (str, list, tuple))


_SHORT = reprlib.Repr()
_SHORT.maxlist = _SHORT.maxtuple = 6
_SHORT.maxstring = _SHORT.maxother = 40
_SHORT.maxlong = 40


def _show(v) -> str:
    """A value in a message: a long list or string shortened (without writing it all out)."""
    return _SHORT.repr(v)


def check_int(v, what) -> None:
    """An integer result over `int_bits` is refused (a torch size is a 64-bit integer)."""
    if _is_int(v) and v.bit_length() > limits.get("int_bits"):
        raise FoldError(limits.message("int_bits", f"{what} is a {v.bit_length():,}-bit integer"))


class Sizes:
    """Measures compile-time values, (elements, depth), without recursion; the last few
    containers measured are remembered (holding them, so an id is never reused while kept),
    so wrapping a large list again and again costs nothing. One per elaboration: it also
    counts the elements every value made adds up to (the `total_elements` limit)."""

    KEEP = 256

    def __init__(self) -> None:
        self.memo: OrderedDict[int, tuple[object, int, int]] = OrderedDict()
        self.made = 0  # elements of the lists, tuples and strings made so far

    def measure(self, v) -> tuple[int, int]:
        """(elements, depth): a scalar is 1 element at depth 0, a string its length, a list or
        tuple 1 plus its items, one level deeper than its deepest item."""
        if isinstance(v, str):
            return max(1, len(v)), 0
        if not isinstance(v, (list, tuple)):
            return 1, 0
        known = self._known(v)
        if known is not None:
            return known
        types = set(map(type, v))
        if not types & _DEEP:  # flat: numbers and the like, counted without a Python loop
            return 1 + len(v), 1 if v else 0
        done: dict[int, tuple[int, int]] = {}
        open_: set[int] = set()  # on the stack: met again below itself would be a cycle
        stack = [(v, False)]
        while stack:
            node, ready = stack.pop()
            if id(node) in done:
                continue
            if not ready and id(node) in open_:
                raise FoldError("a list contains itself")
            open_.add(id(node))
            if ready:
                size, depth = 1 + len(node), 1 if node else 0
                for x in compress(node, map(_DEEP.__contains__, map(type, node))):  # items not 1 element
                    s, d = done[id(x)] if isinstance(x, (list, tuple)) else self.measure(x)
                    size, depth = size + s - 1, max(depth, d + 1)
                done[id(node)] = (size, depth)
                self._remember(node, size, depth)
                continue
            stack.append((node, True))
            for x in nested(node):
                if id(x) not in done:
                    hit = self._known(x)
                    if hit is not None:
                        done[id(x)] = hit
                    else:
                        stack.append((x, False))
        return done[id(v)]

    def _known(self, v):
        hit = self.memo.get(id(v))
        if hit is not None and hit[0] is v:
            self.memo.move_to_end(id(v))
            return hit[1], hit[2]
        return None

    def _remember(self, v, size: int, depth: int) -> None:
        self.memo[id(v)] = (v, size, depth)
        self.memo.move_to_end(id(v))
        if len(self.memo) > self.KEEP:
            self.memo.popitem(last=False)

    def check(self, v, what, span=None):
        """`v` just made, after checking it is within `elements`, `depth` and `int_bits`
        (FoldError if not) and counting it against `total_elements` (LimitError at `span`:
        the elaboration stops, as for too many loop iterations)."""
        if _is_int(v):
            check_int(v, what)
            return v
        if not _seq(v):
            return v
        self.made += len(v)
        if self.made > limits.get("total_elements"):
            raise LimitError("total_elements", f"{what} brings the values made to {self.made:,} elements", span)
        size, depth = self.measure(v)
        if size > limits.get("elements"):
            raise FoldError(limits.message("elements", f"{what} has {size:,} elements"))
        if depth > limits.get("depth"):
            raise FoldError(limits.message("depth", f"{what} nests lists {depth} levels deep"))
        return v

    def size(self, v) -> int:
        return self.measure(v)[0]


def fold_binary(op: Operator, a, b, sizes: Sizes, span=None):
    """a <op> b on constants, refused before it is computed when the result would be too big."""
    what = _Lazy(lambda: f"{_show(a)} {op.symbol} {_show(b)}")
    cap = limits.get("elements")
    if op.symbol == "**" and _is_int(a) and _is_int(b) and b > 0 and abs(a) > 1:
        # |a| ** b >= 2 ** (b * (bits(a) - 1)): refused unread when that is already too big
        if b * (abs(a).bit_length() - 1) > limits.get("int_bits"):
            raise FoldError(limits.message("int_bits", f"{what} is too large an integer"))
    elif op.symbol == "*" and (_seq(a) and _is_int(b) or _is_int(a) and _seq(b)):
        seq, n = (a, b) if _seq(a) else (b, a)
        item = len(seq) if isinstance(seq, str) else sizes.size(seq) - 1
        if n > 0 and n * item > cap:
            raise FoldError(limits.message("elements", f"{what} would have {n * item:,} elements"))
    elif op.symbol == "+" and _seq(a) and _seq(b) and type(a) is type(b):
        if sizes.size(a) + sizes.size(b) > cap:
            raise FoldError(limits.message("elements", f"{what} would have "
                                           f"{sizes.size(a) + sizes.size(b):,} elements"))
    elif op.symbol == "%" and isinstance(a, str):
        raise FoldError(f"cannot compute {what}: '%' does not format strings in netspec")
    numbers = _is_number(a) and _is_number(b)
    if (symbolic.is_symbolic(a) or symbolic.is_symbolic(b)) and not numbers:
        symbolic.decide(a, b)  # `[d] * n`: n decides how many items there are
    try:
        result = symbolic.binary(op.symbol, a, b) if numbers and op.symbol in symbolic.BINARY and \
            (symbolic.is_symbolic(a) or symbolic.is_symbolic(b)) else op.fn(a, b)
    except (TypeError, ZeroDivisionError, ValueError, OverflowError, MemoryError) as ex:
        raise FoldError(f"cannot compute {what}: {ex}") from None
    if isinstance(result, complex):
        raise FoldError(f"cannot compute {what}: the result is a complex number")
    return sizes.check(result, what, span)


def fold_unary(op: Operator, v, sizes: Sizes, span=None):
    if op.symbol == "not":
        symbolic.decide(v)
    try:
        result = op.fn(v)
    except TypeError:
        raise FoldError(f"bad operand for unary '{op.symbol}': {_show(v)}") from None
    return sizes.check(result, _Lazy(lambda: f"{op.symbol}{_show(v)}"), span)


def fold_call(name: str, args: list, sizes: Sizes, span=None):
    """FOLD[name](*args) on constants: range(), round() and the conversions refused before
    they would make something too big."""
    what = _Lazy(lambda: f"{name}({', '.join(_show(a) for a in args)})")
    if name == "range" and args and all(_is_int(a) for a in args):
        try:
            n = len(range(*args))
        except (ValueError, OverflowError) as ex:  # a zero step; more items than a C size holds
            if isinstance(ex, ValueError):
                raise FoldError(f"{name}(...) failed: {ex}") from None
            n = None
        if n is None or n + 1 > limits.get("elements"):
            raise FoldError(limits.message("elements", f"{what} has {'too many' if n is None else f'{n:,}'} "
                                           "elements"))
    if name == "round" and len(args) == 2 and _is_int(args[1]) and abs(args[1]) > 400:
        # round(5, -10**18) would compute 10 ** 10**18
        raise FoldError(f"{what} failed: the digits argument must be between -400 and 400")
    try:
        result = symbolic.call(name, args, FOLD[name]) if any(map(symbolic.is_symbolic, args)) else \
            FOLD[name](*args)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, MemoryError) as ex:
        raise FoldError(f"{name}(...) failed: {ex}") from None
    return sizes.check(result, what, span)
