"""What the language server answers, as plain functions of a `Snapshot` and a 1-based
position: hover text (Markdown), definition locations and completion items. The server
(netspec/lsp/server.py) only converts them to LSP types.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..dsl import ast as A
from ..dsl.tables import CONSTANTS, DTYPES, INITS
from ..dsl.errors import NetspecError, Span
from ..dsl.values import format_value
from ..dsl.format import format_text
from ..dsl.loader import DefEntry, ModuleNamespace
from ..dsl.registry import COMMON_BLOCK_KWARGS, COMMON_MODULE_KWARGS, REGISTRY, LayerDef
from ..dsl.tasks import TASKS
from ..dsl.tokens import keywords, token_at
from .snapshot import Snapshot, binding_of, block_graphs, enclosing, instances, op_params


# ---- hover ----
def layer_signature(d: LayerDef) -> str:
    args = ", ".join(("*" if a.variadic else "") + f"{a.name}: {a.type}"
                     + ("" if a.required or a.variadic else f" = {format_value(a.default)}") for a in d.schema)
    return f"{d.name}({args})"


def def_signature(d: A.Def) -> str:
    params = ", ".join(p.name for p in d.params)
    return f"{'default ' if d.default else ''}{d.kind} {d.name}({params})"


def _shape(meta) -> str:
    if meta is None:
        return "?"
    if isinstance(meta, tuple):
        return "(" + ", ".join(_shape(m) for m in meta) + ")"
    return f"{meta.dtype}[{', '.join(str(d) for d in meta.shape)}]"


def hover(snap: Snapshot, line: int, col: int) -> str | None:
    """Markdown for the word at a position: a layer's signature and doc, a block's, and for a
    statement its result's inferred shape, parameter count and doc comment."""
    tok = token_at(snap.tokens, line, col)
    if tok is None or tok.type in ("COMMENT", "STRING", "NUMBER") or snap.module is None:
        return None
    parts: list[str] = []
    word = tok.text if tok.type == "NAME" else None
    d, stmts = enclosing(snap.module, line, col)
    target = stmts[-1] if stmts else None
    if word in REGISTRY:
        ld = REGISTRY[word]
        parts.append(f"```\n{layer_signature(ld)}\n```\n{ld.kind} `{ld.target}`" + (f" — {ld.doc}" if ld.doc else ""))
    elif word is not None and (entry := resolve(snap, word, line, col)) is not None and isinstance(entry, DefEntry):
        parts.append(_def_hover(snap, entry.defn))
    elif d is not None and word is not None and (b := binding_of(d, word, line)) is not None and b.stmt is not None:
        target = b.stmt  # a value or a label: what its statement computed
    elif d is not None and target is None and word == d.name:
        return _def_hover(snap, d)
    if target is not None and not isinstance(target, A.If | A.For | A.Repeat):
        parts.append(_statement_hover(snap, target))
    text = "\n\n---\n\n".join(p for p in parts if p)
    return text or None


def _def_hover(snap: Snapshot, d: A.Def) -> str:
    out = [f"```\n{def_signature(d)}\n```"]
    if d.doc:
        out.append(d.doc)
    graphs = block_graphs(snap, d.name)
    if graphs:
        a, path, g = graphs[0]
        params = sum(p.numel() for p in (a.module.get_submodule(path.rstrip(".")) if path else a.module).parameters())
        ins = ", ".join(f"{op.id}: {_shape(a.shapes.get(path + op.id))}" for op in g.inputs)
        where = f"in model {a.info.name}" + (f" at `{path.rstrip('.')}`" if path else "")
        more = f" (and {len(graphs) - 1} more)" if len(graphs) > 1 else ""
        out.append(f"{params:,} parameters {where}{more}; inputs {ins}")
    return "\n\n".join(out)


def _statement_hover(snap: Snapshot, stmt) -> str | None:
    found = instances(snap, stmt.span)
    doc = getattr(stmt, "doc", None)
    if not found:
        return doc
    first = found[0]
    meta = first.analysis.shapes.get(first.path)
    head = f"**{first.path}**: `{first.op.label or first.op.target}` → `{_shape(meta)}`"
    lines = [head]
    params = op_params(first)
    if params is not None:
        lines.append(f"{params:,} parameters")
    if len(found) > 1:
        lines.append(f"{len(found)} instances: " + ", ".join(f"`{i.path}`" for i in found[:4])
                     + (", ..." if len(found) > 4 else ""))
    if doc:
        lines.append(doc)
    return "\n\n".join(lines)


# ---- definitions ----
def _dotted(snap: Snapshot, line: int, col: int) -> list[str]:
    """The dotted name up to and including the word at a position: `resnet.Bottleneck`."""
    toks = [t for t in snap.tokens if t.type != "COMMENT"]
    i = next((k for k, t in enumerate(toks) if t.type == "NAME" and t.line == line and t.col <= col <= t.end_col),
             None)
    if i is None:
        return []
    names = [toks[i].text]
    while i >= 2 and toks[i - 1].type == "DOT" and toks[i - 2].type == "NAME":
        i -= 2
        names.insert(0, toks[i].text)
    return names


def resolve(snap: Snapshot, word: str, line: int, col: int):
    """What a (dotted) name at a position refers to in the file's namespace: a DefEntry, a
    ModuleNamespace, or None."""
    if snap.program is None:
        return None
    names = _dotted(snap, line, col) or [word]
    for imp in snap.module.imports:  # `from m import a`: a sits in m
        if imp.names and any(s.line == line and s.col <= col <= s.end_col for _, s in imp.names):
            return snap.program.namespace(snap.module).names.get(names[-1])
    ns = snap.program.namespace(snap.module)
    entry = None
    for n in names:
        entry = ns.names.get(n) if ns is not None else None
        ns = entry if isinstance(entry, ModuleNamespace) else None
    return entry


def definition(snap: Snapshot, line: int, col: int) -> list[Span]:
    """Where the name at a position is defined: blocks and models (across imports, into
    the stdlib), imported files, and values, labels and parameters of the definition."""
    tok = token_at(snap.tokens, line, col)
    if tok is None or tok.type != "NAME" or snap.module is None:
        return []
    entry = resolve(snap, tok.text, line, col)
    if isinstance(entry, DefEntry):
        return [entry.defn.span]
    if isinstance(entry, ModuleNamespace):
        return [Span(entry.module.file, 1, 1)]
    d, _ = enclosing(snap.module, line, col)
    if d is None:
        d = next((x for x in snap.module.defs if x.span.line == line), None)
    b = binding_of(d, tok.text, line) if d is not None else None
    return [b.span] if b is not None and (b.span.line, b.span.col) != (tok.line, tok.col) else []


# ---- completion ----
@dataclass(frozen=True)
class Item:
    label: str
    kind: str  # layer | function | block | keyword | argument | task | dtype | constant
    detail: str = ""
    doc: str = ""
    insert: str | None = None  # text to insert, when not the label


_CALL = re.compile(r"([A-Za-z_][\w.]*)\s*\($")


def _open_call(text: str) -> tuple[str, str] | None:
    """(callee, its arguments so far) when text ends inside a call's parentheses."""
    text = re.sub(r"#[^\n]*", "", text[-4000:])
    depth, quote = 0, None
    for i in range(len(text) - 1, -1, -1):
        c = text[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c in ")]":
            depth += 1
        elif c in "([" and depth:
            depth -= 1
        elif c == "[":
            return None  # inside an index or a list, not a call
        elif c == "(":
            m = _CALL.search(text[: i + 1])
            return (m.group(1), text[i + 1:]) if m else None
    return None


def completion(snap: Snapshot, line: int, col: int) -> list[Item]:
    """Completions at a position: inside `Layer(...)` its keywords (the registry's schema,
    or a block's parameters); after `head x:` the tasks; after `input x:` the dtypes; else
    layers, tensor ops, blocks, keywords and constants."""
    lines = snap.text.split("\n")
    before = "\n".join(lines[: line - 1] + [lines[line - 1][: col - 1] if line <= len(lines) else ""])
    current = before.rsplit("\n", 1)[-1]
    current = re.sub(r"\w*$", "", current)
    if re.match(r"^\s*head\s+\w+\s*(=.*)?:\s*$", current):
        return [Item(t.name, "task", "head task", t.doc) for t in TASKS.values()]
    if re.match(r"^\s*input\s+\w+\s*:\s*$", current):
        return [Item(n, "dtype", f"torch.{t}") for n, t in DTYPES.items()]
    call = _open_call(re.sub(r"\w*$", "", before))
    if call is not None:
        callee, args = call
        given = set(re.findall(r"(\w+)\s*=", args))
        items = [i for i in _keywords(snap, callee) if i.label not in given]
        if items:
            return items
    return _names(snap)


def _keywords(snap: Snapshot, callee: str) -> list[Item]:
    name = callee.split(".")[-1]
    if name in REGISTRY:
        ld = REGISTRY[name]
        items = [Item(a.name, "argument", f"{a.type}" + ("" if a.required or a.variadic else
                                                          f" = {format_value(a.default)}"), insert=f"{a.name}=")
                 for a in ld.schema if not a.variadic]
        if ld.is_module:
            items += [Item(k, "argument", "netspec", doc, insert=f"{k}=") for k, doc in COMMON_MODULE_KWARGS.items()]
        return items
    if snap.program is not None:
        entry = snap.program.namespace(snap.module).names.get(callee.split(".")[0])
        for part in callee.split(".")[1:]:
            entry = entry.names.get(part) if isinstance(entry, ModuleNamespace) else None
        if isinstance(entry, DefEntry):
            own = [Item(p.name, "argument", f"= {_source(p.default)}" if p.default else "", insert=f"{p.name}=")
                   for p in entry.defn.params]
            names = {p.name for p in entry.defn.params}
            return own + [Item(k, "argument", "netspec", doc, insert=f"{k}=")
                          for k, doc in COMMON_BLOCK_KWARGS.items() if k not in names]
    return []


def _source(expr) -> str:
    return type(expr).__name__ if not hasattr(expr, "value") else format_value(expr.value)


def _names(snap: Snapshot) -> list[Item]:
    items = [Item(n, "layer" if d.is_module else "function", layer_signature(d), d.doc or d.target)
             for n, d in sorted(REGISTRY.items())]
    if snap.program is not None:
        for n, entry in snap.program.namespace(snap.module).names.items():
            if isinstance(entry, DefEntry):
                items.append(Item(n, "block", def_signature(entry.defn), entry.defn.doc or ""))
            else:
                items.append(Item(n, "module", entry.module.file))
    items += [Item(k, "keyword") for k in sorted(keywords())]
    items += [Item(c, "constant") for c in CONSTANTS if c.islower()]
    items += [Item(n, "function", "weight initialisation") for n in INITS]
    return items


# ---- formatting ----
def formatted(text: str, file: str) -> str | None:
    """A document in the canonical layout, or None when it does not parse (its
    diagnostics say why) or is formatted already."""
    try:
        out = format_text(text, file)
    except NetspecError:
        return None
    return None if out == text else out
