"""Label text that needs more than the op: blocks by parameter name, merges with their
constant, parameter counts.

    block_text(op.block, defaults)   -> 'Bottleneck(inplanes=1024, planes=512, stride=2)'
    merge_text(op)                   -> '* 0.125'   (att * (1.0 / sqrt(hs)))
    count_text(25557032)             -> '25.6M'

and the small helpers `view` uses for titles, summaries and tooltips.

`defaults` comes from `block_defaults(program)`: the literal default of every block
parameter, keyed by the def's header span, so a label names only what differs from the
def (without a program every parameter is named).
"""
from __future__ import annotations

from .. import ast as A
from ..tables import CONSTANTS
from ..values import format_value
from ..ir import BlockGraph, Op, Ref

_UNKNOWN = object()  # a default that is not a literal: always shown


def _literal(e):
    if isinstance(e, (A.Number, A.String)):
        return e.value
    if isinstance(e, A.Name) and len(e.parts) == 1 and e.id in CONSTANTS:
        return CONSTANTS[e.id]
    if isinstance(e, A.Unary) and e.op in ("-", "+") and isinstance(e.operand, A.Number):
        return -e.operand.value if e.op == "-" else e.operand.value
    if isinstance(e, (A.TupleLit, A.ListLit)):
        items = [_literal(x) for x in e.items]
        if any(x is _UNKNOWN for x in items):
            return _UNKNOWN
        return tuple(items) if isinstance(e, A.TupleLit) else items
    return _UNKNOWN


def _span_key(span) -> tuple:
    return (span.file, span.line, span.col)


def block_defaults(program) -> dict[tuple, dict]:
    """def header (file, line, col) -> {parameter: literal default} for every def loaded."""
    out: dict[tuple, dict] = {}
    for ns in program.namespaces.values():
        for d in ns.module.defs:
            out[_span_key(d.span)] = {p.name: _literal(p.default) for p in d.params if p.default is not None}
    return out


def _same(a, b) -> bool:
    return isinstance(a, bool) == isinstance(b, bool) and type(a) is not object and a == b


def block_text(bg: BlockGraph, defaults: dict | None) -> str:
    """`Name(p=v, ...)`, every parameter by name; those equal to the def's literal default left out."""
    mine = (defaults or {}).get(_span_key(bg.span), {})
    shown = [f"{k}={format_value(v)}" for k, v in bg.params.items()
             if not (k in mine and _same(mine[k], v))]
    return f"{bg.name}({', '.join(shown)})"


def _number(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return format_value(v)


def merge_text(op: Op) -> str | None:
    """A binary op with a constant operand, as `* 0.125` or `1 -`; None when both are tensors."""
    if op.kind != "binop" or len(op.args) != 2:
        return None
    a, b = op.args
    sym = op.label or op.target
    if isinstance(a, Ref) and not isinstance(b, Ref):
        return f"{sym} {_number(b)}"
    if isinstance(b, Ref) and not isinstance(a, Ref):
        return f"{_number(a)} {sym}"
    return None


def count_text(n: int) -> str:
    """A parameter count at a glance: 4,160; 590K; 25.6M; 1.56B."""
    if n < 10_000:
        return f"{n:,}"
    for unit, size in (("B", 10 ** 9), ("M", 10 ** 6), ("K", 10 ** 3)):
        if n >= size:
            v = n / size
            return f"{v:.3g}{unit}" if v < 1000 else f"{v:,.0f}{unit}"
    return f"{n:,}"


def short_path(path: str, cluster: str | None) -> str:
    """transformer.h.0 in group transformer.h -> h.0"""
    if cluster and "." in cluster and path.startswith(cluster.rsplit(".", 1)[0] + "."):
        return path[len(cluster.rsplit(".", 1)[0]) + 1:]
    return path


def group_summary(members: list[tuple[bool, str]]) -> str:
    """A collapsed group's second line: its layers in order, runs compressed (Block ×12)."""
    layers = [t for is_layer, t in members if is_layer] or [t for _, t in members]
    parts = _compress(layers)
    if len(parts) > 4:
        return " → ".join(parts[:3]) + f" → … ({len(layers)} layers)"
    return " → ".join(parts)


def _compress(targets: list[str]) -> list[str]:
    out: list[list] = []
    for t in targets:
        if out and out[-1][0] == t:
            out[-1][1] += 1
        else:
            out.append([t, 1])
    return [t if n == 1 else f"{t} ×{n}" for t, n in out]


def input_text(op: Op) -> str:
    dims = []
    for d in op.dims or ():
        dims.append(str(d) if isinstance(d, int) else f"{d[0]}={d[1]}" if d[1] is not None else str(d[0]))
    return f"{op.dtype or 'float32'}[{', '.join(dims)}]" if op.dims is not None else (op.dtype or "")


def run_text(op: Op, run: list[Op], text: str) -> tuple[str, str]:
    if len(run) == 1:
        return short_path(op.path, op.cluster), text
    first, last = short_path(run[0].path, op.cluster), short_path(run[-1].path, op.cluster)
    return f"{first}–{last}", f"{text} ×{len(run)}"


def full_block_text(bg: BlockGraph) -> str:
    return block_text(bg, None)


def tooltip(key: str, op: Op, doc: str | None = None, text: str | None = None) -> str:
    lines = [key, text or merge_text(op) or op.label or op.target]
    d = op.doc or doc
    if d:
        lines.append(d)
    return "\n".join(dict.fromkeys(lines))
