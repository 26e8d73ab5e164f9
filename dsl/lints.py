"""Lints: advice `netspec check` gives about a model that builds, each a row of LINTS.

A lint has a stable code (`NS101`) and a name (`bias-before-norm`), either of which a
user may write to silence it: on the line it points at with `# netspec: ignore[NS101]`
(or a bare `# netspec: ignore` for every lint there), or for a run with
`netspec check --no-lint NS101`. `netspec check --explain NS101` prints its rationale and
fix. A rule is a small pure function of one elaborated block, yielding the op it is about
and a message; the front end (dsl/frontend.py) runs `lint_block` over every distinct block
after the structural checks, like `checks.RULES`.

The advice is the usual practice for these layers (Ioffe & Szegedy 2015 on batch norm and
biases; Li et al. 2019, "Understanding the Disharmony between Dropout and Batch
Normalization by Variance Shift", on dropout before batch norm).
"""
from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator

import networkx as nx

from .errors import NetspecError, Reporter, Source, Span, did_you_mean
from .ir import BlockGraph, Op
from .registry import REGISTRY
from .tokens import tokenize

BIAS_LAYERS = {"Linear", "Bilinear"} | {f"{k}{d}d" for k in ("Conv", "ConvTranspose") for d in (1, 2, 3)}
BATCH_NORMS = {f"BatchNorm{d}d" for d in (1, 2, 3)}
DROPOUTS = {"Dropout", "AlphaDropout", "dropout"} | {f"Dropout{d}d" for d in (1, 2, 3)}
# activations a norm is commonly put before; softmax and its kin end a computation instead
ACTIVATIONS = {n for n, d in REGISTRY.items() if d.category == "activation"} - \
    {"Softmax", "LogSoftmax", "softmax", "log_softmax"}

Finding = tuple[Op, str]


# ---- reading a block ----
def arg(op: Op, name: str):
    """An argument of a layer or op as called, positional or keyword, else its schema default."""
    schema = REGISTRY[op.target].schema
    given = dict(zip([a.name for a in schema], op.ctor_args if op.kind == "module" else op.args))
    given.update(op.ctor_kwargs if op.kind == "module" else op.kwargs)
    if name in given:
        return given[name]
    return next(a.default for a in schema if a.name == name)


def _is(op: Op, targets: set[str]) -> bool:
    return op.kind in ("module", "function") and op.target in targets


def _dropping(op: Op) -> bool:
    """A dropout that drops something: p known and above 0."""
    if not _is(op, DROPOUTS):
        return False
    p = arg(op, "p")
    return isinstance(p, (int, float)) and p > 0


def _input(block: BlockGraph, op: Op) -> Op | None:
    """The op whose result `op` applies to (its first tensor argument)."""
    first = op.args[0] if op.args else None
    node = getattr(first, "node", None)
    return block.op(node) if node is not None and node in block.graph else None


# ---- the rules ----
def bias_before_norm(block: BlockGraph) -> Iterator[Finding]:
    for op in block.ops():
        prev = _input(block, op) if _is(op, BATCH_NORMS) else None
        if prev is not None and _is(prev, BIAS_LAYERS) and arg(prev, "bias") is True and \
                block.graph.out_degree(prev.id) == 1:
            yield prev, (f"the bias of {prev.path or prev.label} is redundant: the {op.target} after it "
                         "subtracts the mean (and adds its own bias)")


def dropout_before_norm(block: BlockGraph) -> Iterator[Finding]:
    for op in block.ops():
        prev = _input(block, op) if _is(op, BATCH_NORMS) else None
        if prev is not None and _dropping(prev):
            yield prev, (f"{prev.path or prev.label} feeds {op.target} directly: its statistics then differ "
                         "between training and inference")


def dropout_before_head(block: BlockGraph) -> Iterator[Finding]:
    if block.kind != "model":
        return
    for out in block.outputs:
        op = block.op(out.ref.node) if out.ref.node in block.graph else None
        if out.is_head and op is not None and _dropping(op):
            yield op, f"head '{out.name}' is the output of {op.path or op.label}: no dropout right before an output"


def norm_with_dropout(block: BlockGraph) -> Iterator[Finding]:
    norms = [op for op in block.ops() if _is(op, BATCH_NORMS)]
    drops = [op for op in block.ops() if _dropping(op)]
    if norms and drops:
        yield drops[0], (f"{block.kind} '{block.name}' has both batch norm ({norms[0].path or norms[0].label}) "
                         f"and dropout ({drops[0].path or drops[0].label}): consider batch norm alone")


def norm_after_activation(block: BlockGraph) -> Iterator[Finding]:
    for op in block.ops():  # batch norm only: a LayerNorm after GELU is a common transformer layout
        prev = _input(block, op) if _is(op, BATCH_NORMS) else None
        if prev is not None and _is(prev, ACTIVATIONS):
            yield op, (f"{op.path or op.label} normalizes the output of {prev.path or prev.label}: a norm is "
                       "commonly placed between the weight layer and the activation")


@dataclass(frozen=True)
class Lint:
    code: str  # stable: what `ignore[...]` and --no-lint name
    name: str  # the same, in words (accepted wherever a code is)
    severity: str  # "warning", or "note" for advice that is only informational
    rationale: str  # why, for --explain
    fix: str  # what to write instead, for --explain
    rule: Callable[[BlockGraph], Iterator[Finding]]


LINTS: dict[str, Lint] = {lint.code: lint for lint in (
    Lint("NS101", "bias-before-norm", "warning",
         "Batch norm subtracts the batch mean of each channel and adds its own learned bias (beta), so a bias "
         "added by the layer right before it is cancelled: it is a parameter that learns nothing and costs "
         "memory and time.",
         "Give the layer before the batch norm `bias=false`, e.g. `Conv2d(c, c, 3, bias=false)`.",
         bias_before_norm),
    Lint("NS102", "dropout-before-norm", "warning",
         "Dropout scales what it keeps by 1 / (1 - p) in training and does nothing at inference, so the "
         "variance a batch norm right after it sees in training differs from the one at inference; its running "
         "statistics, gathered in training, then misfit at inference (the 'variance shift').",
         "Put the dropout after the batch norm (or after the block), or drop one of them.",
         dropout_before_norm),
    Lint("NS103", "dropout-before-head", "warning",
         "A dropout whose output is a head drops entries of the output itself: in training the loss sees outputs "
         "zeroed at random and scaled up, which is noise rather than regularization; the usual layout is "
         "[dropout] -> weight layer -> output, with no dropout right before the output.",
         "Remove the dropout before the head, or put it before the last weight layer.",
         dropout_before_head),
    Lint("NS104", "norm-with-dropout", "warning",
         "Batch norm already regularizes; with dropout in the same block the two interact (the variance "
         "shift), and a network with batch norm often does as well or better without dropout.",
         "Consider removing the dropout from blocks with batch norm (or keep only one dropout, after the last "
         "batch norm). Silence it with `# netspec: ignore[NS104]` where both are intended.",
         norm_with_dropout),
    Lint("NS105", "norm-after-activation", "note",
         "Batch norm is commonly placed between the weight layer and its activation (conv -> batch norm -> "
         "activation), as in the batch norm paper and ResNet; after the activation it normalizes a "
         "one-sided distribution. Both orders are used; this is advice, not an error.",
         "Move the norm before the activation, e.g. `Conv2d(...); BatchNorm2d(c); ReLU()`.",
         norm_after_activation),
)}
_BY_NAME = {lint.name: lint for lint in LINTS.values()}


def find(code_or_name: str) -> Lint:
    """The lint a code or name stands for; NetspecError naming the known ones if none."""
    lint = LINTS.get(code_or_name.upper()) or _BY_NAME.get(code_or_name.lower())
    if lint is None:
        known = ", ".join(f"{c} ({lint.name})" for c, lint in LINTS.items())
        raise NetspecError(f"no lint '{code_or_name}'{did_you_mean(code_or_name, list(LINTS) + list(_BY_NAME))}; "
                           f"lints: {known}")
    return lint


def explain(lint: Lint) -> str:
    """What `netspec check --explain CODE` prints."""
    return f"{lint.code} {lint.name} ({lint.severity})\n\n{textwrap.fill(lint.rationale, 88)}\n\n" \
           f"{textwrap.fill('Fix: ' + lint.fix, 88)}\n"


# ---- suppression: `# netspec: ignore[NS101, NS104]` ----
_IGNORE = re.compile(r"\bnetspec:\s*ignore(?:\[([^\]]*)\])?")  # anywhere in a comment


@lru_cache(maxsize=64)
def _ignores(source: Source) -> dict[int, frozenset[str] | None]:
    """Line -> the lints its comment silences (None: every lint), from the token stream."""
    try:
        tokens = tokenize(source.text, source.name)
    except NetspecError:
        return {}
    out: dict[int, frozenset[str] | None] = {}
    for t in tokens:
        m = _IGNORE.search(t.text) if t.type == "COMMENT" else None
        if m:
            names = None if m.group(1) is None else frozenset(x.strip() for x in m.group(1).split(",") if x.strip())
            out[t.line] = names
    return out


def ignored(lint: Lint, span: Span) -> bool:
    """Whether a comment on the lines of `span` silences `lint`."""
    if span.source is None:
        return False
    table = _ignores(span.source)
    for line in range(span.line, (span.end_line or span.line) + 1):
        if line in table:
            names = table[line]
            if names is None or lint.code in names or lint.name in names:
                return True
    return False


def lint_block(block: BlockGraph, diags: Reporter) -> None:
    """Every lint over one block, reported with its code unless a comment silences it."""
    if not nx.is_directed_acyclic_graph(block.graph):
        return  # a cycle is reported by the checks; nothing runs in order here
    for lint in LINTS.values():
        for op, message in lint.rule(block):
            if not ignored(lint, op.span):
                diags.warning(message, op.span, code=lint.code, severity=lint.severity)
