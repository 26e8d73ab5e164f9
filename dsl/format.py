"""`netspec fmt`: one canonical layout for specs, computed from the token stream.

The layout, all of it:
- four spaces per indentation level; a comment line takes the level of the code it sits in;
- one space after `,` `;` and a label's or type's `:`, none before; none inside brackets;
  `=` spaced at statement level (`y = x`), hugged inside brackets (`Linear(d, bias=false)`,
  `[B=8, d]`); binary operators spaced (`2 ** i`), signs and merges hugged (`-1`, `+x`,
  `@v`); slices hugged (`x[:, -1]`); a name's `{expr}` holes stay as written;
- code wider than `LINE_LENGTH` (comments do not count) wraps inside its brackets, filling each line and lining continuation lines up after the opening bracket;
  a part with no bracket to wrap in (`assert cond, "message"`) goes on a backslash
  continuation line, indented one level more; trailing commas go, except a one-element
  tuple's;
- trailing comments of a paragraph (lines between blank lines) start in one column, two
  spaces after its widest code line; a line more than `OUTLIER` columns wider than the
  next, or one whose width would push another comment past `LINE_LENGTH`, keeps two
  spaces and the rest align;
- at most one blank line in a row; a blank line around top-level blocks and models with a
  body; none at the start of the file; one newline at its end. Statements keep their lines
  (`a; b` stays one line), so doc comments keep documenting what they documented.

This file reads a spec into statements and comment lines, indents them, spaces them with
blank lines and aligns their comments; dsl/layout.py lays out each statement. Every file
is parsed before and after: a file with syntax errors is reported, not
formatted, and the result must parse to the same AST, docs included (spans aside).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from .errors import Diagnostic, NetspecError, Source, Span
from .layout import INDENT, Layout, Line, drop_trailing_commas
from .parser import parse
from .tokens import Token, tokenize

LINE_LENGTH = 100  # the width of code; comments may run past it
OUTLIER = 20  # a code line this much wider than the next commented one keeps its comment out of the column

_OPEN, _CLOSE = {"LPAR", "LSQB"}, {"RPAR", "RSQB"}
_HEADS = {"BLOCK", "MODEL", "DEFAULT"}


@dataclass
class _Stmt:
    """One logical line of code: its tokens and the comments inside or after it."""
    tokens: list[Token]
    notes: dict[int, list[tuple[str, bool]]]  # token index -> comments after it: (text, on a line of its own)
    width: int  # its original indentation, tabs expanded
    blank: int  # blank lines above it
    level: int = 0

    @property
    def opens_suite(self) -> bool:
        return self.tokens[-1].type == "COLON"

    @property
    def is_def(self) -> bool:
        return self.tokens[0].type in _HEADS


@dataclass
class _Comment:
    """A comment on a line of its own, between statements."""
    text: str
    width: int
    blank: int
    level: int = 0


# ---- reading: tokens -> statements and comment lines ----
def _read(tokens: list[Token], text: str) -> list[_Stmt | _Comment]:
    indents = [len(re.match(r"[ \t]*", line).group().expandtabs(8)) for line in text.split("\n")]
    items: list[_Stmt | _Comment] = []
    cur: _Stmt | None = None
    depth, blank, line_used = 0, 0, False
    for t in tokens:
        if t.type == "NEWLINE":
            if depth == 0 and cur is not None:
                items.append(cur)
                cur = None
            blank += not line_used
            line_used = False
            continue
        own_line = not line_used
        line_used = True
        if t.type == "COMMENT":
            text_ = _comment_text(t.text)
            if cur is not None:
                cur.notes.setdefault(len(cur.tokens) - 1, []).append((text_, own_line))
            else:
                items.append(_Comment(text_, indents[t.line - 1], blank))
                blank = 0
            continue
        if cur is None:
            cur = _Stmt([], {}, indents[t.line - 1], blank)
            blank = 0
        cur.tokens.append(t)
        depth += (t.type in _OPEN) - (t.type in _CLOSE)
    if cur is not None:
        items.append(cur)
    return items


def _comment_text(raw: str) -> str:
    """`#x` -> `# x` and `##x` -> `## x` (the same doc), trailing spaces dropped."""
    raw = raw.rstrip()
    m = re.match(r"(#{1,2})([^#\s])", raw)
    return f"{m.group(1)} {raw[len(m.group(1)):]}" if m else raw


def _levels(items: list[_Stmt | _Comment]) -> None:
    """Indentation levels: statements from the indentation stack (the file parsed, so it is
    consistent); a comment line sits at the deepest level open around it that its own
    indentation reaches, between the levels of the code before and after it."""
    stack, snapshots = [0], []
    for it in items:
        if isinstance(it, _Stmt):
            if it.width > stack[-1]:
                stack.append(it.width)
            while stack[-1] > it.width:
                stack.pop()
            it.level = len(stack) - 1
        snapshots.append(list(stack))
    nxt: _Stmt | None = None
    for i in range(len(items) - 1, -1, -1):
        it = items[i]
        if isinstance(it, _Stmt):
            nxt = it
            continue
        before = snapshots[i]  # the stack after the statement above
        low = nxt.level if nxt else 0
        widths = {lv: w for lv, w in enumerate(before)}
        if nxt is not None:
            widths[nxt.level] = nxt.width
        it.level = max((lv for lv, w in widths.items() if lv >= low and w <= it.width), default=low)


def _blank_lines(items: list[_Stmt | _Comment]) -> None:
    """At most one blank line; none first; one before a top-level definition with a body
    (above its comments) and before the definition after such a body."""
    for it in items:
        it.blank = min(it.blank, 1)
    if items:
        items[0].blank = 0
    prev: _Stmt | None = None
    for i, it in enumerate(items):
        if not isinstance(it, _Stmt):
            continue
        if it.is_def and it.level == 0 and prev is not None and (it.opens_suite or prev.level > 0):
            top = i  # the first of the comment lines directly above it
            while top > 0 and items[top].blank == 0 and isinstance(items[top - 1], _Comment) \
                    and items[top - 1].level == 0:
                top -= 1
            items[top].blank = 1
        prev = it


# ---- trailing comments ----
def _align_comments(lines: list[Line | None], limit: int) -> list[str]:
    """Render lines (None is a blank line), aligning trailing comments per paragraph."""
    out: list[str] = []
    para: list[Line] = []

    def flush():
        cand = [ln for ln in para if ln.comment is not None and not ln.own]
        while len(cand) > 1:
            widths = sorted({len(ln.code) for ln in cand})
            col = widths[-1] + 2
            pushed = any(col + len(ln.comment) > limit >= len(ln.code) + 2 + len(ln.comment) for ln in cand)
            if not pushed and (len(widths) == 1 or widths[-1] - widths[-2] <= OUTLIER):
                break
            cand = [ln for ln in cand if len(ln.code) < widths[-1]]
        col = max((len(ln.code) for ln in cand), default=0) + 2
        aligned = {id(ln) for ln in cand}
        for ln in para:
            if ln.comment is None:
                out.append(ln.code.rstrip())
            elif ln.own:
                out.append(ln.code + ln.comment)
            else:
                out.append(ln.code.ljust(col if id(ln) in aligned else len(ln.code) + 2) + ln.comment)
        para.clear()

    for ln in lines:
        if ln is None:
            flush()
            out.append("")
        else:
            para.append(ln)
    flush()
    return out


# ---- the whole file ----
def format_text(text: str, file: str = "<string>", *, limit: int = LINE_LENGTH) -> str:
    """The canonical layout of a spec. Raises NetspecError for a file that does not parse
    (every syntax error, as `check` reports them)."""
    before = parse(text, file)
    items = _read(tokenize(text, file), text)
    _levels(items)
    _blank_lines(items)
    lines: list[Line | None] = []
    for it in items:
        lines += [None] * it.blank
        if isinstance(it, _Comment):
            lines.append(Line(" " * (INDENT * it.level), it.text, own=True))
        else:
            toks, notes = drop_trailing_commas(it.tokens, it.notes)
            lines += Layout(toks, notes, INDENT * it.level, limit).run()
    out = "\n".join(_align_comments(lines, limit)).rstrip("\n") + "\n"
    if out.strip() == "":
        return ""
    after = parse(out, file)
    if _meaning(after) != _meaning(before):
        raise NetspecError([Diagnostic("error", "netspec fmt would change what this spec means, so it left it "
                                       "as it is; please report this as a bug", Span(file, 1, 1, source=Source(file, text)))])
    return out


def _meaning(node):
    """An AST with its spans left out: equal for two layouts of the same spec."""
    if dataclasses.is_dataclass(node) and not isinstance(node, Span):
        return (type(node).__name__,) + tuple(_meaning(getattr(node, f.name)) for f in dataclasses.fields(node)
                                              if f.name != "file")
    if isinstance(node, (tuple, list)):
        return tuple(_meaning(x) for x in node)
    if isinstance(node, Span):
        return None
    return node


_FENCE = re.compile(r"^```nn[ \t]*\n(.*?)^```", re.S | re.M)


def format_markdown(text: str, file: str = "<string>", *, limit: int = LINE_LENGTH) -> str:
    """Format every ```nn block of a Markdown file; errors point at the file's own lines."""
    def block(m):
        code = m.group(1)
        first = text.count("\n", 0, m.start(1))
        done = format_text("\n" * first + code, file, limit=limit) if code.strip() else code
        return m.group().replace(code, done, 1) if done != code else m.group()
    return _FENCE.sub(block, text)


@dataclass
class FormatResult:
    file: str
    before: str
    after: str
    diagnostics: list[Diagnostic] = field(default_factory=list)  # why it could not be formatted

    @property
    def changed(self) -> bool:
        return not self.diagnostics and self.before != self.after


def format_source(text: str, file: str) -> FormatResult:
    """Format one file's text, by its kind (`.md`: its ```nn blocks; else a spec)."""
    fmt = format_markdown if file.endswith(".md") else format_text
    try:
        return FormatResult(file, text, fmt(text, file))
    except NetspecError as e:
        return FormatResult(file, text, text, e.diagnostics)
