"""Laying out one statement for `netspec fmt` (dsl/format.py): the spaces between its
tokens, and its wrapping into lines inside brackets when it is wider than the limit.

A statement comes as its tokens (comments left out) and the comments that follow some of
them, `notes`: token index -> [(text, on a line of its own)]. A comment forces a line break
after its token, so comments stay with the code they were written after.
"""
from __future__ import annotations

from dataclasses import dataclass

from .tokens import Token

INDENT = 4  # spaces per level; a part continued with a backslash goes one level deeper

_OPEN, _CLOSE = {"LPAR": "RPAR", "LSQB": "RSQB"}, {"RPAR", "RSQB"}
_OPERAND_END = {"NAME", "NUMBER", "STRING", "RPAR", "RSQB"}  # tokens a value can end with; and "..."
_SIGNS = {"ADDOP", "MULOP"}  # unary where no operand precedes (a sign, or a merge at line start)


@dataclass
class Line:
    """One output line: code, and the comment after it (aligned by dsl/format.py)."""
    code: str
    comment: str | None = None
    own: bool = False  # the comment is alone on its line (not aligned)


# ---- spacing ----
def _gaps(toks: list[Token]) -> list[str]:
    """The space before each token of a logical line ("" before the first)."""
    gaps, depth, unary = [""], 0, False
    for i in range(1, len(toks)):
        p, t = toks[i - 1], toks[i]
        depth += (p.type in _OPEN) - (p.type in _CLOSE)
        p_unary, unary = unary, t.type in _SIGNS and not _ends_operand(p)
        if t.type in _CLOSE or t.type in ("COMMA", "SEMICOLON", "DOT", "COLON"):
            gap = ""
        elif p.type in _OPEN or p.type == "DOT" or p_unary:
            gap = ""
        elif p.type == "COLON":
            gap = "" if depth else " "  # a slice, or a label / type / header colon
        elif "EQUAL" in (p.type, t.type):
            gap = "" if depth else " "
        elif t.type in _OPEN and _ends_operand(p):
            gap = ""  # a call or an index
        else:
            gap = " "
        gaps.append(gap)
    return gaps


def _ends_operand(t: Token) -> bool:
    return t.type in _OPERAND_END or t.text == "..."


def _first_unary(toks: list[Token]) -> bool:
    return bool(toks) and toks[0].type in _SIGNS


def _texts(toks: list[Token]) -> list[str]:
    return [t.text for t in toks]  # a name's `{expr}` holes stay as written: they are part of its text


def drop_trailing_commas(toks: list[Token], notes: dict) -> tuple[list[Token], dict]:
    """`f(a, b,)` -> `f(a, b)`; a one-element tuple `(x,)` keeps its comma."""
    keep, moved = [], {}
    stack: list[tuple[int, int]] = []  # (index in keep of an open bracket, items seen)
    for i, t in enumerate(toks):
        if t.type == "COMMA" and i + 1 < len(toks) and toks[i + 1].type in _CLOSE:
            o = keep[stack[-1][0]]
            call = stack[-1][0] > 0 and _ends_operand(keep[stack[-1][0] - 1])
            if o.type == "LSQB" or call or stack[-1][1] > 0:
                if i in notes:  # its comments move to the token before it
                    moved.setdefault(len(keep) - 1, []).extend(notes[i])
                continue
        if t.type == "COMMA" and stack:
            stack[-1] = (stack[-1][0], stack[-1][1] + 1)
        if i in notes:
            moved.setdefault(len(keep), []).extend(notes[i])
        keep.append(t)
        if t.type in _OPEN:
            stack.append((len(keep) - 1, 0))
        elif t.type in _CLOSE:
            stack.pop()
    return keep, moved


# ---- wrapping ----
class Layout:
    """Lays out one logical line into physical lines, wrapping inside brackets."""

    def __init__(self, toks: list[Token], notes: dict, indent: int, limit: int):
        self.toks, self.notes, self.limit = toks, notes, limit
        self.texts = _texts(self.toks)
        self.gaps = _gaps(self.toks)
        if _first_unary(self.toks) and len(self.toks) > 1:
            self.gaps[1] = ""  # a merge hugs its operand: +x
        self.match = _matches(self.toks)
        self.lines = [Line(" " * indent)]
        self.pending: int | None = None  # the column the next token starts a new line at

    def run(self) -> list[Line]:
        n, indent = len(self.toks), len(self.lines[0].code)
        parts = _items(self.toks, self.match, 0, n)
        if len(parts) == 1 or self._fits(0, n) or self._noted(0, n - 1):
            self._walk(0, n, indent)
            return self.lines
        for i, (s, e) in enumerate(parts):  # `a, b = ...`, `assert c, "message"`, `from m import a, b`
            bracketed = any(self.toks[k].type in _OPEN for k in range(s, e))
            if i and not bracketed and not self._fits(s, e):
                self.lines[-1].code += " \\"
                self.pending = indent + INDENT
            self._walk(s, e, indent + INDENT)
        return self.lines

    # -- measuring --
    def _col(self) -> int:
        return len(self.lines[-1].code)

    def _width(self, a: int, b: int, at_start: bool) -> int:
        return sum(len(self.texts[k]) + (0 if k == a and at_start else len(self.gaps[k])) for k in range(a, b))

    def _fits(self, a: int, b: int, extra: int = 0) -> bool:
        at_start = self.pending is not None
        col = self.pending if at_start else self._col()
        return col + self._width(a, b, at_start) + extra <= self.limit

    def _noted(self, a: int, b: int) -> bool:
        return any(k in self.notes for k in range(a, b))

    def _tail(self, k: int, end: int) -> int:
        """Width of the tokens after a closing bracket up to the next chance to break: an
        opening bracket, or just after a comma."""
        j = k
        while j < end and self.toks[j].type not in _OPEN:
            j += 1
            if self.toks[j - 1].type == "COMMA":
                break
        return self._width(k, j, False) if j > k else 0

    # -- emitting --
    def _emit(self, k: int, align: int) -> None:
        if self.pending is not None:
            self.lines.append(Line(" " * self.pending))
            self.pending = None
            self.lines[-1].code += self.texts[k]
        else:
            self.lines[-1].code += self.gaps[k] + self.texts[k]
        for text, own in self.notes.get(k, ()):
            if own or self.lines[-1].comment is not None:
                self.lines.append(Line(" " * align, text, own=True))
            else:
                self.lines[-1].comment = text
            self.pending = align

    def _emit_flat(self, a: int, b: int, align: int) -> None:
        for k in range(a, b):
            self._emit(k, align)

    def _walk(self, a: int, b: int, align: int) -> None:
        k = a
        while k < b:
            m = self.match.get(k)
            if m is None or m >= b:
                self._emit(k, align)
                k += 1
                continue
            if not self._noted(k, m) and self._fits(k, m + 1, self._tail(m + 1, b)):
                self._emit_flat(k, m + 1, align)
            else:
                self._wrap(k, m)
            k = m + 1

    def _wrap(self, o: int, m: int) -> None:
        """Brackets o..m, their items filling lines aligned after the opening bracket."""
        self._emit(o, self._col() + len(self.gaps[o]) + 1 if self.pending is None else self.pending + 1)
        inner = len(self.lines[-1].code) if self.pending is None else self.pending
        items = _items(self.toks, self.match, o + 1, m)
        tail = len(self.texts[m]) + self._tail(m + 1, len(self.toks))
        for n, (s, e) in enumerate(items):
            extra = tail if n == len(items) - 1 else 0
            if self.pending is None and not self._noted(s, e - 1) and self._fits(s, e, extra):
                self._emit_flat(s, e, inner)
                continue
            if self.pending is None and self._col() > inner:
                self.pending = inner  # start the item on a line of its own
            if not self._noted(s, e - 1) and self._fits(s, e, extra):
                self._emit_flat(s, e, inner)
            else:
                self._walk(s, e, inner)
        self._emit(m, inner)


def _matches(toks: list[Token]) -> dict[int, int]:
    out, stack = {}, []
    for i, t in enumerate(toks):
        if t.type in _OPEN:
            stack.append(i)
        elif t.type in _CLOSE:
            out[stack.pop()] = i
    return out


def _items(toks, match, a: int, b: int) -> list[tuple[int, int]]:
    """The comma-separated items of brackets' contents a..b; each keeps its comma."""
    items, s, k = [], a, a
    while k < b:
        if k in match:
            k = match[k] + 1
            continue
        if toks[k].type == "COMMA":
            items.append((s, k + 1))
            s = k + 1
        k += 1
    if s < b:
        items.append((s, b))
    return items
