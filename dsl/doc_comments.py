"""Doc comments: a `## text` block above a statement (or at the end of one of its lines: a
statement may span lines) documents it; a `##` block opening a body documents the block; one
at the top of a file, followed by a blank line, documents the file. Found by line from the
text, then attached to the AST. Where a statement's lines break does not matter, so
`netspec fmt` can rewrap a statement without moving its doc.
"""
from __future__ import annotations

import dataclasses

from . import ast as A


def _doc_map(text: str) -> tuple[dict[int, str], str | None, dict[int, int], dict[int, str]]:
    lines = text.split("\n")
    docs: dict[int, str] = {}
    trailing_docs: dict[int, str] = {}  # line -> the `##` comment at its end
    starts: dict[int, int] = {}  # statement line -> first line of its `##` block
    pending: list[str] = []
    top: list[str] | None = None
    for n, raw in enumerate(lines, 1):
        s = raw.strip()
        if s.startswith("##"):
            if not pending:
                start = n
            pending.append(s[2:].strip())
            continue
        if not s or s.startswith("#"):
            if not s and pending and top is None and not docs:
                top = pending  # a `##` block followed by a blank line documents the file
            pending = [] if not s else pending
            continue
        trailing = _trailing_doc(raw)
        if trailing:
            trailing_docs[n] = trailing
        got = pending + ([trailing] if trailing else [])
        if got:
            docs[n] = "\n".join(got)
            starts[n] = start if pending else n
        pending = []
    return docs, ("\n".join(top) if top else None), starts, trailing_docs


def _trailing_doc(raw: str) -> str | None:
    quote = None
    for i, c in enumerate(raw):
        if quote:
            quote = None if c == quote else quote
        elif c in "\"'":
            quote = c
        elif raw.startswith("##", i):
            return raw[i + 2:].strip()
        elif c == "#":
            return None
    return None


def _last_own_line(s) -> int:
    """The last line of a statement itself: a compound statement's header ends above its
    body; an alias definition ends with its arguments."""
    body = s.branches[0][1] if isinstance(s, A.If) else getattr(s, "body", None)
    if body:
        return body[0].span.line - 1  # the lines between hold only the header and comments
    if isinstance(s, A.Def) and s.alias:
        ref, args = s.alias
        return max([n.span.end_line or n.span.line for n in ref] + [a.span.end_line or a.span.line for a in args])
    return s.span.end_line or s.span.line


def attach_docs(module: A.Module, text: str) -> A.Module:
    docs, top, starts, trailing = _doc_map(text)

    def doc_of(s) -> str | None:
        parts = [docs[s.span.line]] if s.span.line in docs else []
        parts += [trailing[n] for n in range(s.span.line + 1, _last_own_line(s) + 1) if n in trailing]
        return "\n".join(parts) if parts else None

    def walk(stmts):
        out = []
        for s in stmts:
            changes = {}
            if hasattr(s, "doc") and (doc := doc_of(s)) is not None:
                changes["doc"] = doc
            for field in ("body", "orelse"):
                val = getattr(s, field, None)
                if isinstance(val, tuple):
                    changes[field] = walk(val)
            if isinstance(s, A.If):
                changes["branches"] = tuple((c, walk(b)) for c, b in s.branches)
            out.append(dataclasses.replace(s, **changes) if changes else s)
        return tuple(out)

    lines = text.split("\n")

    def opens_body(d: A.Def, first) -> bool:
        """The `##` block above the first statement starts right below the header (whose
        last line is the code line above the block: a header may span lines)."""
        start = starts.get(first.span.line)
        above = lines[start - 2].strip() if start and start - 2 >= 0 else ""
        return start is not None and start > d.span.line and bool(above) and not above.startswith("#")

    defs = []
    for d in walk(module.defs):
        first = d.body[0] if d.body else None
        if d.doc is None and first is not None and first.doc and opens_body(d, first):
            # a `##` block opening a body documents the block, not its first statement
            d = dataclasses.replace(d, doc=first.doc, body=(dataclasses.replace(first, doc=None),) + d.body[1:])
        defs.append(d)
    return dataclasses.replace(module, defs=tuple(defs), doc=top)
