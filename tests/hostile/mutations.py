"""Grammar-aware mutations of spec text: what the fuzz tests and `bench/fuzz.py` feed netspec.

A mutation works on the spec's tokens (from `dsl.tokens`, the parser's own lexer) where it
can: a number becomes a boundary value (`2**63`, `10**30`, `1e309`, `2**2**2**2**2**2`),
a name another name (a Python keyword, a reserved word, a layer, a misspelling), a string a
payload (`\"\"\"`, backslashes, `\\N{...}`, control characters), an expression is wrapped a
thousand levels deep; tokens and lines are deleted, repeated, swapped and re-indented;
resource bombs (`repeat 10**9:`, `"a" * 10**10`) are inserted as statements; odd characters
(NUL, form feed, U+2028, a lone CR, a BOM) are dropped in anywhere.

The choices come from a `Chooser`: `random.Random` for the benchmark, a wrapper of
hypothesis' `data.draw` for the tests (so hypothesis can shrink a failing case).

    text = mutate(spec_text, random.Random(7), count=2)
"""
from __future__ import annotations

import keyword
from typing import Protocol

from netspec.dsl.errors import NetspecError
from netspec.dsl.registry import REGISTRY
from netspec.dsl.tokens import Token, keywords, tokenize


class Chooser(Protocol):
    def randrange(self, n: int) -> int: ...


def _pick(r: Chooser, seq):
    return seq[r.randrange(len(seq))]


NUMBERS = ["0", "-1", "1", "2", "3", "7", "64", "1000", "0.5", "-0.0", "1e-320", "2**31", "2**63", "2**64",
           "10**9", "10**30", "99999999999999999999", "1e309", "-1e309", "2**2**2**2**2**2", "10**10**10",
           "10**5000", "9" * 60, "(1, 2)", "[]", "[0] * 10**10", "range(10**12)", "true", "none", '"3"', "inf",
           "-(2**62)", "2**62 * 4", "1 // 0", "1 % 0", "(-8) ** 0.5", "round(5, -10**18)", "int(1e300)",
           "len(range(10**9))", "max(range(10**12))"]
STRINGS = ['"relu"', '""', "'\"\"\"'", '"\'\'\'"', '"\\\\"', '"\\\\N{BULLET}"', '"\\x00"', '"{x}"', '"%s%s%s"',
           '"' + "a" * 5000 + '"', "'\"\"\"; import os; os.system(\"id\"); _ = \"\"\"'", '"\\u2028"',
           '"</script><b>"', '"a\\"b"', "'", '"']
OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "@", "==", "<", "in", "not in", "and", "or", "not", ".", ",",
             ":", "=", "(", ")", "[", "]", "{", "}", "if", "else", "->", "...", ";"]
CHARS = ["\x00", "\f", "\v", "\x85", "\u2028", "\u2029", "\r", "\t", "\ufeff", "\x1b[2J", "\u202e", "é", "😀",
         "\\", "\\\n", "{", "}", "(", "[", ":", "#", "## doc", '"', "'", "\udcff", " " * 9]
BOMBS = ["repeat 10**9:\n    ReLU()", "repeat 2**31:\n    pass", "for i in range(10**9):\n    ReLU()",
         "repeat 1000:\n    repeat 1000:\n        repeat 1000:\n            ReLU()",
         's = "a" * 10**10', "z = [0] * 10**10", "z = range(10**12)", "z = 2**2**2**2**2**2", "z = 10**10**10",
         "repeat 100000:\n    Linear(4, 4)", "z = -" + "(-" * 1000 + "1" + ")" * 1000,
         "z = " + " ** ".join(["2"] * 500), "z = [" * 500 + "]" * 500, "a = [1]\nfor i in range(64):\n    a = [a, a]",
         "q = 1\nfor i in range(200):\n    q = q * 10**50", "repeat -1:\n    pass",
         "assert false, \"" + "m" * 9000 + '"',
         "layer{10**9}: ReLU()", "x{'\"); import os; (\"'}: ReLU()", "class: ReLU()", "z = round(5, -10**18)"]


def _names(tokens: list[Token]) -> list[str]:
    own = sorted({t.text for t in tokens if t.type == "NAME"})
    return own + sorted(keyword.kwlist) + sorted(keywords()) + ["_", "x", "lienar", "Linear", "ReLU", "a{1}",
                                                                 "b{10**9}", "c{'x y'}", "MultiheadAttention",
                                                                 "Parameter", "zeros", "view"] + list(REGISTRY)[:20]


def _offsets(text: str) -> list[int]:
    """Start offset of each line (1-based line n starts at out[n - 1])."""
    out, pos = [0], 0
    while True:
        pos = text.find("\n", pos)
        if pos < 0:
            return out
        pos += 1
        out.append(pos)


def _span(text: str, t: Token, starts: list[int]) -> tuple[int, int]:
    return starts[t.line - 1] + t.col - 1, starts[t.end_line - 1] + t.end_col - 1


# ---- one function per mutation: (text, chooser) -> text ----
def _token_mutation(kinds, make):
    def mutation(text: str, r: Chooser) -> str:
        try:
            tokens = [t for t in tokenize(text) if t.type not in ("NEWLINE", "COMMENT")]
        except NetspecError:
            return insert_char(text, r)
        pick = [t for t in tokens if kinds is None or t.type in kinds]
        if not pick:
            return text
        t = _pick(r, pick)
        start, end = _span(text, t, _offsets(text))
        return text[:start] + make(r, t, tokens) + text[end:]
    return mutation


replace_number = _token_mutation({"NUMBER"}, lambda r, t, ts: _pick(r, NUMBERS))
replace_string = _token_mutation({"STRING"}, lambda r, t, ts: _pick(r, STRINGS))
replace_name = _token_mutation({"NAME"}, lambda r, t, ts: _pick(r, _names(ts)))
replace_operator = _token_mutation(None, lambda r, t, ts: _pick(r, OPERATORS))
delete_token = _token_mutation(None, lambda r, t, ts: "")
duplicate_token = _token_mutation(None, lambda r, t, ts: t.text + " " + t.text)
insert_token = _token_mutation(None, lambda r, t, ts: t.text + " " + _pick(r, ts).text)
nest_expression = _token_mutation({"NUMBER", "NAME"}, lambda r, t, ts: _nest(r, t.text))


def _nest(r: Chooser, inner: str) -> str:
    depth = _pick(r, [3, 30, 99, 150, 1000])
    how = _pick(r, ["-(", "(", "[", "abs(", "f("])
    close = "]" if how == "[" else ")"
    return how * depth + inner + close * depth


def _lines(text: str) -> list[str]:
    return text.split("\n")


def delete_line(text: str, r: Chooser) -> str:
    lines = _lines(text)
    del lines[r.randrange(len(lines))]
    return "\n".join(lines)


def duplicate_line(text: str, r: Chooser) -> str:
    lines = _lines(text)
    i = r.randrange(len(lines))
    times = _pick(r, [1, 2, 50])
    return "\n".join(lines[:i] + [lines[i]] * times + lines[i:])


def swap_lines(text: str, r: Chooser) -> str:
    lines = _lines(text)
    i, j = r.randrange(len(lines)), r.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def reindent_line(text: str, r: Chooser) -> str:
    lines = _lines(text)
    i = r.randrange(len(lines))
    indent = _pick(r, ["", " ", "  ", "    ", "        ", "\t", " \t", "    " * 40])
    lines[i] = indent + lines[i].lstrip()
    return "\n".join(lines)


def insert_bomb(text: str, r: Chooser) -> str:
    """A bomb statement, indented like a body line of the spec."""
    lines = _lines(text)
    body = [i for i, line in enumerate(lines) if line.startswith("    ") and line.strip()
            and not line.strip().startswith("#")]
    i = _pick(r, body) if body else len(lines)
    indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())] if body else "    "
    bomb = "\n".join(indent + b for b in _pick(r, BOMBS).split("\n"))
    return "\n".join(lines[:i] + [bomb] + lines[i:])


def insert_char(text: str, r: Chooser) -> str:
    i = r.randrange(len(text) + 1)
    return text[:i] + _pick(r, CHARS) + text[i:]


def truncate(text: str, r: Chooser) -> str:
    return text[:r.randrange(len(text) + 1)]


MUTATIONS = (replace_number, replace_number, replace_string, replace_name, replace_name, replace_operator,
             delete_token, duplicate_token, insert_token, nest_expression, delete_line, duplicate_line,
             swap_lines, reindent_line, insert_bomb, insert_bomb, insert_char, truncate)


def mutate(text: str, r: Chooser, count: int = 1) -> str:
    """`count` random mutations of `text` (the result always ends with a line break, so it
    is read as spec text, never as a file name)."""
    for _ in range(count):
        text = _pick(r, MUTATIONS)(text, r)
    return text if text.endswith("\n") else text + "\n"
