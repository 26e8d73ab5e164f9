"""Doc comments: a `## text` block above a statement (or at the end of its line) documents
it; a `##` block opening a body documents the block; one at the top of a file, followed by a
blank line, documents the file. Found by line from the text, then attached to the AST.
"""
from __future__ import annotations

import dataclasses

from . import ast as A


def _doc_map(text: str) -> tuple[dict[int, str], str | None, dict[int, int]]:
    lines = text.split("\n")
    docs: dict[int, str] = {}
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
        got = pending + ([trailing] if trailing else [])
        if got:
            docs[n] = "\n".join(got)
            starts[n] = start if pending else n
        pending = []
    return docs, ("\n".join(top) if top else None), starts


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


def attach_docs(module: A.Module, text: str) -> A.Module:
    docs, top, starts = _doc_map(text)

    def walk(stmts):
        out = []
        for s in stmts:
            changes = {}
            if hasattr(s, "doc") and s.span.line in docs:
                changes["doc"] = docs[s.span.line]
            for field in ("body", "orelse"):
                val = getattr(s, field, None)
                if isinstance(val, tuple):
                    changes[field] = walk(val)
            if isinstance(s, A.If):
                changes["branches"] = tuple((c, walk(b)) for c, b in s.branches)
            out.append(dataclasses.replace(s, **changes) if changes else s)
        return tuple(out)

    defs = []
    for d in walk(module.defs):
        first = d.body[0] if d.body else None
        if d.doc is None and first is not None and first.doc and starts.get(first.span.line) == d.span.line + 1:
            # a `##` block opening a body documents the block, not its first statement
            d = dataclasses.replace(d, doc=first.doc, body=(dataclasses.replace(first, doc=None),) + d.body[1:])
        defs.append(d)
    return dataclasses.replace(module, defs=tuple(defs), doc=top)
