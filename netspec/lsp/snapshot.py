"""One analysis of one open document: what the language server knows about it.

`analyze_document(text, file)` runs what `netspec check` runs, on the editor's text
(unsaved changes included; imported files are read from disk): parse, load the imports,
then elaborate and infer the shapes of every model of the file (as `check --all`). Its
diagnostics are check's, errors and warnings. A file of blocks only is a library: it gets
its syntax and import diagnostics, and nothing complains that it defines no model.

The result keeps the AST, the loaded program and each model's `Analysis` (meta device) for
hover, definitions and completion. Plain data; pygls is not imported here.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..compiler.builder import Analysis, analyze
from ..dsl import ast as A
from ..dsl.errors import Diagnostic, Diagnostics, NetspecError, Span
from ..dsl.ir import BlockGraph, Op
from ..dsl.loader import Program, load
from ..dsl.parser import parse
from ..dsl.tokens import Token, tokenize


@dataclass
class Snapshot:
    file: str
    text: str
    tokens: list[Token] = field(default_factory=list)  # empty when the text does not lex
    module: A.Module | None = None  # None: syntax errors
    program: Program | None = None  # the module with its imports loaded
    analyses: list[Analysis] = field(default_factory=list)  # one per model that checked
    diagnostics: list[Diagnostic] = field(default_factory=list)


def analyze_document(text: str, file: str, *, extra_paths=()) -> Snapshot:
    """Everything `check` says about `text` (the editor's copy of `file`), and what hover,
    definitions and completion need. Never raises for a bad spec."""
    text = text if text.endswith("\n") else text + "\n"  # one-line text would read as a spec name
    snap = Snapshot(file, text)
    try:
        snap.tokens = tokenize(text, file)
        snap.module = parse(text, file)
    except NetspecError as e:
        snap.diagnostics = e.diagnostics
        return snap
    diags = Diagnostics()
    snap.program = load(text, extra_paths=extra_paths, file=file, diags=diags)
    for d in snap.program.models():
        try:
            a = analyze(text, d.name, extra_paths=extra_paths, file=file)
        except NetspecError as e:
            diags.extend(e.diagnostics)
            continue
        snap.analyses.append(a)
        diags.extend(a.checked.warnings)
    snap.diagnostics = sorted(diags.items, key=lambda d: d.severity != "error")
    return snap


# ---- positions -> statements, bindings, ops ----
def _contains(span: Span, line: int, col: int) -> bool:
    end_line = span.end_line or span.line
    end_col = span.end_col if span.end_line else None
    if not span.line <= line <= end_line:
        return False
    if line == span.line and col < span.col:
        return False
    return not (line == end_line and end_col is not None and col > end_col)


def _children(s) -> list:
    if isinstance(s, A.If):
        return [x for _, body in s.branches for x in body] + list(s.orelse or ())
    return list(getattr(s, "body", None) or ())


def enclosing(module: A.Module, line: int, col: int) -> tuple[A.Def | None, list]:
    """The definition around a position and the statements around it, outermost first."""
    for d in module.defs:
        stmts = _children(d)
        if not stmts or not (d.span.line <= line <= _last_line(d)):
            continue
        path, level = [], stmts
        while True:
            inner = next((s for s in level if _contains(s.span, line, col)), None)
            if inner is None:
                return d, path
            path.append(inner)
            level = _children(inner)
    return None, []


def _last_line(s) -> int:
    kids = _children(s)
    return max(_last_line(kids[-1]), kids[-1].span.end_line or kids[-1].span.line) if kids else \
        (s.span.end_line or s.span.line)


@dataclass(frozen=True)
class Binding:
    name: str
    span: Span  # where the name is written
    stmt: object  # the statement that binds it (None: a parameter of the definition)


def bindings(d: A.Def) -> list[Binding]:
    """Every name a definition binds, in source order: parameters, inputs, labels, values."""
    out = [Binding(p.name, p.span, None) for p in d.params]

    def walk(stmts):
        for s in stmts:
            if isinstance(s, A.Input | A.Output | A.Head):
                out.append(Binding(s.name, s.span, s))
            elif isinstance(s, A.Assign):
                out.extend(Binding(t.id, t.span, s) for t in s.targets)
            elif isinstance(s, A.Step | A.FlowExpr | A.Merge):
                for n in (getattr(s, "label", None), s.bind):
                    if n is not None:
                        out.append(Binding(n.id, n.span, s))
            elif isinstance(s, A.Group):
                out.append(Binding(s.label.id, s.label.span, s))
            elif isinstance(s, A.For):
                out.append(Binding(s.var, s.span, s))
            walk(_children(s))

    walk(_children(d))
    return out


def binding_of(d: A.Def, name: str, line: int) -> Binding | None:
    """The binding a use of `name` at `line` refers to: the last one above it, or (a
    forward reference) the first one."""
    found = [b for b in bindings(d) if b.name == name]
    before = [b for b in found if b.span.line <= line]
    return (before or found or [None])[-1 if before else 0]


@dataclass(frozen=True)
class Instance:
    """One op of a model that a statement produced: where it sits and what it computes."""
    analysis: Analysis
    path: str  # its full module path or value name in the model ("transformer.h.0.attn.c_attn")
    op: Op


def instances(snap: Snapshot, span: Span) -> list[Instance]:
    """The ops a statement produced, in every model and every block instance: the last op
    of the statement per instance (its result)."""
    out = []
    for a in snap.analyses:
        for prefix, block in a.graph.walk():
            last = None
            for node in block.graph.nodes:
                op = block.op(node)
                if op.span.file == snap.file and _within(op.span, span) and op.kind != "output":
                    last = op
            if last is not None:
                out.append(Instance(a, prefix + (last.path or last.id), last))
    return out


def _within(inner: Span, outer: Span) -> bool:
    return _contains(outer, inner.line, inner.col)


def op_params(inst: Instance) -> int | None:
    """Parameters of a module or block op (tied weights counted once), else None."""
    op, gm = inst.op, inst.analysis.module
    if op.kind not in ("module", "block"):
        return None
    try:
        if op.target == "Parameter":
            return gm.get_parameter(inst.path).numel()
        return sum(p.numel() for p in gm.get_submodule(inst.path).parameters())
    except AttributeError:
        return None


def block_graphs(snap: Snapshot, name: str) -> list[tuple[Analysis, str, BlockGraph]]:
    """Every instance of a block or model called `name`: (analysis, path, graph)."""
    return [(a, prefix, g) for a in snap.analyses for prefix, g in a.graph.walk() if g.name == name]
