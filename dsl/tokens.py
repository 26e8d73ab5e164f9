"""The token stream of a spec with its comments and line breaks, for the tools around the
language: the formatter (dsl/format.py), the highlighters' tests and the language server.

The parser loses comments: they ride inside the grammar's newline terminal (`_NL`), which
never reaches the tree. Here the same grammar's lexer runs without the indentation
post-lexer (which also swallows the newlines inside brackets), and every `_NL` is split back
into the line breaks and comments it matched. Lark objects stay inside: a `Token` is plain
data, and its `type` is the grammar's terminal name (NAME, LPAR, COMPOP, IF, ...) or
COMMENT / NEWLINE.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lark import Lark
from lark.exceptions import UnexpectedInput

from .errors import Diagnostic, NetspecError, Source, Span
from .reading import check_lines, check_size


@dataclass(frozen=True)
class Token:
    type: str  # the grammar's terminal name, or COMMENT / NEWLINE
    text: str
    line: int  # 1-based, as spans
    col: int  # 1-based
    end_line: int
    end_col: int  # exclusive

    @property
    def is_keyword(self) -> bool:
        return self.type in _keyword_types()

    @property
    def is_doc(self) -> bool:
        """A `##` doc comment."""
        return self.type == "COMMENT" and self.text.startswith("##")


@lru_cache(maxsize=1)
def _lexer() -> Lark:
    # No post-lexer: the formatter needs the newlines and comments inside brackets too.
    return Lark.open("grammar.lark", rel_to=__file__, parser="lalr", lexer="basic")


@lru_cache(maxsize=1)
def _keyword_types() -> frozenset[str]:
    return frozenset(t.name for t in _lexer().terminals
                     if t.pattern.type == "str" and t.pattern.value.isalpha())


@lru_cache(maxsize=1)
def keywords() -> frozenset[str]:
    """The language's reserved words, read from the grammar (`model`, `input`, `if`, ...)."""
    return frozenset(t.pattern.value for t in _lexer().terminals if t.name in _keyword_types())


@lru_cache(maxsize=1)
def label_words() -> frozenset[str]:
    """The reserved words that may label a layer (`head:`, `output:`): the grammar's `label_word`."""
    lark = _lexer()
    names = {sym.name for r in lark.rules if r.origin.name == "label_word" for sym in r.expansion}
    return frozenset(t.pattern.value for t in lark.terminals if t.name in names)


_NL_PART = re.compile(r"\r?\n|#[^\n]*|[\t ]+")


def tokenize(text: str, file: str = "<string>") -> list[Token]:
    """Every token of `text` in order, comments and line breaks (NEWLINE) included; the
    whitespace between tokens and backslash line continuations are left out. Raises
    NetspecError at a character no token starts with (or an unclosed string), or for text
    over the size and line-length limits (as the parser would)."""
    source = Source(file, text)
    check_size(text, file, source)
    too_long = check_lines(text, source)
    if too_long:
        raise NetspecError(too_long)
    out: list[Token] = []
    try:
        for t in _lexer().lex(text):
            if t.type == "_NL":
                out += _split_newlines(t)
            else:
                out.append(Token(t.type, str(t), t.line, t.column, t.end_line, t.end_column))
    except UnexpectedInput as err:
        raise NetspecError([Diagnostic("error", "unexpected character",
                                       Span(file, err.line, err.column, source=source))]) from None
    return out


def _split_newlines(t) -> list[Token]:
    out, line, col = [], t.line, t.column
    for m in _NL_PART.finditer(str(t)):
        part = m.group()
        if part.endswith("\n"):
            out.append(Token("NEWLINE", part, line, col, line, col + len(part)))
            line, col = line + 1, 1
            continue
        if part.startswith("#"):
            out.append(Token("COMMENT", part, line, col, line, col + len(part)))
        col += len(part)
    return out


def token_at(tokens: list[Token], line: int, col: int) -> Token | None:
    """The code or comment token covering 1-based (line, col), or ending right there
    (a cursor just after a word still names it)."""
    best = None
    for t in tokens:
        if t.type == "NEWLINE" or t.line != line:
            continue
        if t.col <= col < t.end_col:
            return t
        if t.end_col == col:
            best = t
    return best
