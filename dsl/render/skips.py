"""Which edges of a block are skips, drawn dashed.

A skip is a value that goes *around* something: u -> v is a skip when v has another
input w that is computed from what u is computed from, along a longer path — a residual
`x + f(x)`, a U-Net skip from an encoder stage into the decoder, ResNet's projection
shortcut. Everything else is the main path, drawn solid, whichever operand the spec
wrote first: in `x = wte + wpe` both embeddings are main paths (they share nothing), and
two equally long branches that merge (an inception module) are both solid.

Some inputs do not make values related: runtime sizes (`size`, `numel`: every view reads
them), the items of a tuple (`q, k, v = split(...)` are three different tensors, so the
ancestor search stops at a `getitem`) and arguments read only for their size
(`center_crop(skip, like)`).
"""
from __future__ import annotations

import networkx as nx

from ..ir import BlockGraph, Op, Ref

HIDDEN_TARGETS = {"size", "numel"}  # runtime sizes: folded into the labels that use them, never drawn
SIZE_ONLY = {"center_crop": (1,)}  # function -> positions of tensor arguments read only for their size


def is_hidden(op: Op) -> bool:
    return op.target in HIDDEN_TARGETS and op.kind in ("function", "method")


def _size_only(op: Op) -> set[str]:
    if op.kind != "function" or op.target not in SIZE_ONLY:
        return set()
    return {a.node for i, a in enumerate(op.args) if i in SIZE_ONLY[op.target] and isinstance(a, Ref)}


def true_skips(bg: BlockGraph) -> frozenset[tuple[str, str]]:
    """The (u, v) edges of `bg` drawn as skips: u -> v where v reads another input w that
    is computed from u itself (a residual, a U-Net skip), or from what u is computed from
    along a longer path (a projection shortcut). The second test stops at tuple items, so
    `att @ v` is no skip although q, k and v come from one split."""
    g = bg.graph
    full: dict[str, frozenset[str]] = {}  # n and every op its value is computed from
    near: dict[str, frozenset[str]] = {}  # the same, stopping at tuple items
    depth: dict[str, int] = {}  # longest path of values into n
    inputs: dict[str, list[str]] = {}  # n -> the ops whose values it reads
    for n in nx.topological_sort(g):
        op = bg.op(n)
        sizes = _size_only(op)
        inputs[n] = [p for p in g.predecessors(n) if not is_hidden(bg.op(p)) and p not in sizes]
        if is_hidden(op):
            full[n] = near[n] = frozenset()
            depth[n] = 0
            continue
        depth[n] = 1 + max((depth[p] for p in inputs[n]), default=-1)
        full[n] = frozenset({n}).union(*(full[p] for p in inputs[n]))
        near[n] = frozenset({n}) if op.kind == "getitem" else frozenset({n}).union(*(near[p] for p in inputs[n]))
    out = set()
    for v, preds in inputs.items():
        if len(preds) < 2:
            continue
        for u in preds:
            if any(w != u and (u in full[w] or (depth[u] < depth[w] and near[u] & near[w])) for w in preds):
                out.add((u, v))
    return frozenset(out)
